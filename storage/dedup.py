"""The identity of a Q&A pair's content: the same pair, however it was typed, is stored once."""

from __future__ import annotations

import hashlib
import re

_MARKUP = re.compile(r"[*_~`>]+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", _MARKUP.sub("", text.casefold())).strip()


def dedup_key(question: str, answer: str) -> str:
    joined = normalise(question) + "\x1f" + normalise(answer)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()
