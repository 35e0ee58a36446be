"""Erasure: a person's messages, as asker or answerer, removed from everything ftbot stored (`ft forget-user`).

What goes: examples they asked or answered (with their snapshot copies and index rows, and the text of drafts that
gave such an answer as it is), their questions and corrections in the feedback and the curators' queue, drafts of
their questions, preference records of their questions or with their text as the chosen one (edits, replies,
corrections) with the records' snapshot copies, the prompts of others' records and drafts that held their text as
context (cleared: a trainer builds a prompt from the question), and their id wherever it names who did something
(labelled_by, decided_by, …). Every version trained on a snapshot that held their text is flagged "contains erased
data" (an adapter keeps what it learned), and a retraining job is queued. The audit record (Erasure) keeps a hash of
their id and counts, never their text. Nothing here logs their text or id.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, text
from sqlmodel import Session, col, select

from core.states import ExampleSource, VersionStatus
from storage import Store, audience
from storage.erasure_files import ERASED, MIN_TEXT, FileScrub, files_mention, scrub_files
from storage.feedback import FeedbackState
from storage.jobs import ACTIVE, enqueue
from storage.models import (
    ChannelChange,
    DatasetSnapshot,
    Draft,
    Erasure,
    Example,
    ExampleEmbedding,
    Feedback,
    ModelVersion,
    Preference,
    SlackChannel,
    SnapshotExample,
    SnapshotPreference,
    TrainingJob,
)

log = logging.getLogger("ftbot.erasure")
REQUESTED_BY = "erasure"
__all__ = ["ERASED", "ErasureReport", "FileScrub", "NothingStored", "compact", "database_file", "forget_user",
           "scrub_files"]


def user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


@dataclass
class ErasureReport:
    erasure_id: int | None = None
    examples: int = 0  # pairs they asked or answered, deleted
    snapshot_rows: int = 0  # copies of them in dataset snapshots, deleted
    index_rows: int = 0  # their pairs' embeddings, deleted
    feedback: int = 0  # questions they asked the bot (the curators' queue included), deleted
    corrections: int = 0  # their corrections of other people's answers, cleared
    drafts: int = 0  # drafts of their questions, deleted
    drafts_cleared: int = 0  # drafts they sent or edited: the texts cleared
    preferences: int = 0  # preference records of their questions, edits, replies or corrections, deleted
    preference_copies: int = 0  # copies of those records in dataset snapshots, deleted
    prompts_cleared: int = 0  # others' drafts and preference records whose prompt held their text as context
    mentions: int = 0  # rows that only named them (labelled, approved, decided, requested by): the id cleared
    versions: list[str] = field(default_factory=list)  # trained on their text: flagged "contains erased data"
    deployed: str | None = None  # of those, the one deployed now
    job_id: int | None = None  # the retraining job queued
    files: list[str] = field(default_factory=list)  # files under the data folder their text was erased from
    files_left: list[str] = field(default_factory=list)  # "path: why": files holding them that were not rewritten

    def counts(self) -> dict[str, Any]:
        """What the audit record keeps: numbers and version names, nothing of theirs."""
        return {k: v for k, v in self.__dict__.items() if k not in ("erasure_id", "files", "files_left")} | {
            "files": len(self.files)}

    def empty(self) -> bool:
        return not any(v for k, v in self.counts().items())


def forget_user(session: Session, user_id: str, by: str | None, *, retrain: bool = True,
                data_dir: Path | None = None, database: Path | None = None) -> tuple[ErasureReport, set[str]]:
    """Remove what `user_id` wrote (see the module's doc). Returns the report and the texts removed (for
    scrub_files); the caller commits, then calls compact(). Raises NothingStored (writing nothing) when no row and
    no file under data_dir names them: an id ftbot never saw, a typo."""
    report = ErasureReport()
    texts: set[str] = set()
    snapshot_ids, example_ids = _forget_examples(session, user_id, report, texts)  # 1.
    snapshot_ids |= _forget_preferences(session, user_id, report, texts)  # 2.
    feedback_of_drafts = _forget_drafts(session, user_id, report, texts, example_ids)  # 3.
    _forget_feedback(session, user_id, report, texts, feedback_of_drafts)  # 4.
    _forget_mentions(session, user_id, report)  # 5.
    texts = {t.strip() for t in texts if t and len(t.strip()) >= MIN_TEXT}
    _clear_prompts(session, report, texts)
    _flag_versions(session, user_id, report, texts, snapshot_ids)  # 6.
    if report.empty() and not texts and (data_dir is None or not files_mention(data_dir, user_id, database)):
        raise NothingStored(user_id)
    if retrain and report.versions:  # 7.
        report.job_id = _retrain(session, report.versions)
    record = Erasure(user_hash=user_hash(user_id), by=by if by != user_id else None, counts=report.counts(),
                     job_id=report.job_id)
    session.add(record)
    session.flush()
    report.erasure_id = record.id
    log.info("erasure %s: %d examples, %d snapshot rows, %d feedback rows, %d drafts, %d versions flagged",
             record.id, report.examples, report.snapshot_rows, report.feedback, report.drafts, len(report.versions))
    return report, texts


def _forget_examples(session: Session, user_id: str, report: ErasureReport, texts: set[str]
                     ) -> tuple[set[int], set[int]]:
    """1. Examples they asked or answered (the JSON source names them), with their copies and index rows; returns
    the snapshots that held them and the examples' ids."""
    theirs = [ex for ex in session.exec(select(Example)) if _names(ex.source, user_id, ("asker", "answerer"))
              # a correction they wrote, their answer to a question in the curators' queue or to a knowledge gap
              or (ex.labelled_by == user_id
                  and ex.source.get("kind") in (ExampleSource.FEEDBACK, ExampleSource.UNANSWERED, ExampleSource.GAP))]
    ids = [ex.id for ex in theirs]
    texts.update(t for ex in theirs for t in (ex.question, ex.answer))
    snapshot_ids: set[int] = set()
    if ids:
        copies = list(session.exec(select(SnapshotExample).where(col(SnapshotExample.example_id).in_(ids))))
        texts.update(t for c in copies for t in (c.question, c.answer))
        for c in copies:
            snapshot_ids.add(c.snapshot_id)
            snap = session.get(DatasetSnapshot, c.snapshot_id)
            if snap is not None:
                snap.n_examples -= 1
                if c.side == "validation":
                    snap.n_validation -= 1
                else:
                    snap.n_train -= 1
            session.delete(c)
        report.snapshot_rows = len(copies)
        report.index_rows = session.exec(delete(ExampleEmbedding).where(
            col(ExampleEmbedding.example_id).in_(ids))).rowcount or 0
        for fb in session.exec(select(Feedback).where(col(Feedback.example_id).in_(ids))):
            fb.example_id = None
        for d in session.exec(select(Draft).where(col(Draft.example_id).in_(ids))):
            d.example_id = None
        session.flush()
        for ex in theirs:
            session.delete(ex)
        report.examples = len(theirs)
    session.flush()
    return snapshot_ids, set(ids)


