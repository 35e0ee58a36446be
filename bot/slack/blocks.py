"""The Block Kit pieces every surface builds from (a section, a context line, a header, a button) and mrkdwn
escaping: written once, so every message shapes them alike."""

from __future__ import annotations

from typing import Any

SECTION_LIMIT = 2800  # Slack caps a section's text at 3000 characters; escaping adds a little


def escape(text: str) -> str:
    """User text in mrkdwn: no accidental mentions, links or broken markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def markdown(text: str) -> dict[str, Any]:
    """Slack's `markdown` block (standard Markdown, as AI apps answer in)."""
    return {"type": "markdown", "text": text}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def button(text: str, action_id: str, value: str | int, *, style: str | None = None,
           emoji: bool = False) -> dict[str, Any]:
    """emoji: Slack renders :shortcodes: in the label (the surfaces that set it always did; the others never)."""
    label = {"type": "plain_text", "text": text, **({"emoji": True} if emoji else {})}
    built: dict[str, Any] = {"type": "button", "text": label, "action_id": action_id, "value": str(value)}
    if style:
        built["style"] = style
    return built
