"""The weekly digest: once each ISO week, the gaps of the 7 days before go to the curators' channel
(FT_GAPS_CHANNEL, else FT_APPROVALS_CHANNEL), scoped as that channel. A week is claimed in the database before its
digest is posted (storage.gap_digests), so a restart or a second replica never posts it twice; a week without a
gap is recorded and posts nothing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.deps import Deps
from bot.gaps import render
from bot.gaps.finding import find
from bot.gaps.rules import week_of
from bot.periodic import Periodic
from bot.slack.post import post
from storage import gap_digests
from storage.models import utcnow

log = logging.getLogger("ftbot.bot")
WINDOW = timedelta(days=7)


class GapsDigest(Periodic):
    """Every hour inside the bot, the first ten minutes after it starts (a bot restarting in a loop finds nothing
    to do anyway): posts the week's digest unless it is done."""

    what = "posting the weekly knowledge-gaps digest"
    first_after_s = 600.0

    def __init__(self, deps: Deps, client, every_s: float = 3600.0):
        super().__init__()
        self.deps, self.client, self.every_s = deps, client, every_s

    def start(self) -> None:
        if self.deps.gaps_channel and self.deps.retriever is not None:
            super().start()

    async def tick(self, now: datetime | None = None) -> str | None:
        """The digest's ts when this round posted it, "" when the week had no gap, None when nothing was due."""
        deps, channel = self.deps, self.deps.gaps_channel
        now = now or utcnow()
        week = week_of(now)
        if not channel or deps.retriever is None or not await deps.db(lambda s: gap_digests.claim(s, week, channel)):
            return None
        try:
            gaps = await find(deps, since=now - WINDOW, channel=channel)
            ts = await post(self.client, channel, failed="could not post the knowledge-gaps digest",
                            **render.digest(gaps, now - WINDOW, channel)) if gaps else ""
        except BaseException:
            await deps.db(lambda s: gap_digests.release(s, week))
            raise
        if ts is None:  # Slack refused it (the bot is not in the channel): the next round tries again
            await deps.db(lambda s: gap_digests.release(s, week))
            return None
        questions = sum(g.size for g in gaps)
        await deps.db(lambda s: gap_digests.done(s, week, ts=ts, gaps=len(gaps), questions=questions))
        log.info("knowledge-gaps digest for %s: %d gaps, %d questions", week, len(gaps), questions)
        return ts