def _forget_preferences(session: Session, user_id: str, report: ErasureReport, texts: set[str]) -> set[int]:
    """2. Preference records of their questions (asked of a draft or of the bot) or whose chosen text they wrote,
    with every snapshot copy of them; returns the snapshots that held a copy."""
    their_drafts = select(Draft.id).where(Draft.asker == user_id)
    their_feedback = select(Feedback.id).where(Feedback.user == user_id) \
        .union(select(Draft.feedback_id).where(Draft.asker == user_id, col(Draft.feedback_id).is_not(None)))
    prefs = list(session.exec(select(Preference).where(or_(
        Preference.asker == user_id, Preference.edited_by == user_id, col(Preference.draft_id).in_(their_drafts),
        col(Preference.feedback_id).in_(their_feedback)))))
    ids = [p.id for p in prefs]
    snapshot_ids: set[int] = set()
    if ids:
        copies = list(session.exec(select(SnapshotPreference).where(col(SnapshotPreference.preference_id).in_(ids))))
        for c in copies:
            texts.update(_record_texts(c))
            snapshot_ids.add(c.snapshot_id)
            snap = session.get(DatasetSnapshot, c.snapshot_id)
            if snap is not None:
                snap.n_preferences -= 1
            session.delete(c)
        report.preference_copies = len(copies)
    for p in prefs:
        texts.update(_record_texts(p))
        session.delete(p)
    report.preferences = len(prefs)
    session.flush()
    return snapshot_ids


def _record_texts(row: Preference | SnapshotPreference) -> list[str]:
    """What a record holds of the person: the question, both texts, and the user turn (the question as asked)."""
    return [row.question, row.chosen, row.rejected,
            *(m.get("content", "") for m in row.prompt if m.get("role") == "user")]


