"""`/ft gaps [since]`: the knowledge gaps (bot.gaps) the viewer may see from this channel.

For the support team: agents, curators and admins. The gaps are customers' questions, which the team already reads
in its drafts channels and which nobody else should (a customer in a shared channel could otherwise read other
customers' questions); agents answer those customers every day, and what an agent writes for a gap is only a
candidate until a curator approves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.commands.registry import TEAM, Call, UsageError, command, shown
from bot.gaps import render
from bot.gaps.finding import NoEmbedder, find
from storage.models import utcnow
from storage.outcomes import parse_since

DEFAULT_SINCE = timedelta(days=7)


@dataclass(frozen=True)
class GapsArgs:
    since: datetime | None = None  # None: the last 7 days
    problem: str | None = None  # a `since` that is no time: said in one line, without the help


def _gaps_args(name: str, args: list[str], rest: str) -> GapsArgs:
    if len(args) > 1:
        raise UsageError("`/ft gaps` takes at most one time, e.g. `/ft gaps 14d`.")
    if not args:
        return GapsArgs()
    try:
        return GapsArgs(since=parse_since(args[0]))
    except ValueError:
        return GapsArgs(problem=f"`{shown(args[0])}` is not a time: write 7d, 24h, 30m, or a date such as 2026-11-01.")


@command("gaps", syntax="gaps [7d|24h|2026-11-01]", role=TEAM, parse=_gaps_args, hint="gaps [since]",
         summary="the questions the bot could not answer, grouped by topic (knowledge gaps), with Write the answer")
async def gaps(call: Call) -> dict:
    if call.args.problem:
        return {"text": call.args.problem}
    since = call.args.since or utcnow() - DEFAULT_SINCE
    try:
        found = await find(call.deps, since=since, channel=call.channel)
    except NoEmbedder:
        return {"text": render.NO_EMBEDDER}
    return render.listing(found, since, call.channel)
