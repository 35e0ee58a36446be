"""App Home: opening the bot's Home tab shows the data set, the training jobs and the deployed model."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.home.handlers import on_home_opened
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.event("app_home_opened")(on_home_opened)
