"""`/ft` subcommands, each declared once: `@command("train", syntax=..., role=..., summary=..., parse=...)` on its
handler registers its name, arguments, role, help line and handler together (the way simonw/llm registers
migrations). Help, the manifest's usage hint and the dispatch all read COMMANDS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from core.text import clip

EVERYONE, TEAM, CURATORS, ADMINS = "everyone", "team", "curators", "admins"  # TEAM: agents, curators and admins


class UsageError(ValueError):
    """What is wrong with the command's text, in one sentence for the person who typed it."""


@dataclass(frozen=True)
class Call:
    """One allowed `/ft` command, as its handler gets it."""

    deps: Any  # bot.deps.Deps
    metrics: Any  # bot.metrics.BotMetrics
    client: Any
    user: str
    channel: str | None  # where it was typed
    args: Any  # what the subcommand's parse() made of its text


Handler = Callable[[Call], Awaitable["dict[str, Any] | None"]]


def no_args(name: str, args: list[str], rest: str) -> None:
    if args:
        raise UsageError(f"`/ft {name}` takes no arguments.")


@dataclass(frozen=True)
class Spec:
    name: str
    syntax: str  # as shown in help, after `/ft`
    role: str
    summary: str
    hint: str  # its part of the manifest's usage hint
    parse: Callable[[str, list[str], str], Any]  # (name, words, the text after the name) → args, or UsageError
    run: Handler  # → respond()'s arguments; None when it answered itself (ask)
    in_ack: bool = False  # answered in the ack itself (help): no database, no role check
    learns_channel: bool = False  # the channel's kind is recorded first (its reply or answer depends on it)


COMMANDS: dict[str, Spec] = {}


def command(name: str, *, syntax: str, role: str, summary: str, hint: str | None = None,
            parse: Callable[[str, list[str], str], Any] = no_args, in_ack: bool = False,
            learns_channel: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated handler as `/ft NAME`; help lists subcommands in the order they are registered."""
    def register(run: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"/ft {name} is declared twice")
        COMMANDS[name] = Spec(name, syntax, role, summary, hint or name, parse, run, in_ack, learns_channel)
        return run
    return register


def commands() -> dict[str, Spec]:
    """Every subcommand, registered (importing bot.commands imports each module that declares some)."""
    import bot.commands  # noqa: F401

    return COMMANDS


@dataclass(frozen=True)
class Command:
    spec: Spec
    args: Any = None

    @property
    def name(self) -> str:
        return self.spec.name


def parse(text: str | None) -> Command:
    """`/ft` alone means help; anything unknown or malformed raises UsageError."""
    parts = (text or "").split(None, 1)
    if not parts:
        return Command(commands()["help"])
    head, rest = parts[0], parts[1].strip() if len(parts) > 1 else ""
    spec = commands().get(head.lower())
    if spec is None:
        raise UsageError(f"I don't know the sub-command `{shown(head)}`.")
    return Command(spec, spec.parse(spec.name, rest.split(), rest))


def allowed(deps: Any, user: str | None, role: str) -> bool:
    if role == ADMINS:
        return deps.is_admin(user)
    if role == CURATORS:
        return deps.is_curator(user)
    if role == TEAM:
        return deps.is_team(user)
    return True


def usage_hint() -> str:
    """The manifest's usage_hint for /ft (tests check manifest.yml says exactly this)."""
    return " | ".join(spec.hint for spec in commands().values())


def shown(text: str, limit: int = 40) -> str:
    """User text echoed inside backticks: short, and unable to close them."""
    return clip(text.replace("`", "'"), limit, trim=False)
