"""The drafts surface's rules, as plain functions of the event and the channel's mode (core.modes)."""

from __future__ import annotations

from typing import Any, Mapping

from core.modes import ModePolicy
from core.states import DraftStatus

# A draft's form (Edit & send, Answer, Discard) opens only while the draft waits for the team.
OPENABLE = (DraftStatus.PENDING, DraftStatus.FAILED, DraftStatus.HANDED_OFF)


def in_a_channel(event: Mapping[str, Any]) -> bool:
    """A message in a public or private channel (DMs are asking's)."""
    return event.get("channel_type") in ("channel", "group")


def is_thread_reply(event: Mapping[str, Any]) -> bool:
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event["ts"]


def first_status(rules: ModePolicy, *, failed: bool, declined: bool) -> str:
    """A new question's draft once the model has answered: waiting for the team (a card), handed off, or answered
    by the bot; failed when the model server gave no answer."""
    if failed:
        return DraftStatus.FAILED
    if rules.drafts_card:
        return DraftStatus.PENDING
    if declined and rules.hands_off_on_decline:
        return DraftStatus.HANDED_OFF
    if rules.posts_answer and not declined:
        return DraftStatus.ANSWERED
    raise ValueError("this channel mode neither drafts nor answers a question (core.modes.POLICIES)")


def can_open_form(draft) -> bool:
    return draft is not None and not draft.sent_ts and draft.status in OPENABLE
