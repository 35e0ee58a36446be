"""The agent view's listeners: thin, each pulls the event's fields and calls a plain function."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.agent import render, rules
from bot.agent.answer import answer_in_pane
from core.states import ChannelKind
from storage.suggestions import most_asked

log = logging.getLogger("ftbot.bot")


async def is_question(event, context) -> bool:
    return rules.is_question(event, context.get("bot_user_id"))


async def on_question(event, body, client, context) -> None:
    deps, metrics = context["deps"], context["metrics"]
    if not await deps.first_delivery(body):
        return
    channel, thread_ts = event["channel"], rules.thread_of(event)
    # The DM's kind, recorded now, gives a correction of this answer its audience (storage.audience).
    await deps.channels.learn(client, channel, deps.db, kind_hint=ChannelKind.DM)
    await answer_in_pane(deps, client, metrics, text=event.get("text", ""), user=event["user"], channel=channel,
                         thread_ts=thread_ts, ts=event["ts"], team=body.get("team_id"),
                         bot_user_id=context.get("bot_user_id"))


async def opens_messages(event) -> bool:
    return rules.opens_messages(event)


async def on_open(event, client, context) -> None:
    """The agent view opened, a new thread in it, or its context changed: suggest what people ask most."""
    deps, metrics = context["deps"], context["metrics"]
    channel, thread_ts = rules.prompts_place(event)
    if not channel:
        return
    prompts = render.suggested_prompts(await deps.db(lambda s: most_asked(s, channel, render.MAX_PROMPTS)))
    if not prompts:
        return
    try:
        await client.assistant_threads_setSuggestedPrompts(channel_id=channel, thread_ts=thread_ts,
                                                           title=render.PROMPTS_TITLE, prompts=prompts)
    except SlackApiError as exc:
        log.info("could not suggest prompts: %s", exc.response.get("error"))
    metrics.events.labels(kind="agent", outcome="prompts").inc()
