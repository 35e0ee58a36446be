"""Retention (FT_RETENTION_DAYS): questions and feedback that never became an approved pair are deleted after so
many days, and so are preference records that never became training data, with their drafts. Approved pairs, and
what a snapshot holds (training data), stay.

A preference record is training data when the team's text in it became an approved pair, or when a snapshot holds
it: the snapshot's copy lives as long as the snapshot (a version was trained on it, and its job can be re-run), and
the record stays beside it because erasure finds a person's copies through the record (the copy names nobody, as a
SnapshotExample names nobody). A record nothing trained on (a private channel's, one made and never snapshotted)
goes after the window, like the question it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from core.states import ExampleStatus
from storage.models import Draft, Example, Feedback, Preference, SnapshotExample, SnapshotPreference, utcnow


@dataclass
class Purged:
    feedback: int = 0  # questions asked of the bot, with their ratings and corrections
    drafts: int = 0  # questions in watched channels
    rejected: int = 0  # pairs a curator rejected (or withdrawn), never trained on
    preferences: int = 0  # preference records never snapshotted whose team text never became an approved pair


def purge(session: Session, days: int) -> Purged:
    """One statement per table, the conditions in SQL: nothing is read into Python (the stores it runs on grow).
    Records go first, so the drafts and questions they kept go in the same pass."""
    cutoff = utcnow() - timedelta(days=days)
    approved = select(Example.id).where(Example.status == ExampleStatus.APPROVED)

    def not_approved(column):
        return or_(col(column).is_(None), col(column).not_in(approved))

    def not_in(column, query):
        return col(column).not_in(query.where(col(query.selected_columns[0]).is_not(None)))

    done = Purged()
    done.preferences = session.exec(delete(Preference).where(
        col(Preference.created_at) < cutoff,
        or_(col(Preference.pair_key).is_(None), not_in(Preference.pair_key, select(Example.source_key).where(
            Example.status == ExampleStatus.APPROVED))),
        not_in(Preference.id, select(SnapshotPreference.preference_id)))).rowcount
    done.drafts = session.exec(delete(Draft).where(
        col(Draft.updated_at) < cutoff, not_approved(Draft.example_id),
        not_in(Draft.id, select(Preference.draft_id)))).rowcount
    done.feedback = session.exec(delete(Feedback).where(
        col(Feedback.created_at) < cutoff, not_approved(Feedback.example_id),
        not_in(Feedback.id, select(Draft.feedback_id)), not_in(Feedback.id, select(Preference.feedback_id)))).rowcount
    done.rejected = session.exec(delete(Example).where(
        Example.status == ExampleStatus.REJECTED, col(Example.updated_at) < cutoff,
        not_in(Example.id, select(Feedback.example_id)), not_in(Example.id, select(Draft.example_id)),
        not_in(Example.id, select(SnapshotExample.example_id)))).rowcount
    return done
