"""Watched channels: a customer's question gets a draft card for the team (draft mode) or the bot's own answer
with a hand-off when it declines (auto mode); Send / Edit & send / Discard / Answer and "This solved it".

The listener is thin: Bolt acks the event first, the row for the question is made once (a retry finds it), the
answer comes from the same path as a mention (bot.asking.compose), and every click moves the draft in one
transaction that checks where it stands, so two agents pressing Send together post once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.asking import answer as asking
from bot.asking.render import SOLVED
from bot.deps import Deps
from bot.drafts import render
from bot.listeners import on_actions
from bot.metrics import BotMetrics
from bot.periodic import Periodic
from bot.slack.api import People, channel_name, fetch_thread
from bot.slack.markup import strip_emoji
from bot.slack.threads import Skipped, extract
from core.states import ChannelMode, DraftStatus
from storage import channels, drafts, feedback
from storage.examples import add_examples
from storage.models import Draft

log = logging.getLogger("ftbot.bot")
CONTENT_SUBTYPES = (None, "file_share", "thread_broadcast")  # edits, joins and deletions are no questions


def _ts_time(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _draft_id(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


async def handle_question(deps: Deps, client, metrics: BotMetrics, event: dict, mode: str,
                          drafts_channel: str | None, bot_user_id: str | None) -> Draft | None:
    """A customer's new top-level message in a draft or auto channel: one Draft row, answered as a mention would
    be; then the card (draft), or the answer or hand-off (auto). None when it is no question or already handled."""
    channel, ts, user = event["channel"], event["ts"], event.get("user")
    question = asking.question_text(event.get("text", ""), bot_user_id)
    if not strip_emoji(question):
        return None
    draft = await deps.db(lambda s: drafts.open_draft(s, mode=mode, channel_id=channel, question_ts=ts, asker=user,
                                                      question=question, asked_at=_ts_time(ts)))
    if draft is None:  # this question already has its draft (a retry that reached another replica)
        return None
    composed = await asking.compose(deps, question, channel=channel)
    if composed.error:
        status = DraftStatus.FAILED
    elif mode == ChannelMode.DRAFT:
        status = DraftStatus.PENDING
    else:
        status = DraftStatus.HANDED_OFF if composed.declined else DraftStatus.ANSWERED
    fb_source = composed.source(channel=channel, thread_ts=ts, ts=ts, draft_id=draft.id, mode=mode)

    def store(s) -> Draft:
        # Every question is a Feedback row too: a declined one waits in the curators' queue, an auto answer
        # collects 👍/👎 there.
        fb = feedback.record(s, question=question, answer=composed.text, user=user,
                             version_name=composed.version_name, source=fb_source,
                             declined=composed.declined or bool(composed.error))
        return drafts.record_answer(
            s, draft.id, status=status, answer=composed.text, model_answer=composed.reply.model_answer
            if composed.reply else "", declined=composed.declined or bool(composed.error),
            grounding=composed.reply.grounding.to_json() if composed.reply and composed.reply.grounding else {},
            context=[h.source_key for h in composed.hits or []], prompt=composed.messages,
            version_name=composed.version_name, model=composed.model, feedback_id=fb.id)

    draft = await deps.db(store)
    metrics.answers.labels(outcome=composed.outcome).inc()
    if mode == ChannelMode.DRAFT:
        sources = [] if draft.declined else await asking.source_links(deps, client, composed.hits or [], channel)
        await _post_card(deps, client, draft, drafts_channel, render.card(draft, sources=sources,
                                                                          workspace_url=deps.workspace_url))
    elif status == DraftStatus.ANSWERED:
        message = await asking.answer_blocks(deps, client, composed, draft.feedback_id, solved_id=draft.id)
        if await _post(client, channel, ts, **message) is not None:
            await deps.db(lambda s: drafts.posted(s, draft.id))
    else:
        if await _post(client, channel, ts, text=render.HANDOFF_REPLY) is not None:
            await deps.db(lambda s: drafts.posted(s, draft.id))
        await _post_card(deps, client, draft, drafts_channel,
                         render.handoff_card(draft, workspace_url=deps.workspace_url), first_response=False)
    draft = await deps.db(lambda s: drafts.get(s, draft.id))  # with the time its first response reached Slack
    metrics.draft_outcome(draft)
    return draft


async def _post(client, channel: str, thread_ts: str | None, **message: Any) -> str | None:
    try:
        reply = await client.chat_postMessage(channel=channel, **({"thread_ts": thread_ts} if thread_ts else {}),
                                              **message)
        return reply.get("ts") or ""
    except SlackApiError as exc:
        log.warning("could not post in %s: %s", channel, exc.response.get("error"))
        return None


async def _post_card(deps: Deps, client, draft: Draft, drafts_channel: str | None, message: dict,
                     first_response: bool = True) -> None:
    if not drafts_channel:
        log.warning("channel %s has no drafts channel; draft %s is stored but not shown", draft.channel_id, draft.id)
        return
    ts = await _post(client, drafts_channel, None, **message)
    if ts is not None:
        if first_response:
            await deps.db(lambda s: drafts.posted(s, draft.id, card_channel=drafts_channel, card_ts=ts))
        else:
            await deps.db(lambda s: _note_card(s, draft.id, drafts_channel, ts))


def _note_card(session, draft_id: int, card_channel: str, card_ts: str) -> None:
    row = drafts.get(session, draft_id)
    row.drafts_channel, row.card_ts = card_channel, card_ts


async def close_card(client, draft: Draft, blocks: list | None = None) -> None:
    """Replace the card's buttons with what became of the draft (no second click can act on it)."""
    if not (draft.drafts_channel and draft.card_ts):
        return
    shown = blocks if blocks else render.card(draft, sources=[])["blocks"] if draft.mode == ChannelMode.DRAFT \
        else render.handoff_card(draft)["blocks"]
    line = render.outcome_line(draft)
    try:
        await client.chat_update(channel=draft.drafts_channel, ts=draft.card_ts, text=line,
                                 blocks=render.closed(shown, line))
    except SlackApiError as exc:
        log.warning("could not update draft card %s: %s", draft.id, exc.response.get("error"))


