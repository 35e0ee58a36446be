"""What happened to the bot's answers in watched channels: the live outcome figures, per channel and per version.

Every figure is defined once, beside the code that counts it (the README's "Live outcome metrics" says the
same in plain words). The rows are the Draft table's (one per customer question in a draft or auto channel)
and, for 👍/👎, the Feedback row each auto answer links to. A pure query: nothing is written.

Counts are exact; the percentiles and the edit sizes are computed here rather than in SQL (SQLite has no
percentile function), from a handful of columns per question, never the question's text.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.states import OPEN_DRAFTS, ChannelMode, DiscardReason, DraftStatus, Rating
from storage.models import Draft, Feedback, SlackChannel, utcnow

# `version=BASE` selects the questions the base model answered (Draft.version_name is NULL then).
BASE = "base"
# Draft mode: a person decided what the customer got instead of leaving the card: sent unchanged, sent after an
# edit, discarded, or answered in the thread by hand (superseded). Expired, pending and failed drafts are not.
ACTED_ON = (DraftStatus.SENT, DraftStatus.EDITED, DraftStatus.DISCARDED, DraftStatus.SUPERSEDED)


class _Figures(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ResponseTimes(_Figures):
    """Seconds from the customer's question (asked_at) to a response, over the questions that got one.
    p50 and p90 by nearest rank: the smallest time that at least 50 % (90 %) of those responses took no more
    than. A response stamped before its question (clocks differ) counts as 0 s."""

    n: int = 0
    p50_s: float | None = None
    p90_s: float | None = None


class DraftFigures(_Figures):
    """Draft mode: the bot drafts, the team decides. One question = one Draft row with mode "draft"."""

    questions: int = 0  # customer questions in the channel while it was in draft mode (every status)
    sent: int = 0  # sent unchanged: an agent pressed Send, and the customer got the draft as written
    edited: int = 0  # sent after an agent's edit (also an agent's answer to a draft the check declined)
    edit_chars_median: float | None = None  # of edited drafts: characters inserted + deleted by the edit
    edit_chars_mean: float | None = None
    discarded: int = 0  # an agent discarded the draft (the customer got nothing from it)
    discarded_by_reason: dict[str, int] = {}  # wrong, outdated, not_a_question, other (and any other reason given)
    superseded: int = 0  # a team member answered in the thread by hand before anyone acted on the card
    expired: int = 0  # nobody acted within FT_DRAFT_TTL_H
    pending: int = 0  # the card still waits (or a Send is being posted right now)
    failed: int = 0  # the model server gave no answer, so there was no draft
    declined: int = 0  # the grounding check declined: the card said no approved answer backs a reply
    acted_on: int = 0  # sent + edited + discarded + superseded
    sent_unchanged_share: float | None = None  # sent / acted_on (None when nothing was acted on)
    bot_response: ResponseTimes = ResponseTimes()  # question → draft card posted for the team
    human_response: ResponseTimes = ResponseTimes()  # question → a person's answer reached the customer


class AutoFigures(_Figures):
    """Auto mode: the bot answers the customer alone. One question = one Draft row with mode "auto"."""

    questions: int = 0  # customer questions in the channel while it was in auto mode (every status)
    answered: int = 0  # the bot answered in the thread
    declined: int = 0  # the grounding check declined (the bot said the team will follow up)
    handed_off: int = 0  # the bot told the asker the team will follow up and posted a hand-off card
    failed: int = 0  # the model server gave no answer
    thumbs_up: int = 0  # answers whose linked Feedback row is rated up (👍)
    thumbs_down: int = 0  # ... rated down (👎)
    resolved_confirmed: int = 0  # the asker pressed "This solved it" (resolved_at set)
    # Answered, not confirmed, no follow-up from the asker within the window after the question, and the
    # question is older than the window: taken as solved, never counted with the confirmed ones.
    resolved_assumed: int = 0
    followed_up: int = 0  # answered, not confirmed, and the asker wrote again in the thread within the window
    awaiting: int = 0  # answered, not confirmed, no follow-up yet, and the window has not passed
    # question → the bot's reply in the thread: its answer, or its note that the team will follow up
    bot_response: ResponseTimes = ResponseTimes()
    human_response: ResponseTimes = ResponseTimes()  # question → a team member's first reply in the thread


class Figures(_Figures):
    draft: DraftFigures = DraftFigures()
    auto: AutoFigures = AutoFigures()

    @computed_field
    @property
    def questions(self) -> int:
        return self.draft.questions + self.auto.questions


class VersionFigures(Figures):
    version: str | None = None  # the deployed version that answered; None: the base model


class ChannelFigures(Figures):
    """One channel, all versions together (the fields of Figures), and each version apart (versions)."""

    channel_id: str = ""
    name: str = ""  # as ftbot knows it (SlackChannel.name); empty when unknown
    versions: list[VersionFigures] = []  # most questions first


class Report(_Figures):
    """The figures over the questions asked since `since` (None: all), counted at `now`."""

    since: datetime | None = None
    now: datetime
    resolution_window_h: float
    total: Figures = Figures()  # every channel selected, every version
    channels: list[ChannelFigures] = []  # most questions first


class Record(_Figures):
    """A channel's measured record for the ladder: of its last N acted-on drafts, how many were sent unchanged."""

    channel_id: str
    last_n: int  # asked for
    acted_on: int  # found (fewer than last_n when the channel has fewer)
    sent_unchanged: int

    @computed_field
    @property
    def share(self) -> float | None:
        return self.sent_unchanged / self.acted_on if self.acted_on else None


