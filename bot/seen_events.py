"""The Slack event ids the bot has handled, kept a week: Slack retries a delivery it thinks was lost within
minutes, and the retry guard (Deps.first_delivery, storage.events) would otherwise grow without end."""

from __future__ import annotations

import asyncio
import logging

from bot.periodic import Periodic
from storage import Store
from storage.events import forget_older_than

log = logging.getLogger("ftbot.bot")
EVENTS_KEPT_DAYS = 7  # Slack stops retrying an event after minutes


class EventForgetter(Periodic):
    """Every hour inside the bot (started and stopped with its HTTP app), the first an hour after it starts,
    forgets the event ids older than EVENTS_KEPT_DAYS."""

    what = "forgetting old Slack event ids"
    first_after_s = 3600.0

    def __init__(self, store: Store, every_s: float = 3600.0):
        super().__init__()
        self.store, self.every_s = store, every_s

    async def tick(self) -> int:
        def run() -> int:
            with self.store.session() as session:
                return forget_older_than(session, EVENTS_KEPT_DAYS)

        if forgotten := await asyncio.to_thread(run):
            log.info("forgot %d Slack event ids older than %d days", forgotten, EVENTS_KEPT_DAYS)
        return forgotten