async def send(deps: Deps, client, metrics: BotMetrics, draft_id: int, user: str, text: str | None,
               card_blocks: list | None = None) -> tuple[Draft | None, str | None]:
    """Post a claimed draft (text None: unchanged) in the customer's thread and store the pair.
    Returns (draft, None) when sent, or (the draft as it stands, why not)."""
    claimed = await deps.db(lambda s: drafts.claim(s, draft_id, user))
    if claimed is None:
        current = await deps.db(lambda s: drafts.get(s, draft_id))
        return current, render.already(current)
    body = claimed.answer if text is None else text
    ts = await _post(client, claimed.channel_id, claimed.question_ts,
                     **render.sent_message(body, agent=user, draft=claimed))
    if ts is None:
        await deps.db(lambda s: drafts.release(s, draft_id))
        return claimed, render.POST_FAILED.format(error="Slack refused the message")
    draft, outcome, example = await deps.db(lambda s: drafts.sent(s, draft_id, text=body, sent_ts=ts, by=user,
                                                                  curator=deps.is_curator(user)))
    if draft.feedback_id is not None and example is not None:  # the curators' queue no longer waits on it
        await deps.db(lambda s: _answered(s, draft.feedback_id, example.id, body))
    if draft.mode == ChannelMode.AUTO:  # a hand-off answered: still a hand-off, now with a human response
        metrics.first_response(draft, "human")
    else:
        metrics.draft_outcome(draft)
    await close_card(client, draft, card_blocks)
    return draft, None


def _answered(session, feedback_id: int, example_id: int, text: str) -> None:
    row = feedback.get(session, feedback_id)
    if row is not None and row.example_id is None:
        row.example_id, row.correction = example_id, text


