"""Drafts: a customer's question in a draft or auto channel, the bot's answer, and what the team did with it.

Every state change is one short transaction that checks the state it starts from, so two agents pressing Send
together post once, and a draft that expired or was answered by hand cannot be sent after all.
"""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.modes import policy
from core.states import DiscardReason, DraftStatus, ExampleSource, ExampleStatus, PreferenceKind
from storage import preferences
from storage.examples import CREATED, DUPLICATE, EXISTS, UPGRADED, NewExample, add_examples
from storage.models import Draft, Example, Preference, utcnow
from storage.redact import redact


def open_draft(session: Session, *, mode: str, channel_id: str, question_ts: str, asker: str | None, question: str,
               asked_at: datetime | None = None) -> Draft | None:
    """The row for a new question; None when this question already has one (a retry, a second replica)."""
    row = Draft(mode=mode, channel_id=channel_id, question_ts=question_ts, asker=asker,
                question=redact(question)[0], asked_at=asked_at or utcnow())
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


# An abandoned draft's updated_at is moved this far back, so the next sweep (or a restart) answers it at once.
_ABANDONED_AGE = timedelta(days=1)


def abandon(session: Session, draft_id: int) -> None:
    """The bot stopped while answering (a shutdown's grace ran out): mark the draft due for recovery now."""
    session.exec(update(Draft).where(col(Draft.id) == draft_id, col(Draft.feedback_id).is_(None))
                 .values(updated_at=utcnow() - _ABANDONED_AGE))


def unanswered(session: Session, untouched_since: datetime) -> list[Draft]:
    """Drafts whose question row was made but whose answer was never recorded (the bot stopped in between), not
    touched since untouched_since. Each is claimed by moving its updated_at to now, in one UPDATE that checks the
    value read, so of two replicas sweeping together one answers it, and a failed recovery waits its turn again."""
    rows = list(session.exec(select(Draft).where(Draft.status == DraftStatus.PENDING, col(Draft.feedback_id).is_(None),
                                                 col(Draft.bot_response_at).is_(None),
                                                 col(Draft.updated_at) < untouched_since)))
    claimed = []
    for row in rows:
        result = session.exec(update(Draft).where(col(Draft.id) == row.id, col(Draft.updated_at) == row.updated_at)
                              .values(updated_at=utcnow()))
        if result.rowcount == 1:
            session.refresh(row)
            claimed.append(row)
    return claimed


def get(session: Session, draft_id: int) -> Draft | None:
    return session.get(Draft, draft_id)


def by_thread(session: Session, channel_id: str, thread_ts: str) -> Draft | None:
    return session.exec(select(Draft).where(Draft.channel_id == channel_id, Draft.question_ts == thread_ts)).first()


def record_answer(session: Session, draft_id: int, *, status: str, answer: str, model_answer: str, declined: bool,
                  grounding: dict[str, Any], context: list[str], prompt: list[dict[str, str]],
                  version_name: str | None, model: str, feedback_id: int | None,
                  reused: dict[str, Any] | None = None) -> Draft:
    """What the bot would send, and the evidence behind it (kept for the card, the stats and preference records).
    reused: the approved pair given as it is (core.reuse), whose answer the draft is."""
    row = session.get(Draft, draft_id)
    row.reused = dict(reused or {})
    row.status, row.declined, row.grounding, row.context = status, declined, grounding, context
    row.answer, row.model_answer = redact(answer)[0], redact(model_answer)[0]
    row.prompt = [{"role": m["role"], "content": redact(m["content"])[0]} for m in prompt]
    row.version_name, row.model, row.feedback_id = version_name, model, feedback_id
    row.updated_at = utcnow()
    return row


def posted(session: Session, draft_id: int, *, card_channel: str | None = None, card_ts: str | None = None
           ) -> Draft:
    """The bot's first response reached Slack: the draft card (draft mode) or the answer (auto mode)."""
    row = session.get(Draft, draft_id)
    row.drafts_channel, row.card_ts = card_channel or row.drafts_channel, card_ts or row.card_ts
    row.bot_response_at = row.bot_response_at or utcnow()
    return row


def _move(session: Session, draft_id: int, from_states: tuple[str, ...], to: str, **values: Any) -> Draft | None:
    """Change a draft's status only if it is still in one of from_states: one UPDATE, so one of two racing agents
    wins on SQLite and PostgreSQL alike. Returns the row after the change, or None when someone else was first."""
    result = session.exec(update(Draft).where(col(Draft.id) == draft_id, col(Draft.status).in_(from_states))
                          .values(status=to, updated_at=utcnow(), **values))
    if result.rowcount != 1:
        return None
    row = session.get(Draft, draft_id)
    session.refresh(row)
    return row


