"""Labelling by reaction: a ✅ on a reply in a thread stores the pair; removing it withdraws it."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.labelling import texts
from bot.metrics import BotMetrics
from bot.slack.api import People, fetch_thread
from bot.slack.post import tell
from bot.slack.threads import Skipped, extract, source_key
from core.states import WithdrawOutcome
from storage.examples import CREATED, DUPLICATE, UPGRADED, add_examples, withdraw

log = logging.getLogger("ftbot.bot")
ACK_REACTION = "inbox_tray"  # the bot's quiet "got it"


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    people: People | None = None

    def is_label(event: dict) -> bool:
        return (event.get("reaction", "").split("::", 1)[0] == deps.label_emoji
                and (event.get("item") or {}).get("type") == "message")

    @app.event("reaction_added")
    async def on_reaction_added(event, body, client):
        if is_label(event):
            deps.backlog.submit(label, event, body, client)

    @app.event("reaction_removed")
    async def on_reaction_removed(event, body, client):
        if is_label(event):
            deps.backlog.submit(unlabel, event, body, client)

    async def label(event, body, client) -> None:
        nonlocal people
        if not await deps.first_delivery(body):
            return
        channel, ts, reactor = event["item"]["channel"], event["item"]["ts"], event["user"]
        people = people or People(client)
        thread = await fetch_thread(client, channel, ts)
        await people.learn(thread)
        name, kind = await deps.channels.learn(client, channel, deps.db)
        result = extract(thread, ts, [reactor], channel_id=channel, channel_name=name,
                         names=people.names, rules=deps.rules, bots=frozenset(people.bots), channel_kind=kind)
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

    async def unlabel(event, body, client) -> None:
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
