"""Slack's agent view (the app's own pane, and plain DMs): questions answered with a status, streamed text and
feedback buttons; suggested prompts when the pane opens."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.agent import handlers
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.event("message", matchers=[handlers.is_question])(handlers.on_question)
    app.event("app_home_opened", matchers=[handlers.opens_messages])(handlers.on_open)
    app.event("assistant_thread_started")(handlers.on_open)
    app.event("app_context_changed")(handlers.on_open)