def _clear_prompts(session: Session, report: ErasureReport, texts: set[str]) -> None:
    """Others' drafts and records whose prompt held their text (their pair, retrieved as context): the prompt goes,
    the record stays usable (a trainer builds a prompt from the question)."""
    if not texts:
        return
    for model in (Draft, Preference, SnapshotPreference):
        for row in session.exec(select(model)):
            if row.prompt and _holds(row.prompt, texts):
                row.prompt = []
                report.prompts_cleared += 1
    session.flush()


def _forget_drafts(session: Session, user_id: str, report: ErasureReport, texts: set[str],
                   example_ids: set[int]) -> set[int]:
    """3. Drafts of their questions; texts of drafts they acted on, their answers to knowledge gaps offered as
    drafts, and drafts that gave their approved answers (example_ids, step 1) as they are. Returns the feedback
    rows of their drafts (their questions, erased in step 4)."""
    drafts = list(session.exec(select(Draft).where(Draft.asker == user_id)))
    feedback_of_drafts = set()
    for d in drafts:
        texts.update(t for t in (d.question, d.sent_text or "") if t)
        if d.feedback_id:
            feedback_of_drafts.add(d.feedback_id)
        session.delete(d)
    report.drafts = len(drafts)
    for d in session.exec(select(Draft).where(or_(Draft.acted_by == user_id, Draft.resolved_by == user_id,
                                                  Draft.written_by == user_id))):
        if d.written_by == user_id:  # an answer they wrote for a knowledge gap, offered as this draft
            texts.update(t for t in (d.answer,) if t)
            d.answer, d.written_by = "", None
            report.drafts_cleared += 1
        if d.acted_by == user_id:
            texts.update(t for t in (d.sent_text or "",) if t)
            d.sent_text, d.acted_by = None, None
            d.answer = d.model_answer = ""  # what they sent began as these; the lead's rule: all of it goes
            report.drafts_cleared += 1
        if d.resolved_by == user_id:
            d.resolved_by = None
    if example_ids:
        _forget_reused(session, example_ids, report, texts)
    session.flush()
    return feedback_of_drafts


def _forget_reused(session: Session, example_ids: set[int], report: ErasureReport, texts: set[str]) -> None:
    """Drafts that gave one of their approved answers as it is (core.reuse) hold its text: cleared (counted once: a
    draft they sent is already cleared above)."""
    for d in session.exec(select(Draft)):
        if d.reused and d.reused.get("example_id") in example_ids:
            texts.update(t for t in (d.answer, d.sent_text or "") if t)
            if d.answer or d.model_answer or d.sent_text:
                report.drafts_cleared += 1
            if d.sent_text is not None and d.sent_text.strip() == d.answer.strip():
                d.sent_text = None
            d.answer = d.model_answer = ""
            d.reused = {}


def _forget_feedback(session: Session, user_id: str, report: ErasureReport, texts: set[str],
                     feedback_of_drafts: set[int]) -> None:
    """4. Their questions to the bot (the curators' queue is these rows), and their corrections of others' answers."""
    asked = list(session.exec(select(Feedback).where(or_(Feedback.user == user_id,
                                                         col(Feedback.id).in_(sorted(feedback_of_drafts) or [-1])))))
    for fb in asked:
        texts.update(t for t in (fb.question, fb.correction or "") if t)
        for d in session.exec(select(Draft).where(Draft.feedback_id == fb.id)):
            d.feedback_id = None
    session.flush()
    for fb in asked:
        session.delete(fb)
    report.feedback = len(asked)
    for fb in session.exec(select(Feedback)):
        if FeedbackState.of(fb).rated_by == user_id and fb.correction:
            texts.add(fb.correction)
            fb.correction = None
            report.corrections += 1
        if _names(fb.source, user_id):
            fb.source = _scrubbed(fb.source, user_id)
            report.mentions += 1
    session.flush()


def _forget_mentions(session: Session, user_id: str, report: ErasureReport) -> None:
    """5. Their id where it only says who did something."""
    report.mentions += _clear(session, Example, ("labelled_by", "approved_by"), user_id)
    report.mentions += _clear(session, TrainingJob, ("requested_by",), user_id)
    report.mentions += _clear(session, ModelVersion, ("decided_by",), user_id)
    report.mentions += _clear(session, ChannelChange, ("by",), user_id)
    report.mentions += _clear(session, SlackChannel, ("shareable_by", "mode_set_by"), user_id)
    for ex in session.exec(select(Example)):
        if _names(ex.source, user_id):
            ex.source = _scrubbed(ex.source, user_id)
            report.mentions += 1
    for d in session.exec(select(Draft)):
        if d.reused and _names(d.reused, user_id):  # who approved the answer a draft gave as it is
            d.reused = _scrubbed(d.reused, user_id)
            report.mentions += 1


