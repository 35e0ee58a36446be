"""Shortening text for a narrow place (a Slack block, a table cell, a log line, a prompt): one rule, written once."""

from __future__ import annotations

ELLIPSIS = "…"


def clip(text: str, limit: int, *, one_line: bool = False, trim: bool = True) -> str:
    """`text` in at most `limit` characters, the last one "…" when it was cut.

    one_line folds every run of white space (newlines too) to one space first. trim drops the white space the
    cut leaves before the "…"; callers that never trimmed keep trim=False, so what they print stays the same.
    """
    text = " ".join(text.split()) if one_line else text
    if len(text) <= limit:
        return text
    kept = text[:limit - 1]
    return (kept.rstrip() if trim else kept) + ELLIPSIS
