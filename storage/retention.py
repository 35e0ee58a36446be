"""Retention (FT_RETENTION_DAYS): questions and feedback that never became an approved pair are deleted after so
many days. Approved pairs, and what a snapshot or a preference record holds (training data), stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from storage.examples import used_by_snapshot
from storage.models import Draft, Example, ExampleStatus, Feedback, Preference, utcnow


@dataclass
class Purged:
    feedback: int = 0  # questions asked of the bot, with their ratings and corrections
    drafts: int = 0  # questions in watched channels
    rejected: int = 0  # pairs a curator rejected (or withdrawn), never trained on


def purge(session: Session, days: int) -> Purged:
    cutoff = utcnow() - timedelta(days=days)
    done = Purged()
    approved = set(session.exec(select(Example.id).where(Example.status == ExampleStatus.APPROVED)))
    kept_drafts = set(session.exec(select(Preference.draft_id).where(col(Preference.draft_id).is_not(None))))
    for d in session.exec(select(Draft).where(Draft.updated_at < cutoff)):
        if d.example_id not in approved and d.id not in kept_drafts:
            session.delete(d)
            done.drafts += 1
    session.flush()
    referenced = set(session.exec(select(Draft.feedback_id).where(col(Draft.feedback_id).is_not(None))))
    for fb in session.exec(select(Feedback).where(Feedback.created_at < cutoff)):
        if fb.example_id not in approved and fb.id not in referenced:
            session.delete(fb)
            done.feedback += 1
    session.flush()
    in_use = set(session.exec(select(Feedback.example_id).where(col(Feedback.example_id).is_not(None)))) | set(
        session.exec(select(Draft.example_id).where(col(Draft.example_id).is_not(None))))
    for ex in session.exec(select(Example).where(Example.status == ExampleStatus.REJECTED, Example.updated_at < cutoff)):
        if ex.id not in in_use and not used_by_snapshot(session, ex.id):
            session.delete(ex)
            done.rejected += 1
    session.flush()
    return done
