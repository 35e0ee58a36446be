"""The training-job queue: claim with a lease, heartbeat, finish, and requeue what a dead worker held.

PostgreSQL: several workers on several hosts share one queue (`FOR UPDATE SKIP LOCKED`).
SQLite: one atomic `UPDATE … RETURNING` (SQLite serialises writers; it drops FOR UPDATE).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from core.contract import JobProgress
from core.states import ExampleStatus, JobStatus
from storage.models import DatasetSnapshot, Example, SnapshotExample, TrainingJob, utcnow


def claim(session: Session, worker: str, lease_s: float, job_id: int | None = None) -> TrainingJob | None:
    """Take the oldest queued job (or that one), or None. Atomic: two workers never get the same job."""
    pick = select(TrainingJob.id).where(TrainingJob.status == JobStatus.QUEUED).order_by(col(TrainingJob.id)).limit(1)
    if job_id is not None:
        pick = pick.where(TrainingJob.id == job_id)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    now = utcnow()
    stmt = (
        update(TrainingJob)
        .where(col(TrainingJob.id) == pick.scalar_subquery())
        .where(TrainingJob.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=TrainingJob.attempts + 1, started_at=func.coalesce(TrainingJob.started_at, now))
        .returning(TrainingJob.id)
    )
    job_id = session.execute(stmt).scalar_one_or_none()
    session.flush()
    return session.get(TrainingJob, job_id, populate_existing=True) if job_id is not None else None


def heartbeat(session: Session, job_id: int, worker: str, lease_s: float) -> tuple[bool, bool]:
    """Extend the lease. Returns (still ours, cancel requested)."""
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.lease_owner == worker, TrainingJob.status == JobStatus.RUNNING)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
        .returning(TrainingJob.cancel_requested)
    ).first()
    return (result is not None, bool(result and result[0]))


def set_progress(session: Session, job_id: int, progress: JobProgress) -> None:
    session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(progress=progress.to_json()))


def finish(session: Session, job_id: int, worker: str, status: str, *, error: str | None = None,
           version_id: int | None = None) -> bool:
    """Close a job we hold. False when the lease was lost meanwhile (someone else owns it now)."""
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.lease_owner == worker, TrainingJob.status == JobStatus.RUNNING)
        .values(status=status, error=error, version_id=version_id, finished_at=utcnow(), lease_expires_at=None)
    )
    return bool(result.rowcount)


def release(session: Session, job_id: int, worker: str) -> bool:
    """Hand a job back to the queue (a worker shutting down); its checkpoints let the next one resume."""
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.lease_owner == worker, TrainingJob.status == JobStatus.RUNNING)
        .values(status=JobStatus.QUEUED, lease_owner=None, lease_expires_at=None)
    )
    return bool(result.rowcount)


def requeue_expired(session: Session) -> list[tuple[int, str]]:
    """Jobs whose lease ran out (their worker died) go back to the queue, or fail after max attempts."""
    expired = list(session.exec(
        select(TrainingJob).where(TrainingJob.status == JobStatus.RUNNING, col(TrainingJob.lease_expires_at) < utcnow())
        .with_for_update(skip_locked=True)
    ).scalars())
    changed = []
    for job in expired:
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        elif job.attempts >= job.max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, utcnow()
            job.error = f"its worker stopped answering {job.attempts} times (lease expired)"
        else:
            job.status = JobStatus.QUEUED
        job.lease_owner = job.lease_expires_at = None
        changed.append((job.id, job.status))
    session.flush()
    return changed


def approved_since_last_snapshot(session: Session) -> int:
    """Approved examples that the newest snapshot does not hold."""
    latest = session.exec(select(func.max(DatasetSnapshot.id))).scalar()
    query = select(func.count()).select_from(Example).where(Example.status == ExampleStatus.APPROVED)
    if latest is not None:
        used = select(SnapshotExample.example_id).where(SnapshotExample.snapshot_id == latest)
        query = query.where(col(Example.id).not_in(used))
    return session.exec(query).scalar_one()
