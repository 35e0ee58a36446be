"""Seen Slack event ids: Slack retries deliveries it thinks were lost; each is handled once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.models import SeenEvent, utcnow


def first_delivery(session: Session, event_id: str) -> bool:
    """Record the id; False when it was recorded before (a retry)."""
    try:
        with session.begin_nested():
            session.add(SeenEvent(event_id=event_id))
            session.flush()
        return True
    except IntegrityError:
        return False


def forget_older_than(session: Session, days: int = 7) -> int:
    """Slack stops retrying after minutes; a week of ids is plenty."""
    result = session.exec(delete(SeenEvent).where(SeenEvent.received_at < utcnow() - timedelta(days=days)))
    return result.rowcount or 0
