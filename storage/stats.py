"""Counts for `ft status`, the App Home tab and metrics."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from core.states import ExampleStatus, JobStatus, VersionStatus
from storage.models import DatasetSnapshot, Example, ModelVersion, TrainingJob


def _counts(session: Session, column, states) -> dict[str, int]:
    counts = dict.fromkeys(map(str, states), 0)  # plain strings: a dict of them is printed as it is (the demo)
    for state, n in session.exec(select(column, func.count()).group_by(column)):
        counts[state] = n
    return counts


def status(session: Session) -> dict[str, Any]:
    deployed = session.exec(
        select(ModelVersion.name).where(ModelVersion.status == VersionStatus.DEPLOYED)
    ).first()
    return {
        "examples": _counts(session, Example.status, tuple(ExampleStatus)),
        "snapshots": session.exec(select(func.count()).select_from(DatasetSnapshot)).one(),
        "jobs": _counts(session, TrainingJob.status, tuple(JobStatus)),
        "versions": _counts(session, ModelVersion.status, tuple(VersionStatus)),
        "deployed": deployed,
    }