def outcomes(session: Session, *, channel: str | None = None, since: datetime | None = None,
             version: str | None = None, now: datetime | None = None, resolution_window_h: float = 24.0) -> Report:
    """The live figures of the questions asked (asked_at) at or after `since`, in `channel` (an id; None: every
    channel), answered by `version` (a name, or BASE for the base model; None: every version). `now` decides
    which unconfirmed answers are old enough to be assumed resolved (FT_RESOLUTION_WINDOW_H)."""
    now = _utc(now or utcnow())
    query = (select(Draft.channel_id, Draft.mode, Draft.status, Draft.version_name, Draft.declined,
                    Draft.discard_reason, Draft.edit_chars, Draft.asked_at, Draft.bot_response_at,
                    Draft.human_response_at, Draft.resolved_at, Draft.followed_up_at, Feedback.rating)
             .outerjoin(Feedback, col(Draft.feedback_id) == col(Feedback.id)))
    if channel is not None:
        query = query.where(Draft.channel_id == channel)
    if since is not None:
        query = query.where(col(Draft.asked_at) >= _utc(since))
    if version == BASE:
        query = query.where(col(Draft.version_name).is_(None))
    elif version is not None:
        query = query.where(Draft.version_name == version)
    rows = [_Row.of(r) for r in session.exec(query)]
    window = timedelta(hours=resolution_window_h)

    def tally(selected: list) -> dict[str, Any]:
        return {"draft": _draft([r for r in selected if r.mode == ChannelMode.DRAFT]),
                "auto": _auto([r for r in selected if r.mode == ChannelMode.AUTO], now, window)}

    by_channel: dict[str, list] = {}
    for row in rows:
        by_channel.setdefault(row.channel_id, []).append(row)
    names = {cid: name for cid, name in session.exec(
        select(SlackChannel.id, SlackChannel.name).where(col(SlackChannel.id).in_(list(by_channel))))}
    channels = []
    for channel_id, selected in by_channel.items():
        by_version: dict[str | None, list] = {}
        for row in selected:
            by_version.setdefault(row.version_name, []).append(row)
        versions = [VersionFigures(version=name, **tally(group)) for name, group in by_version.items()]
        versions.sort(key=lambda v: (-v.questions, v.version or ""))
        channels.append(ChannelFigures(channel_id=channel_id, name=names.get(channel_id) or "", versions=versions,
                                       **tally(selected)))
    channels.sort(key=lambda c: (-c.questions, c.channel_id))
    return Report(since=_utc(since) if since else None, now=now, resolution_window_h=resolution_window_h,
                  total=Figures(**tally(list(rows))), channels=channels)


def record(session: Session, channel: str, last_n: int) -> Record:
    """Of the channel's last `last_n` drafts that a person acted on (ACTED_ON; the newest by when they acted),
    how many were sent unchanged. Declined drafts count too: in auto mode nobody would have checked them."""
    when = func.coalesce(Draft.acted_at, Draft.human_response_at, Draft.asked_at)
    statuses = session.exec(
        select(Draft.status)
        .where(Draft.channel_id == channel, Draft.mode == ChannelMode.DRAFT, col(Draft.status).in_(ACTED_ON))
        .order_by(when.desc(), col(Draft.id).desc()).limit(max(last_n, 0))).all()
    return Record(channel_id=channel, last_n=last_n, acted_on=len(statuses),
                  sent_unchanged=sum(1 for s in statuses if s == DraftStatus.SENT))


def _draft(rows: list) -> DraftFigures:
    count = _counter(rows)
    reasons = dict.fromkeys(DiscardReason, 0)
    for r in rows:
        if r.status == DraftStatus.DISCARDED:
            reason = r.discard_reason or DiscardReason.OTHER
            reasons[reason] = reasons.get(reason, 0) + 1
    edits = [r.edit_chars for r in rows if r.status == DraftStatus.EDITED and r.edit_chars is not None]
    acted = sum(count(s) for s in ACTED_ON)
    return DraftFigures(
        questions=len(rows), sent=count(DraftStatus.SENT), edited=count(DraftStatus.EDITED),
        edit_chars_median=float(statistics.median(edits)) if edits else None,
        edit_chars_mean=round(statistics.fmean(edits), 1) if edits else None,
        discarded=count(DraftStatus.DISCARDED), discarded_by_reason=reasons, superseded=count(DraftStatus.SUPERSEDED),
        expired=count(DraftStatus.EXPIRED), pending=sum(count(s) for s in OPEN_DRAFTS),
        failed=count(DraftStatus.FAILED), declined=sum(1 for r in rows if r.declined), acted_on=acted,
        sent_unchanged_share=count(DraftStatus.SENT) / acted if acted else None,
        bot_response=_times(r.bot_s for r in rows), human_response=_times(r.human_s for r in rows))


