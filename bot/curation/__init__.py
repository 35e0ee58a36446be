"""Curation: Approve / Edit / Reject on the review list's candidates, Answer / Dismiss on the questions the bot
could not answer; for curators and admins only."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.curation import handlers, render
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    for decision in (render.APPROVE, render.REJECT):
        app.action(decision)(handlers.on_decision)
    app.action(render.EDIT)(handlers.on_edit)
    app.view(render.EDIT_MODAL)(handlers.on_edit_submit)
    app.action(render.ANSWER)(handlers.on_answer)
    app.view(render.ANSWER_MODAL)(handlers.on_answer_submit)
    app.action(render.DISMISS)(handlers.on_dismiss)
