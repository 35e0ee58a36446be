"""A bounded shutdown: on SIGTERM the bot stops taking events (aiohttp closes its listening socket first), gives
the listeners Bolt started this long to finish, then cancels them. A draft cancelled mid-answer is marked for the
sweeper (bot.drafts.flow.answer_draft), which answers it at the next start.

Bolt runs each listener as a task of its own after the ack (process_before_response=False) and keeps no handle
on it, so the tasks are found by the coroutine Bolt wraps them in.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("ftbot.bot")

_BOLT_LISTENER = "run_ack_function_asynchronously"  # slack_bolt.listener.asyncio_runner
CANCEL_WAIT_S = 1.0  # for a cancelled listener's own cleanup (one short database write)


def listener_tasks() -> set[asyncio.Task]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()
            and getattr(t.get_coro(), "__name__", "") == _BOLT_LISTENER}


async def settle(tasks: set[asyncio.Task], grace_s: float) -> int:
    """Wait up to grace_s for tasks, then cancel what is left; returns how many were cancelled."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("shutting down: %d listener(s) still running after %.1f s cancelled", len(pending), grace_s)
        await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
    return len(pending)


class Deadline:
    """What is left of one grace period, shared by the steps of a shutdown."""

    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.until - time.monotonic())
