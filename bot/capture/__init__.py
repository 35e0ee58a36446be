"""Capture by message shortcut: "Add to training data" on a reply opens the pair, prefilled and editable."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.capture import render
from bot.capture.handlers import SHORTCUT, on_shortcut, on_submit
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.shortcut(SHORTCUT)(on_shortcut)
    app.view(render.CAPTURE_MODAL)(on_submit)
