"""Watched channels: a customer's question gets a draft card for the team (draft mode) or the bot's own answer
with a hand-off when it declines (auto mode); Send / Edit & send / Discard / Answer and "This solved it"."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.asking.render import SOLVED
from bot.deps import Deps
from bot.drafts import handlers, render
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.event("message", matchers=[handlers.watched_message])(handlers.on_channel_message)
    app.action(render.SEND)(handlers.on_send)
    for form in (render.EDIT, render.ANSWER, render.DISCARD):  # each opens its form while the draft waits
        app.action(form)(handlers.open_form)
    app.view(render.EDIT_MODAL)(handlers.on_edit_submit)
    app.view(render.DISCARD_MODAL)(handlers.on_discard_submit)
    app.action(SOLVED)(handlers.on_solved)