# A draft waiting for a person: a card (pending), a hand-off (auto mode declined), or no answer from the model.
SENDABLE = (DraftStatus.PENDING, DraftStatus.HANDED_OFF, DraftStatus.FAILED)


def claim(session: Session, draft_id: int, by: str) -> Draft | None:
    """Take a waiting draft to send it (Send, Edit & send, Answer). None: already answered, discarded or expired."""
    row = session.get(Draft, draft_id)
    if row is None or row.sent_ts or row.status not in SENDABLE:
        return None
    return _move(session, draft_id, (row.status,), DraftStatus.SENDING, acted_by=by)


def _waiting_status(row: Draft) -> str:
    """The status a claimed draft had: auto mode's are hand-offs; a draft without the model's answer failed."""
    if policy(row.mode).hands_off_on_decline:
        return DraftStatus.HANDED_OFF
    return DraftStatus.PENDING if row.model_answer else DraftStatus.FAILED


def release(session: Session, draft_id: int) -> None:
    """Posting failed: the draft waits again as it was, so an agent can retry."""
    row = session.get(Draft, draft_id)
    if row is not None:
        _move(session, draft_id, (DraftStatus.SENDING,), _waiting_status(row), acted_by=None)


def edit_size(before: str, after: str) -> int:
    """Characters inserted plus characters deleted to turn the draft into what was sent."""
    size = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op != "equal":
            size += (i2 - i1) + (j2 - j1)
    return size


def sent(session: Session, draft_id: int, *, text: str, sent_ts: str, by: str, curator: bool
         ) -> tuple[Draft, str, Example | None]:
    """A claimed draft reached the customer's thread: sent unchanged or edited, the pair stored (approved when a
    curator sent it, else a candidate), and an edit kept as a preference record (not of a reused draft: its answer
    is an approved answer people wrote, not the model's). Returns (draft, the pair's add_examples outcome,
    example)."""
    row = session.get(Draft, draft_id)
    text = redact(text.strip())[0]
    unchanged = not row.declined and text == row.answer.strip()
    now = utcnow()
    # Auto mode's hand-off stays a hand-off in the figures; the agent's answer is kept beside it.
    row.status = DraftStatus.HANDED_OFF if policy(row.mode).hands_off_on_decline else \
        DraftStatus.SENT if unchanged else DraftStatus.EDITED
    row.sent_text, row.sent_ts, row.acted_by, row.acted_at = text, sent_ts, by, now
    row.human_response_at = row.human_response_at or now
    row.edit_chars = 0 if unchanged else edit_size(row.answer, text)
    row.updated_at = now
    status = ExampleStatus.APPROVED if curator else ExampleStatus.CANDIDATE
    item = NewExample(source_key=f"draft:{row.id}", question=row.question, answer=text, status=status,
                      labelled_by=by, approved_by=by if curator else None,
                      source={"kind": ExampleSource.DRAFT, "channel_id": row.channel_id, "thread_ts": row.question_ts,
                              "ts": sent_ts, "asker": row.asker, "answerer": by, "version": row.version_name,
                              "draft_id": row.id, "edited": not unchanged})
    [(outcome, example)] = add_examples(session, [item])
    if outcome in (CREATED, UPGRADED, DUPLICATE, EXISTS) and example is not None:
        row.example_id = example.id
    if not unchanged and not row.declined and row.answer and not row.reused:
        preferences.add(session, kind=PreferenceKind.EDITED, channel_id=row.channel_id, question=row.question,
                        prompt=row.prompt, chosen=text, rejected=row.answer, draft_id=row.id,
                        pair_key=example.source_key if example is not None else None,
                        version_name=row.version_name, asker=row.asker, edited_by=by)
    return row, outcome, example


def discard(session: Session, draft_id: int, by: str, reason: str) -> Draft | None:
    if reason not in tuple(DiscardReason):
        raise ValueError(f"unknown reason {reason!r}: one of {', '.join(DiscardReason)}")
    return _move(session, draft_id, (DraftStatus.PENDING, DraftStatus.FAILED), DraftStatus.DISCARDED, acted_by=by,
                 acted_at=utcnow(), discard_reason=reason)


