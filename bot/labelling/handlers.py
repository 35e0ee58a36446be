"""The ✅ listeners: acked at once, the work queued on the backlog (reading a thread takes a few Slack calls)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.labelling import texts
from bot.labelling.rules import is_label
from bot.metrics import BotMetrics
from bot.slack.post import tell
from bot.slack.threads import Skipped, read_pair, source_key
from core.states import WithdrawOutcome
from storage.examples import CREATED, DUPLICATE, UPGRADED, add_examples, withdraw

log = logging.getLogger("ftbot.bot")
ACK_REACTION = "inbox_tray"  # the bot's quiet "got it"


async def on_reaction_added(event, body, client, context):
    deps = context["deps"]
    if is_label(event, deps.label_emoji):
        deps.backlog.submit(label, deps, context["metrics"], event, body, client)


async def on_reaction_removed(event, body, client, context):
    deps = context["deps"]
    if is_label(event, deps.label_emoji):
        deps.backlog.submit(unlabel, deps, context["metrics"], event, body, client)


async def label(deps: Deps, metrics: BotMetrics, event: dict, body: dict, client) -> None:
    if not await deps.first_delivery(body):
        return
    channel, ts, reactor = event["item"]["channel"], event["item"]["ts"], event["user"]
    name, kind = await deps.channels.learn(client, channel, deps.db)
    result = await read_pair(client, deps.people(client), channel, ts, [reactor], channel_name=name,
                             rules=deps.rules, channel_kind=kind)
    if isinstance(result, Skipped):
        metrics.events.labels(kind="label", outcome="skipped").inc()
        await _ephemeral(client, channel, reactor, texts.label_skipped(result.reason))
        return
    [(outcome, example)] = await deps.db(lambda s: add_examples(s, [result]))
    metrics.events.labels(kind="label", outcome=outcome).inc()
    if outcome == DUPLICATE:
        await _ephemeral(client, channel, reactor, texts.label_duplicate(example.id))
        return
    if outcome in (CREATED, UPGRADED):
        await _react(client, channel, ts)
    if example.flags and outcome == CREATED:
        await _ephemeral(client, channel, reactor, texts.label_flagged(example.flags))


async def unlabel(deps: Deps, metrics: BotMetrics, event: dict, body: dict, client) -> None:
    if not await deps.first_delivery(body):
        return
    channel, ts, user = event["item"]["channel"], event["item"]["ts"], event["user"]
    outcome = await deps.db(lambda s: withdraw(s, source_key(channel, ts), user))
    metrics.events.labels(kind="unlabel", outcome=outcome).inc()
    if outcome == WithdrawOutcome.WITHDRAWN:
        try:
            await client.reactions_remove(channel=channel, timestamp=ts, name=ACK_REACTION)
        except SlackApiError:
            pass
    elif outcome == WithdrawOutcome.IN_SNAPSHOT:
        await _ephemeral(client, channel, user, texts.UNLABEL_TOO_LATE)


async def _react(client, channel: str, ts: str) -> None:
    try:
        await client.reactions_add(channel=channel, timestamp=ts, name=ACK_REACTION)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_reacted":
            log.warning("could not acknowledge a label: %s", exc.response.get("error"))


async def _ephemeral(client, channel: str, user: str, text: str) -> None:
    await tell(client, user, text, channel=channel, dm=False, failed="could not send an ephemeral note")
