"""Preference records: the team's text preferred to the bot's for one question, and their copies in snapshots.

Three things make one (core.states.PreferenceKind), each with the team's text as chosen and the bot's as rejected:

- an agent's Edit & send of a draft (storage.drafts.sent);
- a draft discarded as wrong, then answered by the team in the customer's thread (storage.drafts.answered_by_hand);
- a 👎 with the right answer, on an answer the bot gave (storage.feedback.correct, feedback.answer).

A record keeps the question always, and the prompt the bot was asked with where it is known (drafts keep theirs;
a plain answer's is not stored, and a trainer builds one from the question). Its audience is its channel's, under
the same rule as pairs (storage.audience): the shared snapshot holds a private or shared channel's records only once
an admin marked that channel shareable.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import or_
from sqlmodel import Session, col, select

from core.states import ExampleStatus, PreferenceKind
from storage import audience
from storage.models import Example, Preference, SnapshotPreference


class _Record(Protocol):
    prompt: list[dict[str, str]]
    question: str
    chosen: str
    rejected: str


def usable(row: _Record) -> bool:
    """A record a preference trainer can learn from: a chosen and a rejected text that differ, and a prompt or a
    question to build one from. Works on a Preference and on its snapshot copy."""
    chosen, rejected = (row.chosen or "").strip(), (row.rejected or "").strip()
    return bool(chosen and rejected and chosen != rejected and (row.prompt or (row.question or "").strip()))


def add(session: Session, *, kind: str, channel_id: str | None, question: str, chosen: str, rejected: str,
        prompt: list[dict[str, str]] | None = None, draft_id: int | None = None, feedback_id: int | None = None,
        pair_key: str | None = None, version_name: str | None = None, asker: str | None = None,
        edited_by: str | None = None) -> Preference | None:
    """Store one record (texts already redacted by the caller, as every stored text is). A second record of the same
    kind for the same draft or feedback row (a second correction) replaces the first's texts. None: nothing a trainer
    could use (the bot's text is empty, or the team's says the same)."""
    row = Preference(kind=PreferenceKind(kind), channel_id=channel_id or "",
                     audience=audience.kind_of(session, channel_id), prompt=list(prompt or []),
                     question=question, chosen=chosen.strip(), rejected=rejected.strip(), draft_id=draft_id,
                     feedback_id=feedback_id, pair_key=pair_key, version_name=version_name, asker=asker,
                     edited_by=edited_by)
    if not usable(row):
        return None
    earlier = _same_source(session, row)
    if earlier is not None:
        earlier.chosen, earlier.edited_by = row.chosen, row.edited_by
        earlier.pair_key = row.pair_key or earlier.pair_key
        return earlier
    session.add(row)
    session.flush()
    return row


def _same_source(session: Session, row: Preference) -> Preference | None:
    if row.draft_id is None and row.feedback_id is None:
        return None
    query = select(Preference).where(Preference.kind == row.kind)
    query = query.where(Preference.draft_id == row.draft_id) if row.draft_id is not None else \
        query.where(Preference.feedback_id == row.feedback_id)
    return session.exec(query.limit(1)).first()


def link_pair(session: Session, draft_id: int, kind: str, pair_key: str | None) -> None:
    """The chosen text became a stored pair after the record was made (a reply read from the thread): the record's
    side is that pair's from now on."""
    if pair_key is None:
        return
    for row in session.exec(select(Preference).where(Preference.draft_id == draft_id, Preference.kind == kind)):
        row.pair_key = pair_key


def for_shared_model(session: Session) -> list[Preference]:
    """The usable records the shared adapter may learn (storage.audience, asked with no channel), oldest first. A
    record whose chosen text a curator rejected as a pair is left out: the team's text was not the right one."""
    everywhere = audience.scope(session, None)
    rejected = select(Example.source_key).where(Example.status == ExampleStatus.REJECTED)
    rows = session.exec(select(Preference).where(
        everywhere.clause(Preference.audience, Preference.channel_id),
        or_(col(Preference.pair_key).is_(None), col(Preference.pair_key).not_in(rejected)),
    ).order_by(col(Preference.id)))
    return [row for row in rows if usable(row)]


def snapshot_preferences(session: Session, snapshot_id: int, side: str | None = None) -> list[SnapshotPreference]:
    """The records a snapshot holds (on one side: "train" or "validation"), ordered by preference_id."""
    query = select(SnapshotPreference).where(SnapshotPreference.snapshot_id == snapshot_id)
    if side:
        query = query.where(SnapshotPreference.side == side)
    return list(session.exec(query.order_by(col(SnapshotPreference.preference_id))))
