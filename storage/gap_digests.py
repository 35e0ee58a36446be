"""The weekly knowledge-gaps digest's record (bot.gaps.digest): a week is claimed before its digest is posted, so a
restart or a second replica never posts it twice. A row holds counts and where the digest went, never a question,
so erasure has nothing to do here."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage.models import GapDigest, utcnow

# A claim still posting after this long was left by a bot that stopped mid-way: the next round takes it over.
STALE_CLAIM = timedelta(minutes=15)


def claim(session: Session, week: str, channel_id: str) -> bool:
    """Take the week's digest to post it; False when it is done (posted, or found empty) or another bot posts it."""
    try:
        with session.begin_nested():
            session.add(GapDigest(week=week, channel_id=channel_id))
            session.flush()
        return True
    except IntegrityError:
        pass
    now = utcnow()
    taken = session.exec(update(GapDigest).where(col(GapDigest.week) == week, col(GapDigest.ts).is_(None),
                                                 col(GapDigest.at) < now - STALE_CLAIM)
                         .values(at=now, channel_id=channel_id))
    return taken.rowcount == 1


def done(session: Session, week: str, *, ts: str, gaps: int, questions: int) -> None:
    """The week's digest was posted (ts), or the week had no gap (ts "")."""
    row = session.get(GapDigest, week)
    row.ts, row.gaps, row.questions = ts, gaps, questions


def release(session: Session, week: str) -> None:
    """Posting failed: the next round tries the week again."""
    session.exec(delete(GapDigest).where(col(GapDigest.week) == week, col(GapDigest.ts).is_(None)))


def get(session: Session, week: str) -> GapDigest | None:
    return session.get(GapDigest, week)
