"""The drafts surface's listeners: a watched channel's messages, the card's buttons and forms, "This solved it"."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.drafts import render
from bot.drafts.flow import close_card, handle_question, send
from bot.drafts.rules import can_open_form, in_a_channel, is_thread_reply
from bot.metrics import BotMetrics
from bot.slack.api import channel_name
from bot.slack.ids import parse_id
from bot.slack.markup import strip_emoji
from bot.slack.questions import is_customer_question
from bot.slack.threads import Skipped, read_pair
from core.modes import policy
from core.states import DraftStatus
from storage import channels, drafts, preferences
from storage.examples import add_examples

log = logging.getLogger("ftbot.bot")


async def watched_message(event, context) -> bool:
    return in_a_channel(event) and is_customer_question(event, context.get("bot_user_id"))


async def on_channel_message(event, body, client, context):
    deps, metrics = context["deps"], context["metrics"]
    row = await deps.db(lambda s: channels.get(s, event["channel"]))
    if row is None or not policy(row.mode).watches_questions or not await deps.first_delivery(body):
        return
    if is_thread_reply(event):
        await on_thread_reply(deps, metrics, event, client)
    elif not deps.is_team(event["user"]):
        # The channel's kind, recorded now, gives the pair a sent draft becomes its audience (storage.audience).
        await deps.channels.learn(client, event["channel"], deps.db)
        await handle_question(deps, client, metrics, event, row.mode, row.drafts_channel, context.get("bot_user_id"))


async def on_thread_reply(deps: Deps, metrics: BotMetrics, event: dict, client) -> None:
    """The asker following up (the auto answer did not settle it), or the team answering by hand: a waiting draft is
    superseded, a draft discarded as wrong is taught against (a preference record), and the reply is a candidate
    pair, read from the thread like a ✅ label."""
    channel, user, ts, thread_ts = event["channel"], event["user"], event["ts"], event["thread_ts"]
    before = await deps.db(lambda s: drafts.by_thread(s, channel, thread_ts))
    if not deps.is_team(user):
        draft = await deps.db(lambda s: drafts.asker_followed_up(s, channel, thread_ts, user))
        if before is not None and before.followed_up_at is None and draft.followed_up_at is not None:
            metrics.draft_outcome(draft, "followed_up")
        return
    if before is None:
        return
    draft = await deps.db(lambda s: drafts.answered_by_hand(s, channel, thread_ts, by=user,
                                                             text=event.get("text", ""), reply_ts=ts))
    if before.status != DraftStatus.PENDING or draft.status != DraftStatus.SUPERSEDED:
        if before.human_response_at is None and draft.human_response_at is not None:
            metrics.first_response(draft, "human")  # e.g. the team answering after an auto hand-off
        if draft.status == DraftStatus.DISCARDED:
            await _answered_after_discard(deps, client, draft, user, event)
        return
    metrics.draft_outcome(draft)
    example = await _reply_pair(deps, client, draft, ts)
    await deps.db(lambda s: drafts.link_example(s, draft.id, example.id if example else None))
    await close_card(client, draft)


async def _answered_after_discard(deps: Deps, client, draft, user: str, event: dict) -> None:
    """The team's reply to a question whose draft was discarded as wrong: preferred to the draft (a preference
    record), and a candidate pair whose side the record takes."""
    record = await deps.db(lambda s: drafts.answered_after_discard(s, draft.id, by=user, text=event.get("text", "")))
    if record is None:
        return
    example = await _reply_pair(deps, client, draft, event["ts"])
    if example is not None:
        await deps.db(lambda s: preferences.link_pair(s, record.id, example.source_key, example.answer))


async def _reply_pair(deps: Deps, client, draft, reply_ts: str):
    """The team's reply in a draft's thread as a candidate pair (read like a ✅ label); the stored example, or None
    when the thread could not be read or holds no pair."""
    channel = draft.channel_id
    try:
        pair = await read_pair(client, deps.people(client), channel, reply_ts, [], rules=deps.rules,
                               channel_name=await channel_name(client, channel))
    except SlackApiError as exc:
        log.warning("could not read the thread that answered draft %s: %s", draft.id, exc.response.get("error"))
        return None
    if pair is None or isinstance(pair, Skipped):
        return None
    [(_, example)] = await deps.db(lambda s: add_examples(s, [pair]))
    return example


async def _team_only(context, body: dict, respond) -> bool:
    if context["deps"].is_team(body["user"]["id"]):
        return False
    context["metrics"].events.labels(kind="draft", outcome="refused").inc()
    await respond(text=render.ONLY_TEAM, response_type="ephemeral", replace_original=False)
    return True


async def on_send(ack, body, respond, client, context):
    await ack()
    if await _team_only(context, body, respond):
        return
    deps, draft_id = context["deps"], parse_id(body["actions"][0].get("value"))
    draft, problem = await send(deps, client, context["metrics"], draft_id, body["user"]["id"], None,
                                (body.get("message") or {}).get("blocks")) if draft_id else (None, None)
    if draft_id is None or problem:
        await respond(text=problem or render.already(None), response_type="ephemeral", replace_original=False)


async def open_form(ack, body, respond, client, context):
    """Edit & send, Answer (a hand-off) and Discard: each opens its form while the draft still waits."""
    await ack()
    if await _team_only(context, body, respond):
        return
    deps, action = context["deps"], body["actions"][0]
    draft_id = parse_id(action.get("value"))
    draft = await deps.db(lambda s: drafts.get(s, draft_id)) if draft_id else None
    if not can_open_form(draft):
        await respond(text=render.already(draft), response_type="ephemeral", replace_original=False)
        return
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=render.form_for(action["action_id"], draft))
    except SlackApiError as exc:  # the trigger lives 3 s
        log.warning("could not open a draft form: %s", exc.response.get("error"))
        await respond(text=render.FORM_TOO_SLOW, response_type="ephemeral", replace_original=False)


async def on_edit_submit(ack, body, view, client, context):
    deps, user = context["deps"], body["user"]["id"]
    draft_id, text = parse_id(view.get("private_metadata")), render.submitted_text(view)
    problem = None
    if not strip_emoji(text):
        problem = "Write the answer; it can't be empty or only emoji."
    elif not deps.is_team(user):
        problem = render.ONLY_TEAM
    elif draft_id is None:
        problem = render.already(None)
    else:
        _, problem = await send(deps, client, context["metrics"], draft_id, user, text)
    if problem:
        await ack(response_action="errors", errors={render.TEXT: problem})
    else:
        await ack()


async def on_discard_submit(ack, body, view, client, context):
    deps, user = context["deps"], body["user"]["id"]
    draft_id, reason = parse_id(view.get("private_metadata")), render.submitted_reason(view)
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
    context["metrics"].draft_outcome(draft)
    await close_card(client, draft)


async def on_solved(ack, body, respond, context):
    await ack()
    deps, metrics = context["deps"], context["metrics"]
    draft_id, user = parse_id(body["actions"][0].get("value")), body["user"]["id"]
    accepted, draft = await deps.db(lambda s: drafts.resolve(s, draft_id, user)) if draft_id else (False, None)
    if accepted:
        metrics.draft_outcome(draft, "resolved")
    else:
        metrics.events.labels(kind="draft", outcome="solved_refused").inc()
    text = render.SOLVED_THANKS if accepted else render.SOLVED_ONLY_ASKER if draft else render.already(None)
    await respond(text=text, response_type="ephemeral", replace_original=False)
