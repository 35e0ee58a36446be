"""The agent view's decisions, as pure functions: which messages are questions, and where suggestions go."""

from __future__ import annotations

from typing import Any

from bot.slack.questions import is_customer_question


def is_question(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """A person's message in the app's own conversation (the agent view, or a plain DM): `message` events with
    channel_type "im". Messages in channels reach the bot as app_mention when it is addressed."""
    return event.get("channel_type") == "im" and is_customer_question(event, bot_user_id)


def thread_of(event: dict[str, Any]) -> str:
    """The thread the answer goes in: the agent view's thread, or a plain DM's message itself."""
    return event.get("thread_ts") or event["ts"]


def opens_messages(event: dict[str, Any]) -> bool:
    """App Home's Messages tab (the agent view) opened: the Home tab is bot.home's."""
    return event.get("tab") == "messages"


def prompts_place(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """(channel, thread_ts) where suggested prompts go, from app_home_opened (the DM, no thread),
    assistant_thread_started and app_context_changed (the thread in `assistant_thread`, when it has one)."""
    thread = event.get("assistant_thread") or {}
    channel = thread.get("channel_id") or event.get("channel") or event.get("channel_id")
    return channel, thread.get("thread_ts") or event.get("thread_ts")

