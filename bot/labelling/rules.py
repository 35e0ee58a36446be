"""Which reaction is a label."""

from __future__ import annotations

from typing import Any, Mapping


def is_label(event: Mapping[str, Any], label_emoji: str) -> bool:
    """The label emoji (any skin tone) on a message."""
    return (event.get("reaction", "").split("::", 1)[0] == label_emoji
            and (event.get("item") or {}).get("type") == "message")
