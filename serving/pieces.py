"""The streamed answer's text, in pieces no later token can change (Engine.generate's streamer)."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

log = logging.getLogger("serving.generation")

UNSETTLED_TAIL = re.compile(r"[\s\ufffd]+\Z")  # trailing whitespace and incomplete characters (U+FFFD)


class TextPieces:
    """A transformers streamer (put/end, called by generate() on the model thread) that hands on_text each new
    piece of the answer's text, holding back what a later token could still change or cut: a trailing
    incomplete UTF-8 character (decoded as U+FFFD), trailing whitespace (a tokenizer's cleanup can join it to
    what follows), and a tail that could be the start of a stop string. finish(text) sends the rest, so the
    pieces join to exactly the whole answer's text."""

    def __init__(self, decode: Callable[[list[int]], str], on_text: Callable[[str], None], stop: list[str]):
        self._decode = decode  # generated tokens -> the answer's text so far (Engine.answer_text)
        self._on_text = on_text
        self._stop = stop
        self._tokens: list[int] = []
        self._prompt_seen = False
        self.sent = ""

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() puts the prompt first
            self._prompt_seen = True
            return
        self._tokens.extend(int(t) for t in value.reshape(-1).tolist())
        self._send(settled(self._decode(self._tokens), self._stop))

    def end(self) -> None:
        """Nothing: finish() sends the rest once the whole text is known."""

    def finish(self, text: str) -> None:
        if not text.startswith(self.sent):  # a tokenizer whose decoding of a longer sequence rewrote what was sent
            log.warning("streamed text %r is not a prefix of the answer %r", self.sent[-40:], text[-80:])
        self._send(text)

    def _send(self, text: str) -> None:
        if len(text) > len(self.sent) and text.startswith(self.sent):
            piece, self.sent = text[len(self.sent):], text
            self._on_text(piece)


def settled(text: str, stop: list[str]) -> str:
    """The part of a growing answer's text that no later token can change: without a tail that could begin a
    stop string, then without trailing whitespace and incomplete characters (U+FFFD)."""
    held = max((k for s in stop for k in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:k])),
               default=0)
    return UNSETTLED_TAIL.sub("", text[:len(text) - held])
