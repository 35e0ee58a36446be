"""A question in the agent view (or a DM): the status at once (retrieval and the model take seconds), the thread's
title, then the answer streamed to the asker (bot.asking.streamed)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.agent import render
from bot.asking import render as answer_render
from bot.asking.answer import FAILED
from bot.asking.streamed import answer_streamed
from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.markup import strip_emoji
from bot.slack.post import post
from bot.slack.questions import question_text

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


async def answer_in_pane(deps: Deps, client, metrics: BotMetrics, *, text: str, user: str, channel: str,
                         thread_ts: str, ts: str, team: str | None = None, bot_user_id: str | None = None) -> None:
    """Status before anything else, the answer streamed; no model: the status is cleared and the usual sentence
    posted in its place."""
    question = question_text(text, bot_user_id)
    if not strip_emoji(question):
        await post(client, channel, thread_ts, dm_to=user, failed=FAILED, text=answer_render.USAGE)
        return
    await set_status(client, channel, thread_ts, render.STATUS, render.LOADING)
    await set_title(client, channel, thread_ts, question)
    composed = await answer_streamed(deps, client, metrics, question=question, user=user, channel=channel,
                                     thread_ts=thread_ts, ts=ts, team=team)
    if composed.error:
        await set_status(client, channel, thread_ts, "")
