"""Slack's agent view (the app's own pane, and plain DMs): questions answered with a status, streamed text and
feedback buttons; suggested prompts when the pane opens."""

from __future__ import annotations

from functools import partial

from slack_bolt.async_app import AsyncApp

from bot.agent import handlers
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    bound = {"deps": deps, "metrics": metrics}
    app.event("message", matchers=[handlers.is_question])(partial(handlers.on_question, **bound))
    app.event("app_home_opened", matchers=[handlers.opens_messages])(partial(handlers.on_open, **bound))
    app.event("assistant_thread_started")(partial(handlers.on_open, **bound))
    app.event("app_context_changed")(partial(handlers.on_open, **bound))
