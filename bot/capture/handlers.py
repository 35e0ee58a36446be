"""The shortcut's listeners, and the pair as the person edited it (`edited`: a pure rule)."""

from __future__ import annotations

import json
import logging

from slack_sdk.errors import SlackApiError

from bot.capture import render as capture
from bot.deps import Deps
from bot.slack.api import channel_name as lookup_channel_name
from bot.slack.post import tell
from bot.slack.threads import ASKER_ANSWER, BOT_MESSAGE, TOO_LONG, Rules, Skipped, read_pair, source_key
from core.states import ExampleSource, ExampleStatus
from storage.examples import NewExample, add_examples, flag

log = logging.getLogger("ftbot.bot")
SHORTCUT = "add_to_training"
# Flags about who wrote the reply still hold after the text is edited; the others are re-checked.
_SOURCE_FLAGS = (ASKER_ANSWER, BOT_MESSAGE)


async def _read(deps: Deps, client, channel: str, ts: str, user: str, channel_name: str) -> NewExample | Skipped:
    """The same extraction as a ✅ label, with the chosen message as the answer and `user` as reactor."""
    _, kind = await deps.channels.learn(client, channel, deps.db)
    return await read_pair(client, deps.people(client), channel, ts, [user], channel_name=channel_name,
                           rules=deps.rules, channel_kind=kind)


async def on_shortcut(ack, body, client, respond, context):
    await ack()
    deps, metrics = context["deps"], context["metrics"]
    user, channel, ts = body["user"]["id"], body["channel"]["id"], body["message"]["ts"]
    channel_name = body["channel"].get("name") or await lookup_channel_name(client, channel)
    try:
        result = await _read(deps, client, channel, ts, user, channel_name)
    except SlackApiError as exc:
        log.warning("shortcut could not read thread: %s", exc.response.get("error"))
        await respond(text=capture.CANNOT_READ, response_type="ephemeral")
        return
    if isinstance(result, Skipped):
        metrics.events.labels(kind="capture", outcome="skipped").inc()
        await respond(text=capture.skipped(result.reason), response_type="ephemeral")
        return
    view = capture.capture_modal(result.question, result.answer, channel=channel, ts=ts, channel_name=channel_name)
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:  # the trigger lives 3 s; a slow thread read can outlive it
        log.warning("could not open the capture form: %s", exc.response.get("error"))
        await respond(text=capture.FORM_TOO_SLOW, response_type="ephemeral")


async def on_submit(ack, body, view, client, context):
    deps, metrics = context["deps"], context["metrics"]
    question, answer = capture.submitted(view)
    errors = capture.field_errors(question, answer)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    user = body["user"]["id"]
    meta = json.loads(view.get("private_metadata") or "{}")
    channel, ts = meta["channel"], meta["ts"]
    channel_name = meta.get("channel_name") or channel
    try:
        # Read again rather than trust the form: who asked and who answered decide the flags.
        base = await _read(deps, client, channel, ts, user, channel_name)
    except SlackApiError:
        base = None  # the thread went away meanwhile; keep what the person submitted
    item = edited(base, question, answer, channel=channel, ts=ts, channel_name=channel_name, user=user,
                  rules=deps.rules)
    [(outcome, example)] = await deps.db(lambda s: add_examples(s, [item]))
    metrics.events.labels(kind="capture", outcome=outcome).inc()
    await tell(client, user, capture.stored(outcome, example, by_curator=deps.is_curator(user)), channel=channel,
               failed="could not tell the user about a capture")


def edited(base: NewExample | Skipped | None, question: str, answer: str, *, channel: str, ts: str,
           channel_name: str, user: str, rules: Rules) -> NewExample:
    """The pair as the person submitted it: approved only when a curator sends it and nothing is flagged."""
    extracted = base if isinstance(base, NewExample) else None
    flags = [f for f in extracted.flags if f["code"] in _SOURCE_FLAGS] if extracted else []
    if len(answer) > rules.max_answer_chars:
        flags.append(flag(TOO_LONG, f"the answer is {len(answer)} characters (limit {rules.max_answer_chars})"))
    source = dict(extracted.source) if extracted else {"kind": ExampleSource.SLACK, "channel": channel_name,
                                                       "channel_id": channel, "ts": ts}
    source["captured_by"] = "shortcut"
    approved = user in rules.curators and not flags
    return NewExample(
        source_key=source_key(channel, ts), question=question, answer=answer,
        status=ExampleStatus.APPROVED if approved else ExampleStatus.CANDIDATE, flags=flags, source=source,
        labelled_by=user, approved_by=user if approved else None,
        channel_id=channel, audience=extracted.audience if extracted else None,
    )
