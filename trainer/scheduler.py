"""The scheduler: on FT_TRAIN_SCHEDULE, enqueue a training job when enough new examples were approved;
every hour, forget the Slack event ids older than a week (the retry guard's table would grow without end).

Started inside `ft bot` (one process: APScheduler 3 has no cross-process locking, and the
database queue makes a second scheduler harmless anyway: it finds the job already queued).
"""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import Session

from storage import Store
from storage.events import forget_older_than
from storage.jobs import active, enqueue
from storage.models import TrainingJob
from storage.queue import approved_since_last_snapshot

log = logging.getLogger("ftbot.scheduler")
REQUESTED_BY = "scheduler"
EVENTS_KEPT_DAYS = 7  # Slack stops retrying an event after minutes


def maybe_enqueue(session: Session, min_new: int) -> TrainingJob | None:
    """A job when at least min_new approved examples arrived since the last snapshot and none is active."""
    if active(session):
        return None
    new = approved_since_last_snapshot(session)
    if new < min_new:
        return None
    job = enqueue(session, {}, REQUESTED_BY)
    log.info("scheduled training job %s: %s new approved examples", job.id, new)
    return job


def start(store: Store, cron: str, min_new: int):  # noqa: ANN201  (an AsyncIOScheduler)
    """Start inside a running event loop (APScheduler's AsyncIOScheduler needs one)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron)

    async def tick() -> None:
        def run() -> TrainingJob | None:
            with store.session() as session:
                return maybe_enqueue(session, min_new)

        await asyncio.to_thread(run)

    async def forget_events() -> None:
        def run() -> int:
            with store.session() as session:
                return forget_older_than(session, EVENTS_KEPT_DAYS)

        if forgotten := await asyncio.to_thread(run):
            log.info("forgot %d Slack event ids older than %d days", forgotten, EVENTS_KEPT_DAYS)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(tick, trigger, id="ftbot-train", coalesce=True, max_instances=1, misfire_grace_time=3600)
    scheduler.add_job(forget_events, "interval", hours=1, id="ftbot-forget-events", coalesce=True, max_instances=1)
    scheduler.start()
    log.info("training schedule %r, at least %d new approved examples", cron, min_new)
    return scheduler