def answered_by_hand(session: Session, channel_id: str, thread_ts: str, *, by: str, text: str, reply_ts: str
                     ) -> Draft | None:
    """A team member replied in the customer's thread. A pending draft is superseded by it; in any mode the first
    such reply is the human's first response. Returns the draft, or None when the thread has none."""
    row = by_thread(session, channel_id, thread_ts)
    if row is None:
        return None
    now = utcnow()
    if row.status == DraftStatus.PENDING:
        moved = _move(session, row.id, (DraftStatus.PENDING,), DraftStatus.SUPERSEDED, acted_by=by, acted_at=now,
                      sent_text=redact(text)[0], sent_ts=reply_ts)
        row = moved or row
    if row.human_response_at is None:
        row.human_response_at = now
    return row


def answered_after_discard(session: Session, draft_id: int, *, by: str, text: str) -> Preference | None:
    """A team member answered in the thread of a draft they (or another) discarded as wrong: their reply is preferred
    to the draft, a preference record (the first such reply only; later ones are conversation). None when the draft
    was not discarded as wrong, had no answer of the model's (declined, or an approved answer reused as it is), or
    already has its record."""
    row = session.get(Draft, draft_id)
    if row is None or row.status != DraftStatus.DISCARDED or row.discard_reason != DiscardReason.WRONG \
            or row.declined or not row.answer or row.reused:
        return None
    if preferences.of_draft(session, row.id, PreferenceKind.DISCARDED_THEN_ANSWERED) is not None:
        return None
    return preferences.add(session, kind=PreferenceKind.DISCARDED_THEN_ANSWERED, channel_id=row.channel_id,
                           question=row.question, prompt=row.prompt, chosen=redact(text.strip())[0],
                           rejected=row.answer, draft_id=row.id, version_name=row.version_name, asker=row.asker,
                           edited_by=by)


def link_example(session: Session, draft_id: int, example_id: int | None) -> None:
    row = session.get(Draft, draft_id)
    if row is not None and example_id is not None:
        row.example_id = example_id


def asker_followed_up(session: Session, channel_id: str, thread_ts: str, user: str) -> Draft | None:
    """The asker wrote again after the bot's auto answer: the answer did not (yet) resolve it."""
    row = by_thread(session, channel_id, thread_ts)
    if (row is not None and policy(row.mode).posts_answer and row.asker == user and row.bot_response_at is not None
            and row.followed_up_at is None):
        row.followed_up_at = utcnow()
    return row


def resolve(session: Session, draft_id: int, by: str) -> tuple[bool, Draft | None]:
    """"This solved it", pressed by the asker (anyone else is refused). (accepted, draft)."""
    row = session.get(Draft, draft_id, with_for_update=True)
    if row is None or row.asker != by:
        return False, row
    if row.resolved_at is None:
        row.resolved_by, row.resolved_at = by, utcnow()
    return True, row


def expire(session: Session, ttl_h: float, now: datetime | None = None) -> list[Draft]:
    """Pending drafts older than ttl_h hours: nobody acted on them in time (not one still being answered: its
    Feedback row comes with the answer)."""
    cutoff = (now or utcnow()) - timedelta(hours=ttl_h)
    stale = list(session.exec(select(Draft.id).where(Draft.status == DraftStatus.PENDING, Draft.asked_at < cutoff,
                                                     col(Draft.feedback_id).is_not(None))))
    return [row for row in (_move(session, i, (DraftStatus.PENDING,), DraftStatus.EXPIRED) for i in stale) if row]


def note_card(session: Session, draft_id: int, card_channel: str, card_ts: str) -> None:
    """Where the draft's card is: the one written in front of the team (from its first line), or auto mode's
    hand-off card, posted after its first response."""
    row = get(session, draft_id)
    row.drafts_channel, row.card_ts = card_channel, card_ts


def offer(session: Session, draft_id: int, text: str, by: str) -> Draft | None:
    """An answer written for a knowledge gap (bot.gaps), offered as this waiting draft's answer: Send posts it, Edit &
    send starts from it. Only a draft still waiting for a person (pending or failed, nothing posted): one UPDATE that
    checks it, so a Send racing it wins or loses whole. The draft stays declined, as the bot left it, so what is
    sent counts as the team's answer (edited), never as the model's draft sent unchanged, and no preference
    record pits two people's texts. None: it was acted on meanwhile."""
    result = session.exec(update(Draft).where(col(Draft.id) == draft_id, col(Draft.declined).is_(True),
                                              col(Draft.status).in_((DraftStatus.PENDING, DraftStatus.FAILED)),
                                              col(Draft.sent_ts).is_(None))
                          .values(answer=redact(text.strip())[0], written_by=by, updated_at=utcnow()))
    if result.rowcount != 1:
        return None
    row = session.get(Draft, draft_id)
    session.refresh(row)
    return row