async def sweep(deps: Deps, client, metrics: BotMetrics) -> list[Draft]:
    """Expire the drafts nobody acted on within FT_DRAFT_TTL_H, and say so on their cards."""
    expired = await deps.db(lambda s: drafts.expire(s, deps.draft_ttl_h))
    for draft in expired:
        metrics.draft_outcome(draft)
        await close_card(client, draft)
    return expired


class Sweeper(Periodic):
    """Runs sweep() every `every_s` inside the bot (started and stopped with its HTTP app)."""

    what = "expiring drafts"

    def __init__(self, deps: Deps, client, metrics: BotMetrics, every_s: float = 60.0):
        super().__init__()
        self.deps, self.client, self.metrics, self.every_s = deps, client, metrics, every_s

    async def tick(self) -> list[Draft]:
        return await sweep(self.deps, self.client, self.metrics)


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    people: People | None = None

    async def in_a_channel(event) -> bool:
        return event.get("channel_type") in ("channel", "group") and event.get("subtype") in CONTENT_SUBTYPES

    @app.event("message", matchers=[in_a_channel])
    async def on_channel_message(event, body, client, context):
        user, bot_user_id = event.get("user"), context.get("bot_user_id")
        if not user or event.get("bot_id") or user == bot_user_id:
            return  # bots (and the bot itself) ask nothing
        row = await deps.db(lambda s: channels.get(s, event["channel"]))
        if row is None or row.mode not in (ChannelMode.DRAFT, ChannelMode.AUTO):
            return
        if not await deps.first_delivery(body):
            return
        thread_ts = event.get("thread_ts")
        if thread_ts and thread_ts != event["ts"]:
            await on_thread_reply(event, client, thread_ts)
        elif not deps.is_team(user):
            # The channel's kind, recorded now, gives the pair a sent draft becomes its audience (storage.audience).
            await deps.channels.learn(client, event["channel"], deps.db)
            await handle_question(deps, client, metrics, event, row.mode, row.drafts_channel, bot_user_id)

    async def on_thread_reply(event: dict, client, thread_ts: str) -> None:
        nonlocal people
        channel, user, ts = event["channel"], event["user"], event["ts"]
        if not deps.is_team(user):
            before = await deps.db(lambda s: drafts.by_thread(s, channel, thread_ts))
            draft = await deps.db(lambda s: drafts.asker_followed_up(s, channel, thread_ts, user))
            if before is not None and before.followed_up_at is None and draft.followed_up_at is not None:
                metrics.draft_outcome(draft, "followed_up")
            return
        before = await deps.db(lambda s: drafts.by_thread(s, channel, thread_ts))
        if before is None:
            return
        draft = await deps.db(lambda s: drafts.answered_by_hand(s, channel, thread_ts, by=user,
                                                                 text=event.get("text", ""), reply_ts=ts))
        if before.status != DraftStatus.PENDING or draft.status != DraftStatus.SUPERSEDED:
            if before.human_response_at is None and draft.human_response_at is not None:
                metrics.first_response(draft, "human")  # e.g. the team answering after an auto hand-off
            return
        metrics.draft_outcome(draft)
        # The hand-written reply is a candidate pair, read from the thread like a ✅ label.
        people = people or People(client)
        try:
            thread = await fetch_thread(client, channel, ts)
            await people.learn(thread)
            pair = extract(thread, ts, [], channel_id=channel, channel_name=await channel_name(client, channel),
                           names=people.names, rules=deps.rules, bots=frozenset(people.bots))
        except SlackApiError as exc:
            log.warning("could not read the thread that superseded draft %s: %s", draft.id, exc.response.get("error"))
            pair = None
        if pair is not None and not isinstance(pair, Skipped):
            [(_, example)] = await deps.db(lambda s: add_examples(s, [pair]))
            await deps.db(lambda s: drafts.link_example(s, draft.id, example.id if example else None))
        await close_card(client, draft)

    async def team_only(body: dict, respond) -> bool:
        if deps.is_team(body["user"]["id"]):
            return False
        metrics.events.labels(kind="draft", outcome="refused").inc()
        await respond(text=render.ONLY_TEAM, response_type="ephemeral", replace_original=False)
        return True

    @app.action(render.SEND)
    async def on_send(ack, body, respond, client):
        await ack()
        if await team_only(body, respond):
            return
        draft_id = _draft_id(body["actions"][0].get("value"))
        draft, problem = await send(deps, client, metrics, draft_id, body["user"]["id"], None,
                                    (body.get("message") or {}).get("blocks")) if draft_id else (None, None)
        if draft_id is None or problem:
            await respond(text=problem or render.already(None), response_type="ephemeral", replace_original=False)

    async def open_form(ack, body, respond, client, build) -> None:
        await ack()
        if await team_only(body, respond):
            return
        draft_id = _draft_id(body["actions"][0].get("value"))
        draft = await deps.db(lambda s: drafts.get(s, draft_id)) if draft_id else None
        if draft is None or draft.sent_ts or draft.status not in (DraftStatus.PENDING, DraftStatus.FAILED,
                                                                  DraftStatus.HANDED_OFF):
            await respond(text=render.already(draft), response_type="ephemeral", replace_original=False)
            return
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=build(draft))
        except SlackApiError as exc:  # the trigger lives 3 s
            log.warning("could not open a draft form: %s", exc.response.get("error"))
            await respond(text=render.FORM_TOO_SLOW, response_type="ephemeral", replace_original=False)

    on_actions(app, open_form, {render.EDIT: render.edit_modal, render.ANSWER: render.edit_modal,
                                render.DISCARD: render.discard_modal})

    @app.view(render.EDIT_MODAL)
    async def on_edit_submit(ack, body, view, client):
        user, draft_id, text = body["user"]["id"], _draft_id(view.get("private_metadata")), render.submitted_text(view)
        problem = None
        if not strip_emoji(text):
            problem = "Write the answer; it can't be empty or only emoji."
        elif not deps.is_team(user):
            problem = render.ONLY_TEAM
        elif draft_id is None:
            problem = render.already(None)
        else:
            _, problem = await send(deps, client, metrics, draft_id, user, text)
        if problem:
            await ack(response_action="errors", errors={render.TEXT: problem})
        else:
            await ack()

    @app.view(render.DISCARD_MODAL)
    async def on_discard_submit(ack, body, view, client):
        user, draft_id, reason = body["user"]["id"], _draft_id(view.get("private_metadata")), \
            render.submitted_reason(view)
        if reason not in render.REASONS:
            await ack(response_action="errors", errors={render.REASON: "Pick a reason."})
            return
        if not deps.is_team(user) or draft_id is None:
            await ack(response_action="errors", errors={render.REASON: render.ONLY_TEAM if draft_id
                                                        else render.already(None)})
            return
        draft = await deps.db(lambda s: drafts.discard(s, draft_id, user, reason))
        if draft is None:
            current = await deps.db(lambda s: drafts.get(s, draft_id))
            await ack(response_action="errors", errors={render.REASON: render.already(current)})
            return
        await ack()
        metrics.draft_outcome(draft)
        await close_card(client, draft)

    @app.action(SOLVED)
    async def on_solved(ack, body, respond):
        await ack()
        draft_id, user = _draft_id(body["actions"][0].get("value")), body["user"]["id"]
        accepted, draft = await deps.db(lambda s: drafts.resolve(s, draft_id, user)) if draft_id else (False, None)
        if accepted:
            metrics.draft_outcome(draft, "resolved")
        else:
            metrics.events.labels(kind="draft", outcome="solved_refused").inc()
        text = render.SOLVED_THANKS if accepted else render.SOLVED_ONLY_ASKER if draft else render.already(None)
        await respond(text=text, response_type="ephemeral", replace_original=False)
