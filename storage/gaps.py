"""Knowledge gaps: the questions the bot could not answer over a window, grouped by meaning, largest group first.

What counts (`unanswered`): a question the bot declined, or handed off to the team (auto mode); a draft the team
discarded as wrong or outdated; an answer rated 👎. A watched channel's question is its Draft row (its Feedback row,
which carries the 👍/👎, is the same question); any other question (a mention, a DM, the agent view) is its Feedback
row. Left out: a draft the model server failed to answer (an outage, not a gap), a draft discarded as "not a
question", a question a curator set aside. The same question asked twice in one thread counts once.

Who sees what (`find_gaps`): a question is shown where a pair from its channel could be retrieved (storage.audience's
Scope, as retrieval uses it), and so is the nearest approved pair. Gaps hold no rows of their own: erasure and
retention delete the Draft and Feedback rows they are computed from, and the gap goes with them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import or_
from sqlmodel import Session, col, select

from core.clusters import cluster
from core.contract import RETRIEVAL
from core.states import ChannelKind, DiscardReason, DraftStatus, GapKind, Rating
from storage import audience
from storage import embeddings as stored
from storage.feedback import FeedbackState
from storage.models import Draft, Feedback, SlackChannel

if TYPE_CHECKING:
    import numpy as np

    from core.embedder import Embedder

# Cosine distance (1 - cosine of all-MiniLM-L6-v2 question embeddings) at which two groups of questions stop joining
# (average linkage, core.clusters). Swept on Quillmate by bench/gaps.py (206 declined questions: 142 of 40 known facts,
# 64 off-store or chatter, each its own topic): purity 0.96 at 0.26, 0.86 at 0.32, 0.83 at 0.34, 0.77 at 0.36, 0.62 at
# 0.50 (HDBSCAN: 0.71). 0.34 is the widest cut that keeps a gap to one topic at least 80 % of the time; it groups 31 %
# of a fact's questions (18 of 40 facts become a gap): MiniLM puts "Solo price" near "Agency price", and a question
# no fact answers near the fact beside it, so a wider cut mixes topics faster than it completes them.
GAP_THRESHOLD = 0.34

DISCARDED = {DiscardReason.WRONG: GapKind.DISCARDED_WRONG, DiscardReason.OUTDATED: GapKind.DISCARDED_OUTDATED}
EXAMPLES = 3  # example questions a gap shows


@dataclass
class GapQuestion:
    ref: str  # "draft:<id>" | "feedback:<id>"
    kind: str  # core.states.GapKind
    question: str
    channel_id: str | None
    audience: str  # the channel's core.states.ChannelKind
    asked_at: datetime  # UTC
    open: bool  # no person has answered it yet (in the thread, by sending a draft, or in the curators' queue)
    draft_id: int | None = None
    feedback_id: int | None = None
    thread_ts: str | None = None  # the thread it was asked in: the same question asked again there counts once

    def to_json(self) -> dict:
        return {"ref": self.ref, "kind": str(self.kind), "question": self.question, "channel": self.channel_id,
                "asked_at": self.asked_at.isoformat(), "open": self.open}


@dataclass
class NearestPair:
    """The approved pair closest to a gap (cosine between the pair's stored row and the gap's mean question)."""

    example_id: int
    question: str
    answer: str
    score: float


@dataclass
class Gap:
    key: str  # stable short id of its member questions (gap_key)
    questions: list[GapQuestion]  # newest first
    nearest: NearestPair | None = None

    @property
    def size(self) -> int:
        return len(self.questions)

    @property
    def channels(self) -> list[str]:
        return sorted({q.channel_id for q in self.questions if q.channel_id})

    @property
    def examples(self) -> list[str]:
        """Up to 3 of its questions, newest first, each wording once."""
        seen: dict[str, str] = {}
        for q in self.questions:
            seen.setdefault(_normal(q.question), q.question)
            if len(seen) == EXAMPLES:
                break
        return list(seen.values())

    @property
    def open_questions(self) -> list[GapQuestion]:
        return [q for q in self.questions if q.open]


def gap_key(refs: Iterable[str]) -> str:
    """The same members, the same key, in any order."""
    return hashlib.sha1("\n".join(sorted(refs)).encode()).hexdigest()[:10]


def unanswered(session: Session, since: datetime) -> list[GapQuestion]:
    """The questions asked at or after `since` that the bot could not answer (see the module's doc), newest first."""
    since = _utc(since)
    found = _draft_questions(session, since) + _feedback_questions(session, since)
    kinds = _channel_kinds(session, {q.channel_id for q in found if q.channel_id})
    for q in found:
        q.audience = kinds.get(q.channel_id, ChannelKind.UNKNOWN) if q.channel_id else ChannelKind.UNKNOWN
    found.sort(key=lambda q: (q.asked_at, q.ref), reverse=True)
    return _once_per_thread(found)


def find_gaps(session: Session, embedder: "Embedder", *, since: datetime, scope: audience.Scope | None = None,
              min_size: int = 2) -> list[Gap]:
    """The groups of at least min_size unanswered questions since `since` that `scope` may see (None: those usable
    everywhere, as a DM's retrieval), largest first, each with the nearest approved pair under the same scope."""
    scope = scope if scope is not None else audience.scope(session, None)
    questions = [q for q in unanswered(session, since) if scope.allows(q.audience, q.channel_id)]
    if len(questions) < max(min_size, 1):
        return []
    vectors = embedder.embed([RETRIEVAL.query_text(q.question) for q in questions])
    members: dict[int, list[int]] = {}
    for i, label in enumerate(cluster(vectors, GAP_THRESHOLD)):
        members.setdefault(label, []).append(i)  # questions are newest first, and stay so
    groups = [rows for rows in members.values() if len(rows) >= min_size]
    nearest = _nearest_pairs(session, embedder, scope, [vectors[rows] for rows in groups])
    gaps = [Gap(gap_key(questions[i].ref for i in rows), [questions[i] for i in rows], pair)
            for rows, pair in zip(groups, nearest)]
    gaps.sort(key=lambda g: (-g.size, -g.questions[0].asked_at.timestamp(), g.key))
    return gaps


# --- what counts ------------------------------------------------------------------------------------------------

def _draft_questions(session: Session, since: datetime) -> list[GapQuestion]:
    down = select(Feedback.id).where(Feedback.rating == Rating.DOWN)
    query = (select(Draft, Feedback).outerjoin(Feedback, col(Draft.feedback_id) == col(Feedback.id))
             .where(col(Draft.asked_at) >= since, Draft.status != DraftStatus.FAILED,
                    or_(col(Draft.declined), Draft.status == DraftStatus.HANDED_OFF,
                        col(Draft.discard_reason).in_(list(DISCARDED)), col(Draft.feedback_id).in_(down))))
    found = []
    for draft, fb in session.exec(query):
        kind = _draft_kind(draft, fb)
        if kind is None:
            continue
        answered = bool(draft.sent_ts or draft.human_response_at or draft.example_id or (fb and fb.example_id))
        found.append(GapQuestion(f"draft:{draft.id}", kind, draft.question, draft.channel_id, ChannelKind.UNKNOWN,
                                 _utc(draft.asked_at), not answered, draft.id, draft.feedback_id, draft.question_ts))
    return found


def _draft_kind(draft: Draft, fb: Feedback | None) -> GapKind | None:
    """The team's verdict first (a discard), then the bot's (hand-off, decline), then a 👎 on an auto answer."""
    if draft.status == DraftStatus.DISCARDED:
        return DISCARDED.get(draft.discard_reason)  # "not a question", "other": the team said it is no gap
    if draft.status == DraftStatus.HANDED_OFF:
        return GapKind.HANDED_OFF
    if draft.declined:
        return GapKind.DECLINED
    return GapKind.RATED_DOWN if fb is not None and fb.rating == Rating.DOWN else None


def _feedback_questions(session: Session, since: datetime) -> list[GapQuestion]:
    """Questions asked outside watched channels (a draft's own Feedback row is its draft's question)."""
    of_drafts = select(Draft.feedback_id).where(col(Draft.feedback_id).is_not(None))
    query = select(Feedback).where(col(Feedback.created_at) >= since, col(Feedback.id).not_in(of_drafts),
                                   or_(Feedback.rating == Rating.DOWN, FeedbackState.declined_sql()))
    found = []
    for row in session.exec(query):
        state = FeedbackState.of(row)
        if state.dismissed or (row.source or {}).get("error"):  # set aside by a curator; the server failed
            continue
        kind = GapKind.DECLINED if state.declined else GapKind.RATED_DOWN
        src = row.source or {}
        found.append(GapQuestion(f"feedback:{row.id}", kind, row.question, src.get("channel"), ChannelKind.UNKNOWN,
                                 _utc(row.created_at), row.example_id is None, None, row.id, src.get("thread_ts")))
    return found


def _once_per_thread(found: list[GapQuestion]) -> list[GapQuestion]:
    """The same question asked again in its thread (a retry after "I don't know") counts once: the newest ask."""
    seen, kept = set(), []
    for q in found:
        key = _thread_key(q)
        if key is None or key not in seen:
            kept.append(q)
        if key is not None:
            seen.add(key)
    return kept


def _thread_key(q: GapQuestion) -> tuple[str, str, str] | None:
    return (q.channel_id, q.thread_ts, _normal(q.question)) if q.channel_id and q.thread_ts else None


def _channel_kinds(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(SlackChannel.id, SlackChannel.kind).where(col(SlackChannel.id).in_(sorted(ids)))
    return {channel: kind for channel, kind in session.exec(query)}


# --- the nearest approved pair ----------------------------------------------------------------------------------

def _nearest_pairs(session: Session, embedder: "Embedder", scope: audience.Scope,
                   groups: list["np.ndarray"]) -> list[NearestPair | None]:
    """Per group of question vectors, the approved pair the scope may see whose stored row is nearest the group's
    mean direction. Reads the retrieval index's stored rows (storage.embeddings); a pair not yet embedded there (the
    index has not caught up) is not considered."""
    import numpy as np

    if not groups:
        return []
    current = {ex_id: stored.text_hash(text) for ex_id, text in stored.approved_texts(session)}
    who = stored.audiences(session)
    ids, rows = [], []
    for ex_id, text_hash, blob in stored.vectors(session, embedder.name):
        kind, channel = who.get(ex_id, (ChannelKind.UNKNOWN, ""))
        if current.get(ex_id) == text_hash and scope.allows(kind, channel or None):
            ids.append(ex_id)
            rows.append(np.frombuffer(blob, dtype="<f4"))
    if not ids:
        return [None] * len(groups)
    matrix = np.stack(rows).astype(np.float32)
    best = []
    for vectors in groups:
        centre = vectors.mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        scores = matrix @ centre
        top = int(np.argmax(scores))
        best.append((ids[top], float(scores[top])))
    pairs = stored.approved_by_ids(session, [i for i, _ in best])
    return [NearestPair(i, pairs[i].question, pairs[i].answer, round(score, 4)) if i in pairs else None
            for i, score in best]


# --- helpers ----------------------------------------------------------------------------------------------------

def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
