"""Work the bot repeats in its own event loop (announcing jobs, expiring drafts, forgetting old event ids),
surviving a bad round."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("ftbot.bot")


class Periodic:
    """Calls `tick()` every `every_s` seconds between start() and stop(); an error is logged and the next round
    tries again (Slack or the database away for a moment)."""

    every_s: float = 60.0
    first_after_s: float = 0.0  # the first round this long after start()
    what = "periodic work"  # for the log line of a failed round

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None

    async def tick(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        if self.first_after_s:
            await asyncio.sleep(self.first_after_s)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad round must not end the loop
                log.exception("%s failed; retrying", self.what)
            await asyncio.sleep(self.every_s)
