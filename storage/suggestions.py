"""The questions the bot suggests asking: the approved pairs people's questions drew on most, that the person may
see where the suggestion is shown (storage.audience, as retrieval applies it)."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, col, select

from core.states import ExampleStatus
from storage import audience
from storage.models import Example, Feedback

RECENT_QUESTIONS = 5_000  # how far back the count looks: what people ask now, not a year ago


def most_asked(session: Session, channel: str | None, limit: int = 4) -> list[Example]:
    """Up to `limit` approved pairs usable in `channel`: the most often retrieved for people's questions (each
    Feedback row's source["context"]), then the newest approved."""
    allowed = audience.scope(session, channel)
    counts: Counter[str] = Counter()
    for source in session.exec(select(Feedback.source).order_by(col(Feedback.id).desc()).limit(RECENT_QUESTIONS)):
        counts.update(dict.fromkeys((source or {}).get("context") or [], 1))  # once per question
    top = [key for key, _ in counts.most_common(limit * 10)]  # room for those the scope leaves out
    picked: list[Example] = []
    if top:
        found = {ex.source_key: ex for ex in session.exec(select(Example).where(
            col(Example.source_key).in_(top), Example.status == ExampleStatus.APPROVED, allowed.clause()))}
        picked = [found[key] for key in top if key in found][:limit]
    if len(picked) < limit:
        newest = session.exec(select(Example).where(Example.status == ExampleStatus.APPROVED, allowed.clause(),
                                                    col(Example.id).not_in([ex.id for ex in picked]))
                              .order_by(col(Example.created_at).desc(), col(Example.id).desc())
                              .limit(limit - len(picked)))
        picked += list(newest)
    return picked
