"""Training jobs: enqueue, list, cancel. (Claiming and leases belong to the worker.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.contract import CHECKPOINT_RULES, LORA_RANKS, RANKS_LISTED
from core.states import JobStatus
from storage.models import TrainingJob, utcnow

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# What a person may set on a job, and what is accepted. Ranks are those vLLM serves (max_lora_rank).
PARAM_HELP = (f"epochs=1..50, lr=a number in (0, 1], rank=one of {RANKS_LISTED}, "
              f"qlora=true|false, preference=true|false, checkpoint_by={'|'.join(CHECKPOINT_RULES)}")


def check_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Validated job parameters; ValueError names the bad one (shown to people as is)."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key not in ("epochs", "lr", "rank", "qlora", "preference", "checkpoint_by"):
            raise ValueError(f"unknown setting {key!r} ({PARAM_HELP})")
        try:
            if key == "epochs":
                params[key] = int(value)
                ok = 1 <= params[key] <= 50
            elif key == "lr":
                params[key] = float(value)
                ok = 0 < params[key] <= 1
            elif key == "rank":
                params[key] = int(value)
                ok = params[key] in LORA_RANKS
            elif key == "checkpoint_by":  # what keeps the best checkpoint and stops early (core.contract)
                params[key] = str(value).strip().lower()
                ok = params[key] in CHECKPOINT_RULES
            else:  # qlora, preference: on or off
                params[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
                ok = isinstance(value, bool) or (
                    str(value).lower() in ("0", "1", "true", "false", "yes", "no", "on", "off"))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"bad {key}={value!r} ({PARAM_HELP})")
    return params


def enqueue(session: Session, params: dict[str, Any], requested_by: str | None, *,
            reason: str | None = None) -> TrainingJob:
    """reason: why the job exists when no person asked for it (an erasure's retrain); the approval request says it."""
    job = TrainingJob(params=params, requested_by=requested_by, reason=reason)
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


def to_announce(session: Session, ended_since: datetime) -> list[TrainingJob]:
    """Jobs whose message in the approvals channel is not final yet: active ones, and ones that ended
    since `ended_since` (older ones are not announced late, e.g. after the bot was down for days)."""
    return list(session.exec(select(TrainingJob).where(
        TrainingJob.slack_done == False,  # noqa: E712  (SQL, not Python)
        col(TrainingJob.status).in_(ACTIVE) | (col(TrainingJob.finished_at) >= ended_since))
        .order_by(col(TrainingJob.id))))


def mark_announced(session: Session, job_id: int, channel: str, ts: str, done: bool) -> None:
    job = session.get(TrainingJob, job_id)
    if job is not None:
        job.slack_channel, job.slack_ts, job.slack_done = channel, ts, done
