"""Questions asked of the model, people's ratings of its answers, and corrections that become candidates.

A row's rating is a column (core.states.Rating); the rest of its state (declined, rated by, dismissed by) is
FeedbackState, kept in the row's `source` JSON: only FeedbackState and `mark` below know those keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlmodel import Session, select

from core.states import ExampleSource, ExampleStatus, PreferenceKind, Rating
from storage import preferences
from storage.examples import (
    CREATED,
    DUPLICATE,
    EXISTS,
    UPGRADED,
    NewExample,
    add_examples,
    edit,
    same_content,
    set_status,
)
from storage.models import Draft, Example, Feedback
from storage.redact import redact

# Outcomes of correct(), besides add_examples' own (created, duplicate, exists).
GONE, UPDATED = "gone", "updated"


@dataclass(frozen=True)
class FeedbackState:
    """What became of an asked question besides its rating. Kept as keys of the row's `source` JSON under these
    names (no migration: rows written before this class read the same), written only through `mark`."""

    declined: bool = False  # the bot said it does not know (core.grounding): the question waits for a curator
    rated_by: str | None = None  # who last rated or corrected the answer
    dismissed_by: str | None = None  # the curator who set the question aside

    @classmethod
    def of(cls, row: Feedback) -> FeedbackState:
        src = row.source or {}
        return cls(declined=bool(src.get("declined")), rated_by=src.get("rated_by"),
                   dismissed_by=src.get("dismissed_by"))

    @property
    def dismissed(self) -> bool:
        return bool(self.dismissed_by)

    @staticmethod
    def declined_sql() -> Any:
        """The `declined` key as a SQL boolean (a JSON path SQLite and PostgreSQL both read)."""
        return Feedback.__table__.c.source["declined"].as_boolean()


def mark(row: Feedback, **state: Any) -> None:
    """Set the given FeedbackState fields on the row, only those: an old row gains no key it was not given."""
    unknown = set(state) - {f.name for f in fields(FeedbackState)}
    if unknown:
        raise TypeError(f"not a FeedbackState field: {', '.join(sorted(unknown))}")
    row.source = {**(row.source or {}), **state}  # a new dict: JSON columns track assignment, not mutation


def record(session: Session, *, question: str, answer: str, user: str | None, version_name: str | None,
           source: dict[str, Any], declined: bool = False) -> Feedback:
    """One asked question (answered or not), unrated; flushed so its id can go on the buttons.
    declined: the bot said it does not know (core.grounding): the question waits in the curators' queue.

    Redacted like every stored text: customers paste e-mail addresses and phone numbers into questions.
    """
    row = Feedback(question=redact(question)[0], answer=redact(answer)[0], user=user, version_name=version_name,
                   rating=Rating.NONE, source=dict(source))
    mark(row, declined=declined)
    session.add(row)
    session.flush()
    return row


def get(session: Session, feedback_id: int) -> Feedback | None:
    return session.get(Feedback, feedback_id)


def rate(session: Session, feedback_id: int, rating: str, by: str | None) -> Feedback | None:
    """Anyone may rate; the last click wins (who clicked is FeedbackState.rated_by)."""
    if rating not in tuple(Rating):
        raise ValueError(f"unknown rating {rating!r}")
    row = session.get(Feedback, feedback_id, with_for_update=True)
    if row is None:
        return None
    row.rating = rating
    mark(row, rated_by=by)
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
    row.rating, row.correction = Rating.DOWN, redact(correction)[0]
    mark(row, rated_by=by)
    item = NewExample(
        source_key=f"feedback:{row.id}", question=row.question, answer=correction, labelled_by=by,
        source={"kind": ExampleSource.FEEDBACK, "version": row.version_name, "model": row.source.get("model"),
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
    _prefer(session, row, row.correction, by, example)
    return outcome, row, example


def _prefer(session: Session, row: Feedback, text: str, by: str | None, example: Example | None) -> None:
    """A 👎'd answer the bot gave, and the right one written for it: a preference record (the prompt is the
    draft's when the question was a draft's; a plain answer's prompt is not kept, a trainer builds one from the
    question). A declined question has no answer of the bot's to prefer against, and a reused one (core.reuse) is an
    approved answer people wrote, not the model's: no record pits two people's texts."""
    if row.rating != Rating.DOWN or FeedbackState.of(row).declined or not row.answer.strip() \
            or row.source.get("reused"):
        return
    draft = session.exec(select(Draft).where(Draft.feedback_id == row.id).limit(1)).first()
    preferences.add(session, kind=PreferenceKind.CORRECTED, channel_id=row.source.get("channel"),
                    question=row.question, prompt=draft.prompt if draft is not None else [], chosen=text,
                    rejected=row.answer, feedback_id=row.id, draft_id=draft.id if draft is not None else None,
                    pair_key=example.source_key if example is not None else None, version_name=row.version_name,
                    asker=row.user, edited_by=by)


def waiting(row: Feedback) -> bool:
    """An unanswered question for the curators: the bot declined it, or someone gave its answer a 👎; and no
    curator has answered it (nor a correction made it a candidate) or set it aside."""
    state = FeedbackState.of(row)
    unanswered = state.declined or row.rating == Rating.DOWN
    return unanswered and row.example_id is None and not state.dismissed


def unanswered(session: Session, limit: int = 20) -> list[Feedback]:
    """The newest questions waiting for a curator's answer. SQL narrows to unanswered rows that got a 👎 or that
    the bot declined (a JSON path SQLite and PostgreSQL both read); `waiting` checks the few it returns. No scan
    limit: an old question never falls out of the queue behind newer answered ones."""
    from sqlmodel import col, select

    declined = FeedbackState.declined_sql()
    query = (select(Feedback).where(col(Feedback.example_id).is_(None), (Feedback.rating == Rating.DOWN) | declined)
             .order_by(col(Feedback.id).desc()))
    found = []
    for row in session.exec(query):
        if waiting(row):
            found.append(row)
            if len(found) == limit:
                break
    return found


def answer(session: Session, feedback_id: int, text: str, by: str | None, question: str | None = None
           ) -> tuple[str, Feedback | None, Example | None]:
    """A curator's answer to a waiting question: an approved pair at once (a curator wrote it), which retrieval
    serves from the next question on. question: the curator's wording of it (default: as asked).
    Returns (outcome, feedback, example); outcome as add_examples', or GONE."""
    row = session.get(Feedback, feedback_id, with_for_update=True)
    if row is None:
        return GONE, None, None
    text = text.strip()
    if not text:
        raise ValueError("the answer is empty")
    asked = (question or "").strip() or row.question
    item = NewExample(
        source_key=f"feedback:{row.id}", question=asked, answer=redact(text)[0], status=ExampleStatus.APPROVED,
        labelled_by=by, approved_by=by,
        source={"kind": ExampleSource.UNANSWERED, "version": row.version_name, "feedback_id": row.id, "asker": row.user,
                "channel_id": row.source.get("channel"), "thread_ts": row.source.get("thread_ts"),
                "model_answer": row.answer})
    [(outcome, example)] = add_examples(session, [item])
    if outcome in (UPGRADED, EXISTS) and example is not None:  # an earlier correction of it: the curator's text wins
        if (example.question, example.answer) != (asked, item.answer):
            edit(session, example.id, asked, item.answer)
        if example.status != ExampleStatus.APPROVED:
            set_status(session, [example.id], ExampleStatus.APPROVED, by)
        outcome = UPDATED
    row.correction = item.answer
    row.example_id = example.id if example is not None else None
    _prefer(session, row, item.answer, by, example)
    return outcome, row, example


def dismiss(session: Session, feedback_id: int, by: str | None) -> Feedback | None:
    """Set a waiting question aside (not a question for the store: small talk, a duplicate)."""
    row = session.get(Feedback, feedback_id, with_for_update=True)
    if row is not None:
        mark(row, dismissed_by=by)
    return row


def answered_by_draft(session: Session, feedback_id: int, example_id: int, text: str) -> None:
    """The team sent an answer for this question from its draft card: the curators' queue no longer waits on it."""
    row = get(session, feedback_id)
    if row is not None and row.example_id is None:
        row.example_id, row.correction = example_id, text
