"""The scheduler: on FT_TRAIN_SCHEDULE, enqueue a training job when enough new examples were approved, and,
with FT_RETENTION_DAYS, every hour delete the questions and feedback older than that which never became an
approved pair.

Started inside `ft bot` (ftbot.wiring.scheduler; one process: APScheduler 3 has no cross-process locking, and
the database queue makes a second scheduler harmless anyway: it finds the job already queued). The bot forgets
the Slack event ids it has seen itself (bot.seen_events).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from sqlmodel import Session

from storage import Store
from storage.jobs import active, enqueue
from storage.models import TrainingJob
from storage.queue import approved_since_last_snapshot

log = logging.getLogger("ftbot.scheduler")
REQUESTED_BY = "scheduler"


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


def apply_retention(store: Store, days: int) -> None:
    """FT_RETENTION_DAYS: questions, feedback and preference records that never became training data go
    (storage.retention)."""
    from storage.retention import purge

    with store.session() as session:
        done = purge(session, days)
    if done.feedback or done.drafts or done.rejected or done.preferences:
        log.info("retention (%d days): deleted %d questions to the bot, %d drafts, %d rejected pairs, %d preference "
                 "records", days, done.feedback, done.drafts, done.rejected, done.preferences)


def start(store: Store, cron: str, min_new: int, retention_days: int | None = None):
    """Start inside a running event loop (APScheduler's AsyncIOScheduler needs one); returns the scheduler."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron)

    async def tick() -> None:
        def run() -> TrainingJob | None:
            with store.session() as session:
                return maybe_enqueue(session, min_new)

        await asyncio.to_thread(run)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(tick, trigger, id="ftbot-train", coalesce=True, max_instances=1, misfire_grace_time=3600)
    if retention_days:
        async def retention() -> None:
            await asyncio.to_thread(apply_retention, store, retention_days)

        scheduler.add_job(retention, "interval", hours=1, id="ftbot-retention", coalesce=True, max_instances=1,
                          next_run_time=datetime.now(timezone.utc))
    scheduler.start()
    log.info("training schedule %r, at least %d new approved examples", cron, min_new)
    return scheduler
