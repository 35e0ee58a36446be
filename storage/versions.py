"""Model versions and the deployed pointer."""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage.models import ModelVersion, VersionStatus


def by_name(session: Session, name: str) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.name == name)).first()


def deployed(session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.DEPLOYED)).first()


def recent(session: Session, limit: int = 10) -> list[ModelVersion]:
    return list(session.exec(select(ModelVersion).order_by(col(ModelVersion.id).desc()).limit(limit)))
