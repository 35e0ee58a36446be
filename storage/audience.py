"""Who may read a pair: THE rule, written once, and the channel records it reads.

A pair carries its source channel and that channel's kind (Example.channel_id, Example.audience):

- a pair from a public channel may be used everywhere;
- a pair from a private, DM or shared (Slack Connect) channel is used only in that same channel, and never
  trained into the shared adapter, unless an admin marked that channel's knowledge shareable;
- unknown counts as private.

`scope_for` turns the rule into a Scope (the kinds usable everywhere, the channels usable here), and every
consumer asks the Scope: retrieval (serving.retrieval, as a row mask for core.nearest), the training snapshot
(storage.snapshots, as SQL) and the reply's source links (bot.asking). Nothing else restates the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.states import ChannelKind, ExampleStatus
from storage.models import (
    ChannelChange,
    Example,
    ModelVersion,
    Preference,
    SlackChannel,
    SnapshotExample,
    SnapshotPreference,
    utcnow,
)

EVERYWHERE = frozenset({ChannelKind.PUBLIC})  # the only kind whose pairs go anywhere without a mark


@dataclass(frozen=True)
class Scope:
    """What an answer given somewhere may draw on: pairs of these kinds from anywhere, and any pair from these
    channels."""

    kinds: frozenset[str]
    channels: frozenset[str]

    def allows(self, kind: str | None, channel_id: str | None) -> bool:
        return (kind or ChannelKind.UNKNOWN) in self.kinds or (channel_id is not None and channel_id in self.channels)

    def clause(self, kind_col=Example.audience, channel_col=Example.channel_id):
        """The same test in SQL, on Example's columns by default."""
        channels = sorted(self.channels)
        test = col(kind_col).in_(sorted(self.kinds))
        return test | col(channel_col).in_(channels) if channels else test


def scope_for(asking_channel: str | None, shareable: Iterable[str] = ()) -> Scope:
    """THE rule. asking_channel: where the question is asked (None: a DM, or the shared adapter, which answers
    everywhere); shareable: the channels an admin marked shareable."""
    channels = set(shareable)
    if asking_channel:
        channels.add(asking_channel)
    return Scope(kinds=EVERYWHERE, channels=frozenset(channels))


def link_scope(asking_channel: str | None) -> Scope:
    """Which source threads a reply may link to: a shareable mark shares the knowledge, not the thread, which the
    asker may not be able to open (and whose name alone can say too much)."""
    return scope_for(asking_channel, ())


# --- Channels ---------------------------------------------------------------------------------------------------

def shareable_channels(session: Session) -> frozenset[str]:
    return frozenset(session.exec(select(SlackChannel.id).where(SlackChannel.shareable == True)))  # noqa: E712  (SQL, not Python)


def scope(session: Session, asking_channel: str | None) -> Scope:
    return scope_for(asking_channel, shareable_channels(session))


def remember(session: Session, channel_id: str, kind: str, name: str | None = None) -> SlackChannel:
    """Record (or update) a channel's kind as Slack reported it, and bring its examples' and preference records'
    audience up to date: a channel made private takes its pairs and records with it."""
    if kind not in tuple(ChannelKind):
        kind = ChannelKind.UNKNOWN
    row = session.get(SlackChannel, channel_id)
    if row is None:
        row = SlackChannel(id=channel_id, name=(name or "")[:128], kind=kind)
        session.add(row)
    elif kind != ChannelKind.UNKNOWN and (row.kind != kind or (name and row.name != name)):
        row.kind, row.name, row.updated_at = kind, (name or row.name)[:128], utcnow()
    else:
        return row
    session.flush()
    now = utcnow()
    for ex in session.exec(select(Example).where(Example.channel_id == channel_id, Example.audience != row.kind)):
        ex.audience, ex.updated_at = row.kind, now  # updated_at: the retrieval index notices
    for pref in session.exec(select(Preference).where(Preference.channel_id == channel_id,
                                                      Preference.audience != row.kind)):
        pref.audience = row.kind
    return row


