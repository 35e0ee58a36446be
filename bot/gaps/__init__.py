"""Knowledge gaps: the questions the bot could not answer, grouped (storage.gaps), shown by `/ft gaps`, App Home and
a weekly digest in the curators' channel; "Write the answer" turns one into a pair and offers it to the gap's
questions still waiting in draft-mode channels."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.gaps import handlers, render
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.action(render.WRITE)(handlers.on_write)
    app.view(render.WRITE_MODAL)(handlers.on_write_submit)
