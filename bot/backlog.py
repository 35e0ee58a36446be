"""Slow work after Slack's ack, run by a few consumers.

Bolt starts every listener as its own task at once; in a burst of events those tasks crowd the
event loop and acks queue behind them. Listeners that do real work (read the thread, store,
react) hand it to a backlog instead, so a burst is acknowledged first and worked off after.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger("ftbot.bot")


class Backlog:
    def __init__(self, consumers: int = 1):  # one: a label and its removal stay in order
        self.consumers = consumers
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []

    def submit(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.ensure_future(self._consume()) for _ in range(self.consumers)]
        self._queue.put_nowait((fn, args))

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            fn, args = await self._queue.get()
            try:
                await fn(*args)
            except Exception:  # one bad item must not stop the backlog
                log.exception("background work failed")
            finally:
                self._queue.task_done()

    async def idle(self) -> None:
        """Wait until everything submitted so far is done (the consumers keep running)."""
        if self._queue is not None:
            await self._queue.join()

    async def drain(self, timeout: float = 10.0) -> None:
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except asyncio.TimeoutError:
                log.warning("stopping with %d background items left", self._queue.qsize())
        for task in self._tasks:
            task.cancel()
