"""An answer written into Slack as the model writes it (chat.startStream / appendStream / stopStream).

The first words go out at once; the rest in batches, so a long answer is a handful of calls rather than one per
token. Slack ends a stream it considers old (~5 min: `message_not_in_streaming_state`) and caps its text
(`msg_too_long`); then nothing is lost: what was not shown is posted as an ordinary message in the same thread.
An answer the grounding check declines is replaced (`replace`), so its text never stays visible.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack.blocks import markdown

log = logging.getLogger("ftbot.bot")

PER_CALL = 12_000  # the most markdown_text Slack takes in one call
# Slack's answers that end streaming for good: the rest is posted instead of appended.
ENDED = frozenset({"message_not_in_streaming_state", "msg_too_long", "message_not_found"})


class AnswerStream:
    """One answer in one thread. `write` each piece, then `finish` (the answer stands) or `replace` (it does not).

    min_chars / min_interval_s: a batch goes out when it is this long, or this long after the previous one.
    shared: others read the thread too. Slack shows a stream live to its recipient alone and the stopped message to
    everyone, so `replace` deletes a stream it has not stopped rather than stopping it first.
    """

    def __init__(self, client, channel: str, thread_ts: str, *, recipient_user_id: str | None = None,
                 recipient_team_id: str | None = None, shared: bool = False, min_chars: int = 60,
                 min_interval_s: float = 0.25) -> None:
        self.client, self.channel, self.thread_ts = client, channel, thread_ts
        self.recipient = {k: v for k, v in (("recipient_user_id", recipient_user_id),
                                            ("recipient_team_id", recipient_team_id)) if v}
        self.min_chars, self.min_interval_s, self.shared = min_chars, min_interval_s, shared
        self.ts: str | None = None  # the streamed message
        self.posted: list[str] = []  # every message this answer wrote (the streamed one, then any remainder)
        self.shown = ""  # the text Slack accepted
        self.pending = ""  # written, not yet in Slack
        self.streaming = False
        self.broken = False  # Slack stopped taking this stream: the rest is posted as a message
        self._last = 0.0

    async def write(self, piece: str) -> None:
        self.pending += piece
        due = (self.ts is None or len(self.pending) >= self.min_chars
               or time.perf_counter() - self._last >= self.min_interval_s)
        if due and not self.broken:
            await self._flush()

    async def _flush(self) -> None:
        while self.pending and not self.broken:
            text = self.pending[:PER_CALL]
            try:
                if self.ts is None:
                    reply = await self.client.chat_startStream(channel=self.channel, thread_ts=self.thread_ts,
                                                               markdown_text=text, **self.recipient)
                    self.ts, self.streaming = reply["ts"], True
                    self.posted.append(self.ts)
                else:
                    await self.client.chat_appendStream(channel=self.channel, ts=self.ts, markdown_text=text)
            except SlackApiError as exc:
                self._stopped(exc)
                return
            self.shown += text
            self.pending = self.pending[len(text):]
            self._last = time.perf_counter()

    def _stopped(self, exc: SlackApiError) -> None:
        error = exc.response.get("error")
        if error not in ENDED and self.ts is not None:
            log.warning("streaming an answer failed (%s); posting the rest", error)
        self.broken, self.streaming = True, False

    async def finish(self, blocks: list[dict[str, Any]], text: str = "") -> None:
        """The answer stands: the rest of its text, then `blocks` under it. text: the notification's text for a
        message posted whole (nothing was streamed)."""
        if self.streaming and len(self.pending) <= PER_CALL:
            try:
                await self.client.chat_stopStream(channel=self.channel, ts=self.ts,
                                                  **({"markdown_text": self.pending} if self.pending else {}),
                                                  blocks=blocks)
                self.shown, self.pending, self.streaming = self.shown + self.pending, "", False
                return
            except SlackApiError as exc:
                self._stopped(exc)
        elif self.streaming:  # more than one call holds: append what fits, stop with the rest
            await self._flush()
            if not self.broken:
                return await self.finish(blocks, text)
        await self._post_rest(blocks, text)

    async def _post_rest(self, blocks: list[dict[str, Any]], text: str) -> None:
        """What Slack did not show, as an ordinary message in the thread (and the blocks with it)."""
        rest, self.pending = self.pending, ""
        body = [markdown(rest[i:i + PER_CALL]) for i in range(0, len(rest), PER_CALL)]
        try:
            reply = await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                       text=(rest or text or "…")[:3000], blocks=body + blocks)
        except SlackApiError as exc:
            log.warning("could not post the rest of an answer: %s", exc.response.get("error"))
            return
        self.posted.append(reply["ts"])
        self.shown += rest

    async def replace(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """The streamed text gives way to `text`: the first message is updated (deleted, and `text` posted, when
        Slack will not update it), any other it wrote is deleted. Nothing streamed yet: `text` is posted."""
        self.pending = ""
        if self.streaming and self.shared:
            await self._delete(self.posted.pop(0))  # never stopped: nobody but its recipient saw its text
            self.streaming = False
        if self.streaming:
            try:
                await self.client.chat_stopStream(channel=self.channel, ts=self.ts)
            except SlackApiError:
                pass  # ended already; the update below replaces it all the same
            self.streaming = False
        message = {"text": text, **({"blocks": blocks} if blocks else {})}
        first, rest = (self.posted[0], self.posted[1:]) if self.posted else (None, [])
        for ts in rest:
            await self._delete(ts)
        if first is not None:
            try:
                await self.client.chat_update(channel=self.channel, ts=first, **message)
                return
            except SlackApiError as exc:
                log.warning("could not replace a streamed answer (%s); deleting it", exc.response.get("error"))
                await self._delete(first)
        try:
            await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, **message)
        except SlackApiError as exc:
            log.warning("could not post in place of a streamed answer: %s", exc.response.get("error"))

    async def _delete(self, ts: str) -> None:
        try:
            await self.client.chat_delete(channel=self.channel, ts=ts)
        except SlackApiError as exc:
            log.error("a refused answer may still be visible (%s %s): %s", self.channel, ts,
                      exc.response.get("error"))
