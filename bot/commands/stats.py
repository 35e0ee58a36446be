"""`/ft stats [#channel] [since]`: what became of the bot's drafts and answers in watched channels."""

from __future__ import annotations

from typing import Any

from bot.commands import render
from bot.commands.registry import EVERYONE, Call, UsageError, command, shown
from storage import outcomes
from storage.outcomes import parse_since


def _stats_args(name: str, args: list[str], rest: str) -> dict[str, Any]:
    """`[#channel] [since]` in either order: a channel (Slack's mention, #name or an id) and how far back."""
    found: dict[str, Any] = {}
    for arg in args:
        key = "channel" if arg.startswith(("<#", "#")) or arg[:1] in "CGD" and arg[1:].isupper() else "since"
        if key in found:
            raise UsageError(f"`{shown(arg)}`: name at most one channel and one time, "
                             "e.g. `/ft stats #help-desk 7d`.")
        if key == "since":
            try:
                found[key] = parse_since(arg)
            except ValueError as exc:
                raise UsageError(f"`{shown(arg)}` is not a time: write 7d, 24h, 30m, or a date such as "
                                 "2026-11-01.") from exc
        else:
            found[key] = arg
    return found


@command("stats", syntax="stats [#channel] [7d|24h|2026-11-01]", role=EVERYONE, parse=_stats_args,
         summary="what became of the bot's drafts and answers in watched channels, per channel and version")
async def stats(call: Call) -> dict:
    """Live outcomes of every watched channel, or of the one named; since the time given, else since the first."""
    deps, named = call.deps, call.args.get("channel")

    def read(session):
        channel = outcomes.channel_id(session, named) if named else None
        if named and channel is None:
            return None
        return outcomes.outcomes(session, channel=channel, since=call.args.get("since"),
                                 resolution_window_h=deps.resolution_window_h)

    report = await deps.db(read)
    return {"text": render.stats(report) if report is not None else render.no_such_channel(named)}
