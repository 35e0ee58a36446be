"""Asking the bot (@mention, `/ft ask`; DMs and the agent view are bot.agent's) and the feedback on its answers."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.asking import handlers, render
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    # Bolt acks events before listeners run (process_before_response=False), so a slow model holds up nothing.
    app.event("app_mention")(handlers.on_mention)
    app.action(render.UP)(handlers.on_up)
    app.action(render.DOWN)(handlers.on_down)
    app.action(render.FEEDBACK)(handlers.on_feedback)
    app.view(render.CORRECTION_MODAL)(handlers.on_correction)
