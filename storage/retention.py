"""Retention (FT_RETENTION_DAYS): questions and feedback that never became an approved pair are deleted after so
many days. Approved pairs, and what a snapshot or a preference record holds (training data), stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from core.states import ExampleStatus
from storage.models import Draft, Example, Feedback, Preference, SnapshotExample, utcnow


@dataclass
class Purged:
    feedback: int = 0  # questions asked of the bot, with their ratings and corrections
    drafts: int = 0  # questions in watched channels
    rejected: int = 0  # pairs a curator rejected (or withdrawn), never trained on


def purge(session: Session, days: int) -> Purged:
    """One statement per table, the conditions in SQL: nothing is read into Python (the stores it runs on grow)."""
    cutoff = utcnow() - timedelta(days=days)
    approved = select(Example.id).where(Example.status == ExampleStatus.APPROVED)

    def not_approved(column):
        return or_(col(column).is_(None), col(column).not_in(approved))

    done = Purged()
    done.drafts = session.exec(delete(Draft).where(
        col(Draft.updated_at) < cutoff, not_approved(Draft.example_id),
        col(Draft.id).not_in(select(Preference.draft_id).where(col(Preference.draft_id).is_not(None))))).rowcount
    done.feedback = session.exec(delete(Feedback).where(
        col(Feedback.created_at) < cutoff, not_approved(Feedback.example_id),
        col(Feedback.id).not_in(select(Draft.feedback_id).where(col(Draft.feedback_id).is_not(None))))).rowcount
    done.rejected = session.exec(delete(Example).where(
        Example.status == ExampleStatus.REJECTED, col(Example.updated_at) < cutoff,
        col(Example.id).not_in(select(Feedback.example_id).where(col(Feedback.example_id).is_not(None))),
        col(Example.id).not_in(select(Draft.example_id).where(col(Draft.example_id).is_not(None))),
        col(Example.id).not_in(select(SnapshotExample.example_id)))).rowcount
    return done
