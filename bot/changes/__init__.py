"""Slack's own changes reach the store: a deleted or edited message behind an example (live; the import does the
same from an export, bot.slack.importer).

- the labelled reply or the question (the thread's root) deleted: the example is withdrawn;
- one of them edited: the example goes back to the curators with the new text, read again from the thread.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.changes.handlers import ignore, is_change, on_change
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    # Only edits and deletions: plain messages are other listeners' (DMs, watched channels).
    app.event("message", matchers=[is_change])(on_change)


def register_fallback(app: AsyncApp) -> None:
    """The last "message" listener: acknowledges the channel messages no surface wants (the subscriptions that bring
    edits and deletions bring every message). Unhandled, Bolt would answer 404 and Slack would retry them."""
    app.event("message")(ignore)