def _flag_versions(session: Session, user_id: str, report: ErasureReport, texts: set[str],
                   snapshot_ids: set[int]) -> None:
    """6. Versions trained on a snapshot that held their text: flagged; their text out of the evaluation samples."""
    if snapshot_ids:
        for v in session.exec(select(ModelVersion).where(col(ModelVersion.snapshot_id).in_(snapshot_ids))):
            audience.add_version_flag(v, "erased_data", "contains erased data: trained on messages since erased "
                                                        "at a person's request; retrain to remove them")
            report.versions.append(v.name)
            if v.status == VersionStatus.DEPLOYED:
                report.deployed = v.name
    for v in session.exec(select(ModelVersion)):
        metrics = _without(v.metrics, texts, user_id)
        if metrics != v.metrics:
            v.metrics = metrics
            report.mentions += 1
    session.flush()


def _retrain(session: Session, versions: list[str]) -> int:
    """7. A retrain, unless one not yet started will snapshot the store as it is now anyway; the job's id."""
    queued = session.exec(select(TrainingJob).where(col(TrainingJob.status).in_(ACTIVE[:1]),
                                                    col(TrainingJob.snapshot_id).is_(None))).first()
    job = queued or enqueue(session, {}, REQUESTED_BY, reason=(
        f"Retrains without data erased at a person's request: {', '.join(versions)} "
        f"{'was' if len(versions) == 1 else 'were'} trained on it."))
    return job.id


class NothingStored(LookupError):
    """No row and no file under the data folder names the id: nothing to erase, and no audit record written."""


def database_file(store: Store) -> Path | None:
    """The SQLite file compact() rewrites (scrub_files leaves it and its sidecars to compact), None on PostgreSQL."""
    if store.dialect != "sqlite":
        return None
    path = store.engine.url.database
    return Path(path) if path and path != ":memory:" else None


def compact(store: Store) -> None:
    """Deleted rows leave their bytes in the database files until the space is reused: rewrite them. SQLite:
    VACUUM and a truncated write-ahead log; PostgreSQL: VACUUM FULL of the tables erasure touches."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if store.dialect == "sqlite":
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            for table in ("example", "snapshotexample", "exampleembedding", "feedback", "draft", "preference",
                          "snapshotpreference", "modelversion"):
                conn.execute(text(f"VACUUM FULL {table}"))


# --- helpers ----------------------------------------------------------------------------------------------------

def _names(value: Any, user_id: str, keys: tuple[str, ...] | None = None) -> bool:
    """The JSON value holds user_id (under one of keys, at the top level, when given)."""
    if keys is not None:
        return isinstance(value, dict) and any(value.get(k) == user_id for k in keys)
    if isinstance(value, dict):
        return any(_names(v, user_id) for v in value.values())
    if isinstance(value, list):
        return any(_names(v, user_id) for v in value)
    return isinstance(value, str) and user_id in value


def _scrubbed(value: Any, user_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrubbed(v, user_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, user_id) for v in value]
    if isinstance(value, str) and user_id in value:
        return None if value == user_id else value.replace(user_id, ERASED)
    return value


def _without(value: Any, texts: set[str], user_id: str) -> Any:
    """A JSON value with every record (dict) that holds one of the texts dropped from its list, and the id erased:
    an evaluation sample of their question goes whole."""
    if isinstance(value, list):
        return [_without(v, texts, user_id) for v in value if not (isinstance(v, dict) and _holds(v, texts))]
    if isinstance(value, dict):
        return {k: _without(v, texts, user_id) for k, v in value.items()}
    if isinstance(value, str):
        if any(t in value for t in texts):
            return ERASED
        return value.replace(user_id, ERASED) if user_id in value else value
    return value


def _holds(value: Any, texts: set[str]) -> bool:
    if isinstance(value, dict):
        return any(_holds(v, texts) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds(v, texts) for v in value)
    return isinstance(value, str) and any(t in value for t in texts)


def _clear(session: Session, model: Any, columns: tuple[str, ...], user_id: str) -> int:
    n = 0
    for column in columns:
        for row in session.exec(select(model).where(getattr(model, column) == user_id)):
            setattr(row, column, None)
            n += 1
    return n