def kind_of(session: Session, channel_id: str | None) -> str:
    if not channel_id:
        return ChannelKind.UNKNOWN
    row = session.get(SlackChannel, channel_id)
    return row.kind if row is not None else ChannelKind.UNKNOWN


@dataclass
class ShareChange:
    channel_id: str
    shareable: bool
    changed: bool  # False: the mark was already so
    approved: int  # approved pairs from the channel: usable everywhere now, or no longer
    kind: str
    flagged_versions: list[str]  # taken back: versions trained on the channel's pairs while it was shareable


def set_shareable(session: Session, channel_id: str, on: bool, by: str | None, name: str | None = None) -> ShareChange:
    """An admin's mark, recorded with who set it (ChannelChange). Taking it back flags every version trained on the
    channel's pairs: the adapter keeps what it learned until a version trained without them replaces it."""
    row = session.get(SlackChannel, channel_id, with_for_update=True)
    if row is None:
        row = SlackChannel(id=channel_id, name=(name or "")[:128])
        session.add(row)
    old = row.shareable
    n_approved = session.exec(select(func.count()).select_from(Example).where(
        Example.channel_id == channel_id, Example.status == ExampleStatus.APPROVED)).one()
    change = ShareChange(channel_id, on, old != on, n_approved, row.kind, [])
    if old == on:
        return change
    now = utcnow()
    row.shareable, row.shareable_by, row.shareable_at, row.updated_at = on, by, now, now
    session.add(ChannelChange(channel_id=channel_id, field="shareable", old=str(old).lower(), new=str(on).lower(),
                              by=by, note=f"{n_approved} approved pairs"))
    # The index reads marks per search; the snapshot reads them when it is made. Bump the pairs anyway so the
    # retrieval fingerprint moves (another replica's cached view of them is refreshed).
    for ex in session.exec(select(Example).where(Example.channel_id == channel_id)):
        ex.updated_at = now
    if not on and row.kind != ChannelKind.PUBLIC:
        trained_on = select(SnapshotExample.snapshot_id).join(Example, Example.id == SnapshotExample.example_id) \
            .where(Example.channel_id == channel_id) \
            .union(select(SnapshotPreference.snapshot_id).where(SnapshotPreference.channel_id == channel_id))
        versions = session.exec(select(ModelVersion).where(col(ModelVersion.snapshot_id).in_(trained_on)))
        for v in versions:
            add_version_flag(v, "unshared", f"trained on pairs from channel {channel_id} while it was shareable; "
                                            f"the mark was taken back {now:%Y-%m-%d %H:%M} UTC")
            change.flagged_versions.append(v.name)
    session.flush()
    return change


# What a version's flags say in one phrase (`ft versions list`, `/ft versions`); the flag's reason says more.
VERSION_FLAGS = {"erased_data": "contains erased data", "unshared": "trained on a channel no longer shareable"}


def version_warnings(version: ModelVersion) -> list[str]:
    return [VERSION_FLAGS.get(f.get("code", ""), str(f.get("code"))) for f in version.flags]


def add_version_flag(version: ModelVersion, code: str, reason: str) -> None:
    if any(f.get("code") == code and f.get("reason") == reason for f in version.flags):
        return
    version.flags = [*version.flags, {"code": code, "reason": reason, "at": utcnow().isoformat()}]


def recent_share_changes(session: Session, since_days: float = 7, limit: int = 5) -> list[tuple[ChannelChange, int]]:
    """The newest sharing marks set or taken back, each with the approved pairs of its channel (what `/ft review`
    shows: how many pairs became usable everywhere, or stopped being)."""
    since = utcnow() - timedelta(days=since_days)
    changes = list(session.exec(select(ChannelChange).where(ChannelChange.field == "shareable",
                                                            ChannelChange.at >= since)
                                .order_by(col(ChannelChange.id).desc()).limit(limit)))
    out = []
    for change in changes:
        n = session.exec(select(func.count()).select_from(Example).where(
            Example.channel_id == change.channel_id, Example.status == ExampleStatus.APPROVED,
            Example.audience != ChannelKind.PUBLIC)).one()
        out.append((change, n))
    return out
