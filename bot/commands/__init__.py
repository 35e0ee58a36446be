"""`/ft`: each subcommand declared once, in its module, with `@command` (bot.commands.registry); help, the
manifest's usage hint and the dispatch read the registry. Adding a subcommand: a function with `@command` in one
of these modules (or a new module, imported below)."""

from __future__ import annotations

from importlib import import_module

from slack_bolt.async_app import AsyncApp

from bot.commands.dispatch import on_ft
from bot.deps import Deps
from bot.metrics import BotMetrics

# Each module registers its subcommands when imported; help and the usage hint list them in this order.
MODULES = ("info", "ask", "review", "gaps", "training", "stats", "versions", "channel", "forget")
for _module in MODULES:
    import_module(f"bot.commands.{_module}")


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    app.command("/ft")(on_ft)
