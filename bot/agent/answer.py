"""A question in the agent view (or a DM), answered as a person there sees it: the status at once, the answer
streamed as it is written, then the grounding check's verdict on the whole of it (DIRECTION §2)."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from bot.agent import render, rules
from bot.asking import render as answer_render
from bot.asking.answer import FAILED, answer_blocks, keep, source_links
from bot.asking.compose import compose
from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.blocks import escape
from bot.slack.markup import strip_emoji
from bot.slack.post import post
from bot.slack.questions import question_text
from bot.slack.stream import AnswerStream

log = logging.getLogger("ftbot.bot")


async def set_status(client, channel: str, thread_ts: str, status: str, loading: list[str] | None = None) -> None:
    """The thread's status line ("" clears it); a failure costs the person only the hint."""
    try:
        await client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=status,
                                                 **({"loading_messages": loading} if loading else {}))
    except SlackApiError as exc:
        log.info("could not set the thread's status: %s", exc.response.get("error"))


async def set_title(client, channel: str, thread_ts: str, question: str) -> None:
    try:
        await client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=render.title(question))
    except SlackApiError as exc:
        log.info("could not set the thread's title: %s", exc.response.get("error"))


async def answer_streamed(deps: Deps, client, metrics: BotMetrics, *, text: str, user: str, channel: str,
                          thread_ts: str, ts: str, team: str | None = None, bot_user_id: str | None = None) -> None:
    """Status before anything else (retrieval takes time), the answer streamed to the asker, then: passed → the
    stream ends with who answered, the sources and the feedback buttons; declined → the streamed text is
    replaced by the refusal; no model → the status is cleared and the usual sentence posted. Every question is a
    Feedback row (bot.asking.answer.keep)."""
    question = question_text(text, bot_user_id)
    if not strip_emoji(question):
        await post(client, channel, thread_ts, dm_to=user, failed=FAILED, text=answer_render.USAGE)
        return
    started = time.perf_counter()
    await set_status(client, channel, thread_ts, render.STATUS, render.LOADING)
    await set_title(client, channel, thread_ts, question)
    stream = AnswerStream(client, channel, thread_ts, recipient_user_id=user, recipient_team_id=team)

    async def show(piece: str) -> None:
        await stream.write(escape(piece))  # no accidental mentions or links, as in a whole answer

    composed = await compose(deps, question, channel=channel, on_text=show)
    fb = await keep(deps, metrics, composed, user=user, thread_ts=thread_ts, ts=ts, started=started)
    if composed.error:
        await set_status(client, channel, thread_ts, "")
        await stream.replace(answer_render.UNAVAILABLE)
        return
    if composed.declined or not rules.stands(escape(composed.text), stream.shown + stream.pending):
        message = await answer_blocks(deps, client, composed, fb.id)
        await stream.replace(message["text"], message["blocks"])
        return
    sources = await source_links(deps, client, composed.hits or [], channel)
    await stream.finish(answer_render.answer_tail(model=composed.model, version_name=composed.version_name,
                                                  feedback_id=fb.id, sources=sources), text=composed.text)
