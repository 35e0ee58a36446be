"""Questions asked of the model, people's ratings of its answers, and corrections that become candidates."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from storage.examples import CREATED, DUPLICATE, EXISTS, NewExample, add_examples, edit, same_content
from storage.models import Example, ExampleStatus, Feedback
from storage.redact import redact

UP, DOWN, NONE = "up", "down", "none"
# Outcomes of correct(), besides add_examples' own (created, duplicate, exists).
GONE, UPDATED = "gone", "updated"


def record(session: Session, *, question: str, answer: str, user: str | None, version_name: str | None,
           source: dict[str, Any]) -> Feedback:
    """One asked question (answered or not), unrated; flushed so its id can go on the buttons.

    Redacted like every stored text: customers paste e-mail addresses and phone numbers into questions.
    """
    row = Feedback(question=redact(question)[0], answer=redact(answer)[0], user=user, version_name=version_name,
                   rating=NONE, source=dict(source))
    session.add(row)
    session.flush()
    return row


def get(session: Session, feedback_id: int) -> Feedback | None:
    return session.get(Feedback, feedback_id)


def rate(session: Session, feedback_id: int, rating: str, by: str | None) -> Feedback | None:
    """Anyone may rate; the last click wins (who clicked is kept in source)."""
    if rating not in (UP, DOWN, NONE):
        raise ValueError(f"unknown rating {rating!r}")
    row = session.get(Feedback, feedback_id, with_for_update=True)
    if row is None:
        return None
    row.rating = rating
    row.source = {**row.source, "rated_by": by}  # a new dict: JSON columns track assignment, not mutation
    return row


def correct(session: Session, feedback_id: int, correction: str, by: str | None
            ) -> tuple[str, Feedback | None, Example | None]:
    """A 👎 with the right answer: the question and the correction become a candidate example.

    A second correction of the same answer rewrites that candidate while nobody has decided it;
    once a curator has, the decision stands and only the feedback row keeps the new text.
    """
    row = session.get(Feedback, feedback_id, with_for_update=True)
    if row is None:
        return GONE, None, None
    row.rating, row.correction = DOWN, redact(correction)[0]
    row.source = {**row.source, "rated_by": by}
    item = NewExample(
        source_key=f"feedback:{row.id}", question=row.question, answer=correction, labelled_by=by,
        source={"kind": "feedback", "version": row.version_name, "model": row.source.get("model"),
                "feedback_id": row.id, "channel_id": row.source.get("channel"),
                "thread_ts": row.source.get("thread_ts"), "asker": row.user, "model_answer": row.answer},
    )
    [(outcome, example)] = add_examples(session, [item])
    if outcome == EXISTS and example.status == ExampleStatus.CANDIDATE:
        other = same_content(session, row.question, correction)
        if other is None:
            edit(session, example.id, row.question, correction)
            example.labelled_by = by
            outcome = UPDATED
        elif other.id != example.id:
            outcome, example = DUPLICATE, other
    if outcome in (CREATED, UPDATED, DUPLICATE) or row.example_id is None:
        row.example_id = example.id
    return outcome, row, example
