"""`/ft review`: the curators' review list (bot.curation)."""

from __future__ import annotations

from bot.commands.registry import CURATORS, Call, command
from bot.curation.review import review_message


@command("review", syntax="review", role=CURATORS,
         summary="the oldest candidate examples, with Approve / Edit / Reject")
async def review(call: Call) -> dict:
    return await review_message(call.deps)
