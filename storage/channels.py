"""Channels: the mode each runs in (off, mention, draft, auto), where its drafts go, and who changed what."""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage.models import ChannelChange, ChannelMode, SlackChannel, utcnow


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
    if mode not in ChannelMode.ALL:
        raise ValueError(f"unknown mode {mode!r}: one of {', '.join(ChannelMode.ALL)}")
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
