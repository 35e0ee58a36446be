"""The tables. Schema changes go through a new migration in storage/migrations/versions/.

Status columns stay `str` and hold the values of core.states' StrEnums (ExampleStatus, JobStatus, …).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.states import ChannelKind, ChannelMode, DraftStatus, ExampleStatus, JobStatus, PreferenceKind, VersionStatus


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Example(SQLModel, table=True):
    # The retrieval index checks max(updated_at) of approved examples before every search.
    __table_args__ = (Index("ix_example_status_updated_at", "status", "updated_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    # Stable identity of where the pair came from ("slack:C123:1790927012.473951"):
    # re-importing the same source is a no-op, and the train/validation side derives from it.
    source_key: str = Field(sa_column_kwargs={"unique": True}, index=False, max_length=255)
    # Hash of the normalised question and answer: the same pair is stored once.
    dedup_key: str = Field(sa_column_kwargs={"unique": True}, max_length=64)
    question: str = Field(sa_type=Text)
    answer: str = Field(sa_type=Text)
    status: str = Field(default=ExampleStatus.CANDIDATE, index=True, max_length=16)
    # [{"code": "asker_answer", "reason": "…"}]: flagged examples are never auto-approved.
    flags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Where it came from, for people: channel name, asker, answerer, permalink…
    source: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    labelled_by: Optional[str] = Field(default=None, max_length=64)
    approved_by: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    decided_at: Optional[datetime] = None
    # Who may read the pair (storage.audience): the Slack channel it came from and that channel's kind
    # (ChannelKind) when it was stored; "unknown" counts as private.
    channel_id: Optional[str] = Field(default=None, index=True, max_length=32)
    audience: str = Field(default=ChannelKind.UNKNOWN, max_length=16)


class DatasetSnapshot(SQLModel, table=True):
    """The approved examples at one moment; rows are copied so later edits cannot change it."""

    id: Optional[int] = Field(default=None, primary_key=True)
    content_hash: str = Field(index=True, max_length=64)
    n_examples: int = 0
    n_train: int = 0
    n_validation: int = 0
    val_percent: int = 15
    created_at: datetime = Field(default_factory=utcnow)
    n_preferences: int = 0  # preference records copied with it (SnapshotPreference), both sides


class SnapshotExample(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("snapshot_id", "example_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="datasetsnapshot.id", index=True)
    example_id: int = Field(foreign_key="example.id", index=True)
    source_key: str = Field(max_length=255)
    side: str = Field(max_length=16)  # "train" | "validation"
    question: str = Field(sa_type=Text)
    answer: str = Field(sa_type=Text)


class SnapshotPreference(SQLModel, table=True):
    """A preference record as a snapshot holds it: copied, so a later edit, retention or erasure of the record cannot
    change what a version was trained on (erasure deletes the copies of a person's records too)."""

    __table_args__ = (UniqueConstraint("snapshot_id", "preference_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="datasetsnapshot.id", index=True)
    preference_id: int = Field(index=True)  # no foreign key: the copy lives as long as its snapshot, not the record
    kind: str = Field(max_length=32)  # PreferenceKind
    side: str = Field(max_length=16)  # "train" | "validation"
    prompt: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    question: str = Field(default="", sa_type=Text)
    chosen: str = Field(sa_type=Text)
    rejected: str = Field(sa_type=Text)
    channel_id: str = Field(max_length=32)


class TrainingJob(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    status: str = Field(default=JobStatus.QUEUED, index=True, max_length=16)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    snapshot_id: Optional[int] = Field(default=None, foreign_key="datasetsnapshot.id")
    requested_by: Optional[str] = Field(default=None, max_length=64)
    attempts: int = 0
    max_attempts: int = 3
    lease_owner: Optional[str] = Field(default=None, max_length=128)
    lease_expires_at: Optional[datetime] = None
    cancel_requested: bool = False
    # {"step", "total", "loss", "eval_loss", "tokens_per_s", "eta_s"}
    progress: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: Optional[str] = Field(default=None, sa_type=Text)
    version_id: Optional[int] = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    # The job's one message in FT_APPROVALS_CHANNEL (progress, then the approval request), edited in place.
    slack_channel: Optional[str] = Field(default=None, max_length=64)
    slack_ts: Optional[str] = Field(default=None, max_length=32)
    slack_done: bool = False  # the final state (approval request, failure, cancellation) has been posted
    # Why the job exists when no person asked for it (an erasure's retrain), shown in the approval request.
    reason: Optional[str] = Field(default=None, sa_type=Text)


class ModelVersion(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    # Immutable adapter name (vLLM reuses stale prefix cache when a name is reloaded).
    name: str = Field(sa_column_kwargs={"unique": True}, max_length=128)
    job_id: Optional[int] = Field(default=None, foreign_key="trainingjob.id")
    snapshot_id: Optional[int] = Field(default=None, foreign_key="datasetsnapshot.id")
    base_model: str = Field(default="", max_length=512)
    adapter_path: str = Field(default="", max_length=1024)
    status: str = Field(default=VersionStatus.AWAITING_APPROVAL, index=True, max_length=24)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    below_deployed: bool = False
    decided_by: Optional[str] = Field(default=None, max_length=64)
    decided_at: Optional[datetime] = None
    deployed_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    # [{"code": "erased_data" | "unshared", "reason": "…", "at": "…"}]: what an admin must know before deploying
    # it (it was trained on text since erased, or on a channel whose sharing mark was taken back).
    flags: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Feedback(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    user: Optional[str] = Field(default=None, max_length=64)
    version_name: Optional[str] = Field(default=None, max_length=128)
    question: str = Field(sa_type=Text)
    answer: str = Field(default="", sa_type=Text)
    rating: str = Field(max_length=8)  # "up" | "down" | "none" (the model did not answer)
    correction: Optional[str] = Field(default=None, sa_type=Text)
    source: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    example_id: Optional[int] = Field(default=None, foreign_key="example.id")
    created_at: datetime = Field(default_factory=utcnow)


class SeenEvent(SQLModel, table=True):
    """Slack retries deliveries it thinks were lost; an event_id is handled once."""

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow)


class ExampleEmbedding(SQLModel, table=True):
    """The stored embedding of an approved example's question, so a restart embeds nothing again."""

    # Deleting the example (a withdrawn label) deletes its embedding with it.
    example_id: int = Field(primary_key=True, foreign_key="example.id", ondelete="CASCADE",
                            sa_column_kwargs={"autoincrement": False})
    # The embedder's name: another model's vectors are not comparable. Indexed also because
    # SQLite counts rows through the smallest index, and the table's rows are 1.5 KB vectors.
    model: str = Field(max_length=128, index=True)
    dim: int
    text_hash: str = Field(max_length=64)  # sha256 of the embedded question: an edit re-embeds
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32, little-endian
    updated_at: datetime = Field(default_factory=utcnow)


class SlackChannel(SQLModel, table=True):
    """What ftbot knows and was told about one Slack channel: its kind, its mode, and its sharing mark."""

    id: str = Field(primary_key=True, max_length=32)  # Slack's channel id (C…, G…, D…)
    name: str = Field(default="", max_length=128)
    kind: str = Field(default=ChannelKind.UNKNOWN, max_length=16)
    mode: str = Field(default=ChannelMode.DEFAULT, max_length=16)
    # Where draft cards and hand-offs for this channel go: a private channel of the team.
    drafts_channel: Optional[str] = Field(default=None, max_length=32)
    mode_set_by: Optional[str] = Field(default=None, max_length=64)
    mode_set_at: Optional[datetime] = None
    # An admin's mark: this non-public channel's knowledge may be used everywhere (issue 20).
    shareable: bool = False
    shareable_by: Optional[str] = Field(default=None, max_length=64)
    shareable_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ChannelChange(SQLModel, table=True):
    """Every change of a channel's mode or sharing mark, with who made it (an audit trail)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    channel_id: str = Field(index=True, max_length=32)
    field: str = Field(max_length=32)  # "mode" | "shareable" | "drafts_channel"
    old: Optional[str] = Field(default=None, max_length=64)
    new: Optional[str] = Field(default=None, max_length=64)
    by: Optional[str] = Field(default=None, max_length=64)
    # What the person saw when deciding, e.g. "7 of the last 20 drafts sent unchanged; confirmed".
    note: str = Field(default="", sa_type=Text)
    at: datetime = Field(default_factory=utcnow)


class Draft(SQLModel, table=True):
    """One customer question in a watched channel (draft or auto mode) and its outcome."""

    # One question, one draft: a retried or twice-delivered event finds the row already there.
    __table_args__ = (UniqueConstraint("channel_id", "question_ts"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    mode: str = Field(max_length=16)  # ChannelMode.DRAFT | ChannelMode.AUTO
    channel_id: str = Field(index=True, max_length=32)
    question_ts: str = Field(max_length=32)  # the customer's message: the thread the answer goes to
    asker: Optional[str] = Field(default=None, max_length=64)
    question: str = Field(sa_type=Text)
    status: str = Field(default=DraftStatus.PENDING, index=True, max_length=16)
    # What the bot would send (the grounding check's verdict applied), and what the model said.
    answer: str = Field(default="", sa_type=Text)
    model_answer: str = Field(default="", sa_type=Text)
    declined: bool = False
    grounding: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    context: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # source keys
    # The messages the model was asked with (system prompt, retrieved pairs, question): an edit's preference record.
    prompt: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version_name: Optional[str] = Field(default=None, max_length=128)  # None: the base model answered
    model: str = Field(default="", max_length=512)
    feedback_id: Optional[int] = Field(default=None, foreign_key="feedback.id")  # the curators' queue, 👍/👎
    drafts_channel: Optional[str] = Field(default=None, max_length=32)
    card_ts: Optional[str] = Field(default=None, max_length=32)
    acted_by: Optional[str] = Field(default=None, max_length=64)
    acted_at: Optional[datetime] = None
    discard_reason: Optional[str] = Field(default=None, max_length=32)
    sent_text: Optional[str] = Field(default=None, sa_type=Text)
    sent_ts: Optional[str] = Field(default=None, max_length=32)
    edit_chars: Optional[int] = None  # characters inserted or deleted by the agent's edit
    example_id: Optional[int] = Field(default=None, foreign_key="example.id", ondelete="SET NULL")
    # Auto mode: the asker pressed "This solved it" (confirmed), or came back in the thread (a follow-up).
    resolved_by: Optional[str] = Field(default=None, max_length=64)
    resolved_at: Optional[datetime] = None
    followed_up_at: Optional[datetime] = None
    asked_at: datetime = Field(default_factory=utcnow)  # the question's own time (its ts)
    bot_response_at: Optional[datetime] = None  # the card posted (draft) or the answer posted (auto)
    human_response_at: Optional[datetime] = None  # first answer by a person: sent, edited or by hand
    updated_at: datetime = Field(default_factory=utcnow)


class Preference(SQLModel, table=True):
    """The team's text preferred to the bot's for one question (storage.preferences): the prompt the bot was asked with
    (empty when unknown), the question, the team's text (chosen) and the bot's (rejected). `kind` says what made it
    (PreferenceKind): an agent's edit of a draft, a draft discarded as wrong then answered in the thread, a 👎 with
    a correction."""

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(default=PreferenceKind.EDITED, max_length=32)
    draft_id: Optional[int] = Field(default=None, foreign_key="draft.id", index=True)
    feedback_id: Optional[int] = Field(default=None, foreign_key="feedback.id", index=True)
    channel_id: str = Field(max_length=32, index=True)
    # Who may learn from it (storage.audience), as Example.audience: its channel's kind when it was made.
    audience: str = Field(default=ChannelKind.UNKNOWN, max_length=16)
    prompt: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    question: str = Field(default="", sa_type=Text)
    chosen: str = Field(sa_type=Text)
    rejected: str = Field(sa_type=Text)
    # The source key of the pair the chosen text became (its train/validation side is the record's), if any.
    pair_key: Optional[str] = Field(default=None, max_length=255)
    version_name: Optional[str] = Field(default=None, max_length=128)
    asker: Optional[str] = Field(default=None, max_length=64)
    edited_by: Optional[str] = Field(default=None, max_length=64)  # who wrote the chosen text
    created_at: datetime = Field(default_factory=utcnow)


class Erasure(SQLModel, table=True):
    """The audit record of one `ft forget-user`: who asked, when, and counts. Never the person's id or text."""

    id: Optional[int] = Field(default=None, primary_key=True)
    # sha256 of the Slack user id: a later request for the same person can be matched, the id is not kept.
    user_hash: str = Field(index=True, max_length=64)
    by: Optional[str] = Field(default=None, max_length=64)
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    job_id: Optional[int] = None  # the retraining job it queued
    at: datetime = Field(default_factory=utcnow)
