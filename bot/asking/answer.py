"""Answering a question where it was asked (@mention, DM, `/ft ask`): composed (bot.asking.compose), kept as a
Feedback row, posted with the threads it drew on and 👍/👎."""

from __future__ import annotations

import time
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.asking import render
from bot.asking.compose import Composed, compose
from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.markup import strip_emoji
from bot.slack.permalinks import pair_link
from bot.slack.post import post
from bot.slack.questions import question_text
from core.states import ExampleSource
from storage import feedback
from storage.audience import link_scope
from storage.models import Feedback

FAILED = "could not answer"


async def answer_question(deps: Deps, client, metrics: BotMetrics, *, question: str, user: str | None,
                          channel: str, thread_ts: str | None, ts: str | None = None,
                          bot_user_id: str | None = None) -> None:
    """Answer in the thread (`thread_ts=None`: a plain message in the channel), with 👍/👎.

    Every question is kept as a Feedback row, answered or not, so a curator sees what people ask.
    """
    question = question_text(question, bot_user_id)
    if not strip_emoji(question):
        metrics.events.labels(kind="ask", outcome="empty").inc()
        await post(client, channel, thread_ts, dm_to=user, failed=FAILED, text=render.USAGE)
        return
    started = time.perf_counter()
    composed = await compose(deps, question, channel=channel)
    fb = await keep(deps, metrics, composed, user=user, thread_ts=thread_ts, ts=ts, started=started)
    if composed.error:
        await post(client, channel, thread_ts, dm_to=user, failed=FAILED, text=render.UNAVAILABLE)
        return
    await post(client, channel, thread_ts, dm_to=user, failed=FAILED,
               **await answer_blocks(deps, client, composed, fb.id))


async def keep(deps: Deps, metrics: BotMetrics, composed: Composed, *, user: str | None, thread_ts: str | None,
               ts: str | None, started: float) -> Feedback:
    """The question as a Feedback row, answered or not (so a curator sees what people ask), and the answer's
    metrics."""
    fb = await deps.db(lambda s: feedback.record(
        s, question=composed.question, answer=composed.text, user=user, version_name=composed.version_name,
        source=composed.source(channel=composed.channel, thread_ts=thread_ts, ts=ts), declined=composed.declined))
    metrics.answers.labels(outcome=composed.outcome).inc()
    metrics.answer_seconds.observe(time.perf_counter() - started)
    return fb


async def answer_blocks(deps: Deps, client, composed: Composed, feedback_id: int, **extra: Any
                        ) -> dict[str, Any]:
    """The answer message: the text, who answered, the threads it drew on (none for a refusal), 👍/👎; a reused
    approved answer says whose it is instead."""
    sources = [] if composed.declined else await source_links(deps, client, composed.hits or [], composed.channel)
    return render.answer_message(composed.text, model=composed.model, version_name=composed.version_name,
                                 feedback_id=feedback_id, sources=sources,
                                 reused=await reused_line(deps, client, composed), **extra)


async def reused_line(deps: Deps, client, composed: Composed) -> str | None:
    """"The answer @lead approved for a similar question", linked to where it was given; None when the model wrote
    the answer."""
    hit = composed.reused
    return None if hit is None else render.reused_by(hit.approved_by, await reused_link(deps, client, composed))


async def reused_link(deps: Deps, client, composed: Composed) -> str | None:
    """The permalink of the message that first gave the reused answer, when the asker may open that thread
    (storage.audience's link scope: a shareable mark shares the answer, not the thread)."""
    hit = composed.reused
    if hit is None or not link_scope(composed.channel).allows(hit.audience, hit.channel_id):
        return None
    return pair_link(await workspace_url(deps, client), hit.source or {})


async def workspace_url(deps: Deps, client) -> str:
    """https://acme.slack.com/, asked of Slack once (auth.test); "" when Slack will not say."""
    if not deps.workspace_url:
        try:
            deps.workspace_url = (await client.auth_test()).get("url") or ""
        except SlackApiError:
            return ""
    return deps.workspace_url


async def source_links(deps: Deps, client, hits: list, channel: str | None) -> list[str]:
    """Links to the Slack threads the retrieved answers came from (Slack-imported or labelled examples), when the
    asker may open them: a shareable mark shares a channel's answers, not its threads (storage.audience)."""
    hits = [h for h in hits if link_scope(channel).allows(h.audience, h.channel_id)]
    if not hits or not await workspace_url(deps, client):
        return []
    links = []
    for hit in hits:
        src = hit.source or {}
        if src.get("kind") == ExampleSource.SLACK and (link := pair_link(deps.workspace_url, src)):
            links.append(f"<{link}|#{src.get('channel') or 'thread'}>")
    return links