def _auto(rows: list, now: datetime, window: timedelta) -> AutoFigures:
    count = _counter(rows)
    figures = AutoFigures(
        questions=len(rows), answered=count(DraftStatus.ANSWERED), declined=sum(1 for r in rows if r.declined),
        handed_off=count(DraftStatus.HANDED_OFF), failed=count(DraftStatus.FAILED),
        thumbs_up=sum(1 for r in rows if r.rating == Rating.UP),
        thumbs_down=sum(1 for r in rows if r.rating == Rating.DOWN),
        resolved_confirmed=sum(1 for r in rows if r.resolved),
        bot_response=_times(r.bot_s for r in rows), human_response=_times(r.human_s for r in rows))
    for r in rows:
        if r.status != DraftStatus.ANSWERED or r.resolved:
            continue
        if r.followed_up_at is not None and r.followed_up_at - r.asked_at <= window:
            figures.followed_up += 1
        elif now - r.asked_at >= window:
            figures.resolved_assumed += 1
        else:
            figures.awaiting += 1
    return figures


@dataclass(slots=True)
class _Row:
    """What the figures read of one question, times made UTC and response times worked out once."""

    channel_id: str
    mode: str
    status: str
    version_name: str | None
    declined: bool
    discard_reason: str | None
    edit_chars: int | None
    rating: str | None
    resolved: bool
    asked_at: datetime
    followed_up_at: datetime | None
    bot_s: float | None
    human_s: float | None

    @classmethod
    def of(cls, r: Any) -> "_Row":
        return cls(r.channel_id, r.mode, r.status, r.version_name, r.declined, r.discard_reason, r.edit_chars,
                   r.rating, r.resolved_at is not None, _asked(r), _utc(r.followed_up_at) if r.followed_up_at else None,
                   first_response_s(r, "bot"), first_response_s(r, "human"))


def first_response_s(row: Any, by: str) -> float | None:
    """Seconds from the question to the first response by the bot ("bot": bot_response_at) or by a person
    ("human": human_response_at); None before there is one. Never negative (clocks differ)."""
    at = row.bot_response_at if by == "bot" else row.human_response_at
    return None if at is None else max(0.0, (_utc(at) - _asked(row)).total_seconds())


def _counter(rows: list):
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return lambda status: counts.get(status, 0)


def _times(found: Iterable[float | None]) -> ResponseTimes:
    seconds = sorted(s for s in found if s is not None)
    if not seconds:
        return ResponseTimes()
    return ResponseTimes(n=len(seconds), p50_s=_rank(seconds, 0.5), p90_s=_rank(seconds, 0.9))


def _rank(ordered: list[float], p: float) -> float:
    """Nearest rank: the value at position ceil(p·n) (1-based) of the sorted values."""
    return round(ordered[max(1, math.ceil(p * len(ordered))) - 1], 3)


def _asked(row: Any) -> datetime:
    return _utc(row.asked_at)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones. Compare them as UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


_SINCE = re.compile(r"^(\d+)\s*(m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `24h`, `30m`, `2w` before now, or an ISO date or time (`2026-11-01`, `2026-11-01T09:00`, taken as
    UTC when it names no zone). ValueError says what is accepted (shown to people as is)."""
    raw = text.strip()
    match = _SINCE.match(raw)
    if match:
        try:
            return _utc(now or utcnow()) - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
        except OverflowError:  # 99999999d reaches before year 1
            raise ValueError(f"{raw!r} reaches further back than a date can: write a shorter window, such as "
                             "365d") from None
    try:
        return _utc(datetime.fromisoformat(raw))
    except ValueError:
        raise ValueError(f"{raw!r} is not a time: write 7d, 24h, 30m, or a date such as 2026-11-01") from None


_MENTION = re.compile(r"^<#([A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


def channel_id(session: Session, text: str) -> str | None:
    """The channel a person named: `<#C123|help-desk>` (Slack's mention), `#help-desk`, `help-desk` (a name ftbot
    knows) or an id; None when nothing matches."""
    raw = text.strip()
    mention = _MENTION.match(raw)
    if mention:
        return mention.group(1)
    name = raw.lstrip("#")
    if not name:
        return None
    found = session.exec(select(SlackChannel.id).where(
        (SlackChannel.id == name) | (func.lower(SlackChannel.name) == name.lower()))).first()
    if found:
        return found
    return name if _CHANNEL_ID.match(name) else None

