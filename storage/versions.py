"""Model versions and the deployed pointer."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.states import VersionStatus
from storage.models import ModelVersion


def by_name(session: Session, name: str) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.name == name)).first()


def deployed(session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.DEPLOYED)).first()


def recent(session: Session, limit: int = 10) -> list[ModelVersion]:
    return list(session.exec(select(ModelVersion).order_by(col(ModelVersion.id).desc()).limit(limit)))


def previous(session: Session) -> ModelVersion | None:
    """The version deployed before the current one: the retired version deployed most recently (rollback target)."""
    return session.exec(select(ModelVersion)
                        .where(ModelVersion.status == VersionStatus.RETIRED, col(ModelVersion.deployed_at).is_not(None))
                        .order_by(col(ModelVersion.deployed_at).desc(), col(ModelVersion.id).desc())).first()


def loadable(session: Session) -> list[ModelVersion]:
    """The versions a model server may be asked to load: awaiting approval, deployed, and the rollback target."""
    found = list(session.exec(select(ModelVersion).where(col(ModelVersion.status).in_(
        [VersionStatus.AWAITING_APPROVAL, VersionStatus.DEPLOYED]))))
    rollback = previous(session)
    return found + ([rollback] if rollback is not None else [])


def retired(session: Session) -> list[ModelVersion]:
    """Retired versions, the most recently deployed first."""
    return list(session.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.RETIRED)
                             .order_by(col(ModelVersion.deployed_at).desc().nulls_last(), col(ModelVersion.id).desc())))


def deployed_for_update(session: Session) -> list[ModelVersion]:
    """Every version marked deployed (one, if all is well), locked until the transaction ends."""
    return list(session.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.DEPLOYED)
                             .with_for_update()))
