"""An answer streamed to whoever may read unchecked text (the asker in the agent view or a DM, a team member who
mentioned the bot): the model's words as it writes them, then the grounding check's verdict on the whole of it
(DIRECTION §2). Passed: the stream ends with who answered, the sources and the feedback buttons. Declined, or no
answer: the streamed text is replaced, so none of it stays visible."""

from __future__ import annotations

import time

from bot.asking import render
from bot.asking.answer import answer_blocks, keep, reused_line, source_links
from bot.asking.compose import Composed, compose
from bot.asking.rules import stands
from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.blocks import escape
from bot.slack.stream import AnswerStream
from core.prompt import settled_answer


async def answer_streamed(deps: Deps, client, metrics: BotMetrics, *, question: str, user: str, channel: str,
                          thread_ts: str, ts: str, team: str | None = None, shared: bool = False) -> Composed:
    """question: plain text, not empty. shared: the thread is in a channel others read (Slack shows a stream live
    to its recipient alone, and the stopped message to everyone), so a declined stream is deleted unstopped.
    Every question is a Feedback row (bot.asking.answer.keep)."""
    started = time.perf_counter()
    stream = AnswerStream(client, channel, thread_ts, recipient_user_id=user, recipient_team_id=team, shared=shared)

    said, written = "", ""

    async def show(piece: str) -> None:
        # The settled text only (no echo of the prompt's shape), escaped: no accidental mentions or links.
        nonlocal said, written
        said += piece
        settled = escape(settled_answer(said))
        if len(settled) > len(written) and settled.startswith(written):
            await stream.write(settled[len(written):])
            written = settled

    composed = await compose(deps, question, channel=channel, on_text=show)
    fb = await keep(deps, metrics, composed, user=user, thread_ts=thread_ts, ts=ts, started=started)
    if composed.error:
        await stream.replace(render.UNAVAILABLE)
    elif composed.declined or not stands(escape(composed.text), stream.shown + stream.pending):
        message = await answer_blocks(deps, client, composed, fb.id)
        await stream.replace(message["text"], message["blocks"])
    else:
        sources = await source_links(deps, client, composed.hits or [], channel)
        await stream.finish(render.answer_tail(model=composed.model, version_name=composed.version_name,
                                               feedback_id=fb.id, sources=sources,
                                               reused=await reused_line(deps, client, composed)), text=composed.text)
    return composed
