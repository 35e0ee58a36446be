"""Training jobs in the approvals channel (bot.approvals.announcer), and the admins' Approve / Reject buttons."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.approvals import render
from bot.approvals.handlers import on_decision
from bot.deps import Deps
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    for decision in (render.APPROVE, render.REJECT):
        app.action(decision)(on_decision)
