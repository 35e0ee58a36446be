"""`/ft ask QUESTION`: answered in the command's channel, in the open, like a mention (a DM if the bot is not
there)."""

from __future__ import annotations

from bot.asking.answer import answer_question
from bot.commands.registry import EVERYONE, Call, UsageError, command


def _question(name: str, args: list[str], rest: str) -> str:
    if not rest:
        raise UsageError("Write the question after `ask`, e.g. `/ft ask how long is the free trial?`")
    return rest


@command("ask", syntax="ask QUESTION", role=EVERYONE, hint="ask QUESTION", parse=_question, learns_channel=True,
         summary="ask the deployed model; the answer is posted in this channel")
async def ask(call: Call) -> None:
    await answer_question(call.deps, call.client, call.metrics, question=call.args, user=call.user,
                          channel=call.channel or call.user, thread_ts=None)
