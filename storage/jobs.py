"""Training jobs: enqueue, list, cancel. (Claiming and leases belong to the worker.)"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from storage.models import JobStatus, TrainingJob, utcnow

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def enqueue(session: Session, params: dict[str, Any], requested_by: str | None) -> TrainingJob:
    job = TrainingJob(params=params, requested_by=requested_by)
    session.add(job)
    session.flush()
    return job


def recent(session: Session, limit: int = 10) -> list[TrainingJob]:
    return list(session.exec(select(TrainingJob).order_by(col(TrainingJob.id).desc()).limit(limit)))


def active(session: Session) -> list[TrainingJob]:
    return list(session.exec(select(TrainingJob).where(col(TrainingJob.status).in_(ACTIVE))))


def cancel(session: Session, job_id: int) -> TrainingJob:
    """A queued job is cancelled at once; a running one is asked to stop (the worker honours it)."""
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise LookupError(f"no job {job_id}")
    if job.status == JobStatus.QUEUED:
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
    elif job.status == JobStatus.RUNNING:
        job.cancel_requested = True
    else:
        raise ValueError(f"job {job_id} already {job.status}")
    return job
