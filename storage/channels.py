"""Channels: the mode each runs in (off, mention, draft, auto), where its drafts go, and who changed what."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from core.modes import policy
from core.states import ChannelMode, ModeProblem
from storage.models import ChannelChange, SlackChannel, utcnow


def get(session: Session, channel_id: str) -> SlackChannel | None:
    return session.get(SlackChannel, channel_id)


def mode_of(session: Session, channel_id: str) -> str:
    """A channel nobody configured answers mentions (today's behaviour)."""
    row = session.get(SlackChannel, channel_id)
    return row.mode if row is not None else ChannelMode.DEFAULT


def remember(session: Session, channel_id: str, *, name: str | None = None, kind: str | None = None) -> SlackChannel:
    """The channel's row, created on first sight; name and kind brought up to date when Slack told us."""
    row = session.get(SlackChannel, channel_id)
    if row is None:
        row = SlackChannel(id=channel_id)
        session.add(row)
    if name and row.name != name:
        row.name = name
    if kind and row.kind != kind:
        row.kind = kind
    session.flush()
    return row


def set_mode(session: Session, channel_id: str, mode: str, *, by: str | None, drafts_channel: str | None = None,
             note: str = "") -> SlackChannel:
    """Set a channel's mode (and, for draft and auto, where its cards go), recorded with who did it."""
    if mode not in tuple(ChannelMode):
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(ChannelMode)}")
    row = remember(session, channel_id)
    if drafts_channel is not None and drafts_channel != row.drafts_channel:
        _record(session, channel_id, "drafts_channel", row.drafts_channel, drafts_channel, by, note)
        row.drafts_channel = drafts_channel
    if mode != row.mode:
        _record(session, channel_id, "mode", row.mode, mode, by, note)
        row.mode = mode
    row.mode_set_by = by
    row.mode_set_at = row.updated_at = utcnow()
    return row


def _record(session: Session, channel_id: str, field: str, old: str | None, new: str | None, by: str | None,
            note: str) -> None:
    session.add(ChannelChange(channel_id=channel_id, field=field, old=old, new=new, by=by, note=note))


def watched(session: Session) -> list[SlackChannel]:
    """Every channel someone configured, by id."""
    return list(session.exec(select(SlackChannel).order_by(col(SlackChannel.id))))


def changes(session: Session, channel_id: str, limit: int = 20) -> list[ChannelChange]:
    return list(session.exec(select(ChannelChange).where(ChannelChange.channel_id == channel_id)
                             .order_by(col(ChannelChange.id).desc()).limit(limit)))


@dataclass(frozen=True)
class Ladder:
    """What auto mode asks of a channel's record: at least min_drafts judged drafts among the last last_n, of which
    at least min_unchanged (a share) were sent unchanged."""

    last_n: int
    min_drafts: int
    min_unchanged: float


@dataclass(frozen=True)
class ModeChange:
    problem: ModeProblem | None  # None: allowed (and, unless checking only, made)
    record: tuple[int, int]  # (sent unchanged, judged) over the last N
    drafts_channel: str | None  # where the cards go after the change
    note: str = ""  # recorded with the change: the record the person saw


def change_mode(session: Session, channel_id: str, mode: str, *, by: str | None, drafts_channel: str | None,
                confirm: bool, ladder: Ladder) -> ModeChange:
    """The one path that changes a mode (`/ft channel mode`, `ft channels set`): draft and auto need a drafts
    channel other than the channel itself, and auto mode is earned by the record, or confirmed below it."""
    from storage.outcomes import record as track_record

    if mode not in tuple(ChannelMode):
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(ChannelMode)}")
    row = session.get(SlackChannel, channel_id)
    found = track_record(session, channel_id, ladder.last_n)
    record = (found.sent_unchanged, found.acted_on)
    target = drafts_channel or (row.drafts_channel if row else None)
    if policy(mode).needs_drafts_channel and not target:
        return ModeChange(ModeProblem.NEEDS_DRAFTS_CHANNEL, record, target)
    if target == channel_id:
        return ModeChange(ModeProblem.SAME_CHANNEL, record, target)
    note = ""
    if policy(mode).earned and (row is None or row.mode != mode):
        unchanged, judged = record
        earned = judged >= ladder.min_drafts and unchanged >= ladder.min_unchanged * judged
        if not earned and not confirm:
            return ModeChange(ModeProblem.NOT_EARNED, record, target)
        note = (f"{unchanged} of the last {judged} drafts sent unchanged"
                + ("" if earned else "; confirmed below the bar"))
    set_mode(session, channel_id, mode, by=by, drafts_channel=drafts_channel, note=note)
    return ModeChange(None, record, target, note)
