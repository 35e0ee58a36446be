"""Slack mrkdwn to plain text."""

from __future__ import annotations

import re
from typing import Mapping

_TOKEN = re.compile(r"<([^<>\n]+)>")
_CODE_BLOCK = re.compile(r"```\n?(.*?)\n?```", re.S)
_STYLES = [
    re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"),
    re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])"),
    re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])"),
    re.compile(r"`([^`\n]+)`"),
]
_EMOJI_CODE = re.compile(r":[a-z0-9_+'-]+(?:::skin-tone-\d)?:")
# Pictographs, symbols, skin tones, variation selectors, joiners and keycaps.
_EMOJI_CHARS = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE00-\uFE0F\u200D\u20E3]+")
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def _token(inner: str, names: Mapping[str, str]) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = target[1:]
        return names.get(user) or label or user
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        if label:
            return label
        word = target[1:].split("^", 1)[0]
        return "@" + word if word in {"here", "channel", "everyone"} else ""
    if label:
        return label
    return target.removeprefix("mailto:")


def to_plain(text: str, names: Mapping[str, str] | None = None) -> str:
    """`<@U1>` → the person's display name, `<url|text>` → text, `*bold*` → bold, entities decoded."""
    names = names or {}
    text = _TOKEN.sub(lambda m: _token(m.group(1), names), text or "")
    text = _CODE_BLOCK.sub(lambda m: m.group(1), text)
    for style in _STYLES:
        text = style.sub(r"\1", text)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text.strip()


def strip_emoji(text: str) -> str:
    """What is left once emoji (codes and pictographs) are removed: empty means emoji-only."""
    return _EMOJI_CHARS.sub("", _EMOJI_CODE.sub("", text)).strip()
