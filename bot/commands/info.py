"""`/ft help` and `/ft status`."""

from __future__ import annotations

from bot.commands import render
from bot.commands.registry import EVERYONE, Call, command
from storage import stats


@command("help", syntax="help", role=EVERYONE, summary="this list", in_ack=True)
async def help_(call: Call) -> dict:
    return {"text": render.help_text()}


@command("status", syntax="status", role=EVERYONE,
         summary="examples, training jobs and the deployed version at a glance")
async def status(call: Call) -> dict:
    return {"text": render.status(await call.deps.db(stats.status))}
