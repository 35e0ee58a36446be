"""The draft card written in front of the team: posted with the question as soon as it arrives, brought up to date
as the model writes (chat.update, at most every `every_s`: Slack rate-limits updates), and replaced by the
finished card. A card is a channel message, not a thread reply, so it is updated rather than streamed with
chat.startStream (which writes only in threads)."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.drafts import render
from bot.slack.post import post
from core.prompt import settled_answer
from storage.models import Draft

log = logging.getLogger("ftbot.bot")


class CardWriter:
    def __init__(self, client, channel: str, draft: Draft, *, workspace_url: str = "", every_s: float = 0.5) -> None:
        self.client, self.channel, self.draft, self.workspace_url = client, channel, draft, workspace_url
        self.every_s = every_s
        self.ts: str | None = None  # the card, once Slack took it
        self.text = ""
        self._shown_at = 0.0

    async def start(self) -> None:
        self.ts = await post(self.client, self.channel, failed="could not post a draft card",
                             **render.writing_card(self.draft, "", workspace_url=self.workspace_url)) or None
        self._shown_at = time.perf_counter()

    async def write(self, piece: str) -> None:
        self.text += piece
        if self.ts and time.perf_counter() - self._shown_at >= self.every_s:
            self._shown_at = time.perf_counter()
            await self._update(render.writing_card(self.draft, settled_answer(self.text),
                                                   workspace_url=self.workspace_url))

    async def finish(self, message: dict[str, Any]) -> str | None:
        """The finished card in place of the one being written (posted anew if Slack will not update it, and the
        unfinished one deleted); its ts, or None when Slack took neither."""
        if self.ts and await self._update(message):
            return self.ts
        ts = await post(self.client, self.channel, failed="could not post a draft card", **message)
        if self.ts:
            try:
                await self.client.chat_delete(channel=self.channel, ts=self.ts)
            except SlackApiError as exc:
                log.warning("an unfinished draft card stays in %s: %s", self.channel, exc.response.get("error"))
        return ts

    async def _update(self, message: dict[str, Any]) -> bool:
        try:
            await self.client.chat_update(channel=self.channel, ts=self.ts, **message)
            return True
        except SlackApiError as exc:
            log.warning("could not update draft card %s: %s", self.draft.id, exc.response.get("error"))
            return False
