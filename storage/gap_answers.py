"""An answer written for a knowledge gap ("Write the answer", bot.gaps): one pair, approved when a curator wrote it
and a candidate when an agent did, whose audience is the gap's channels; the gap's questions still waiting in a
draft-mode channel are offered it as their draft. One transaction.

A gap's questions travel as refs ("draft:12", "feedback:34", storage.gaps' GapQuestion.ref) and are read again
here: a question erased or answered since the gap was listed is simply no longer among them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from core.modes import policy
from core.states import ChannelKind, ExampleSource, ExampleStatus
from storage import audience, channels, drafts, feedback
from storage.examples import NewExample, add_examples
from storage.models import Draft, Example, Feedback

DRAFT, FEEDBACK = "draft", "feedback"


@dataclass(frozen=True)
class Member:
    """One of a gap's questions, as the form shows it and the answer is filed against it."""

    ref: str
    question: str
    channel_id: str | None
    asker: str | None
    draft_id: int | None = None
    feedback_id: int | None = None


@dataclass
class Written:
    outcome: str  # add_examples' (created, duplicate, exists, upgraded)
    example: Example | None
    offered: list[tuple[Draft, str]] = field(default_factory=list)  # (draft offered the answer, its drafts channel)
    answered: int = 0  # questions in the curators' queue the approved pair now answers


def parse_ref(ref: str) -> tuple[str, int] | None:
    kind, _, number = ref.partition(":")
    return (kind, int(number)) if kind in (DRAFT, FEEDBACK) and number.isdigit() else None


def members(session: Session, refs: list[str]) -> list[Member]:
    """The questions behind refs that are still stored, in the order given (a draft's question once: its feedback
    row, when also listed, is the same question)."""
    wanted = [p for p in (parse_ref(r) for r in refs) if p]
    draft_ids = [i for kind, i in wanted if kind == DRAFT]
    fb_ids = [i for kind, i in wanted if kind == FEEDBACK]
    found: dict[tuple[str, int], Member] = {}
    for d in session.exec(select(Draft).where(col(Draft.id).in_(draft_ids or [-1]))):
        found[(DRAFT, d.id)] = Member(f"{DRAFT}:{d.id}", d.question, d.channel_id, d.asker, d.id, d.feedback_id)
    of_drafts = {m.feedback_id for m in found.values()}
    for fb in session.exec(select(Feedback).where(col(Feedback.id).in_(fb_ids or [-1]))):
        if fb.id not in of_drafts:
            found[(FEEDBACK, fb.id)] = Member(f"{FEEDBACK}:{fb.id}", fb.question, fb.source.get("channel"), fb.user,
                                              feedback_id=fb.id)
    return [found[p] for p in wanted if p in found]


def pair_channel(kinds: dict[str, str], viewer: str | None) -> str | None:
    """Where the written pair may be used (storage.audience): everywhere (None) when every question came from a
    public channel; else the non-public channel it was written for: the viewer's, when the gap has its
    questions, else the first. (A gap listed somewhere holds only that channel's questions and those usable
    everywhere, so at most one non-public channel is ever at stake.)"""
    private = sorted(c for c, kind in kinds.items() if kind not in audience.EVERYWHERE)
    if not private:
        return None
    return viewer if viewer in private else private[0]


def answer_gap(session: Session, refs: list[str], *, question: str, answer: str, by: str, curator: bool,
               viewer: str | None) -> Written:
    """Store the written pair and offer it to the gap's waiting drafts in draft-mode channels. A curator's pair is
    approved at once (retrieval serves it from the next question) and answers the gap's questions waiting in the
    curators' queue; an agent's is a candidate for a curator."""
    found = members(session, refs)
    kinds = {m.channel_id: audience.kind_of(session, m.channel_id) for m in found if m.channel_id}
    channel = pair_channel(kinds, viewer)
    asked = next((m.asker for m in found if m.question.strip() == question.strip()), None)  # their words, erasable
    status = ExampleStatus.APPROVED if curator else ExampleStatus.CANDIDATE
    key = hashlib.sha256("\n".join([*sorted(refs), question, answer]).encode()).hexdigest()[:24]
    item = NewExample(source_key=f"gap:{key}", question=question, answer=answer, status=status, labelled_by=by,
                      approved_by=by if curator else None, channel_id=channel,
                      audience=None if channel else ChannelKind.PUBLIC,
                      source={"kind": ExampleSource.GAP, "answerer": by, "asker": asked, "channel_id": channel,
                              "channels": sorted(kinds), "questions": [m.ref for m in found][:50]})
    [(outcome, example)] = add_examples(session, [item])
    written = Written(outcome, example)
    if example is not None and example.status == ExampleStatus.APPROVED:
        for m in found:
            fb = feedback.get(session, m.feedback_id) if m.feedback_id else None
            if fb is not None and feedback.waiting(fb):
                feedback.answered_by_draft(session, fb.id, example.id, example.answer)
                written.answered += 1
    pair_kind = audience.kind_of(session, channel) if channel else ChannelKind.PUBLIC
    for m in found:
        row = drafts.get(session, m.draft_id) if m.draft_id is not None else None
        where = _drafts_channel(session, row, pair_kind, channel) if row is not None else None
        if where and drafts.offer(session, row.id, answer, by) is not None:
            written.offered.append((row, where))
    return written


def _drafts_channel(session: Session, row: Draft, pair_kind: str, pair_channel: str | None) -> str | None:
    """Where the draft's card goes now, if its channel is in draft mode and may use the pair (storage.audience: a
    private channel's answer is offered in that channel only)."""
    ch = channels.get(session, row.channel_id)
    if ch is None or not (policy(ch.mode).drafts_card and policy(row.mode).drafts_card):
        return None
    return ch.drafts_channel if audience.scope(session, row.channel_id).allows(pair_kind, pair_channel) else None
