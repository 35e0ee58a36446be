"""Labelling by reaction: a ✅ on a reply in a thread stores the pair; removing it withdraws it."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.labelling.handlers import on_reaction_added, on_reaction_removed
from bot.metrics import BotMetrics


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.event("reaction_added")(on_reaction_added)
    app.event("reaction_removed")(on_reaction_removed)
