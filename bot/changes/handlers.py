"""Slack's own changes reach the store: a deleted or edited message behind an example (live; the import does the
same from an export, bot.importer).

- the labelled reply or the question (the thread's root) deleted: the example is withdrawn;
- one of them edited: the example goes back to the curators with the new text, read again from the thread.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.api import People, fetch_thread
from bot.slack.threads import Skipped, extract
from core.states import ChangeOutcome
from storage.examples import from_message, revise, withdraw_deleted

log = logging.getLogger("ftbot.bot")
CHANGED, DELETED = "message_changed", "message_deleted"


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    async def is_change(event) -> bool:
        return event.get("subtype") in (CHANGED, DELETED)

    # Only these subtypes: plain messages (subtype None) are other listeners' (DMs, watched channels).
    @app.event("message", matchers=[is_change])
    async def on_change(event, body, client):
        if await deps.first_delivery(body):
            deps.backlog.submit(handle, event, client)

    async def handle(event: dict, client) -> None:
        channel = event.get("channel")
        message = event.get("message") or {}
        if event.get("subtype") == DELETED:
            ts, deleted = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts"), True
        else:
            # A thread's root deleted while it has replies stays as a "tombstone": deleted, for us.
            ts, deleted = message.get("ts"), message.get("subtype") == "tombstone"
        if not channel or not ts:
            return
        found = await deps.db(lambda s: [(ex.id, ex.source_key, dict(ex.source))
                                         for ex in from_message(s, channel, ts)])
        for ex_id, key, source in found:
            which = "reply" if key.endswith(f":{ts}") else "question"
            if deleted:
                withdrawn = await deps.db(lambda s, ex_id=ex_id, which=which: _withdraw(s, ex_id, which))
                outcome = ChangeOutcome.WITHDRAWN if withdrawn else ChangeOutcome.UNCHANGED
            else:
                outcome = await _revise(deps, client, channel, ex_id, source, which, message)
            metrics.events.labels(kind=event["subtype"], outcome=outcome).inc()
            log.info("example %s: its %s was %s in Slack (%s)", ex_id, which,
                     "deleted" if deleted else "edited", outcome)


def _withdraw(session, ex_id: int, which: str) -> bool:
    from storage.models import Example

    ex = session.get(Example, ex_id, with_for_update=True)
    return ex is not None and withdraw_deleted(session, ex, which)


async def _revise(deps: Deps, client, channel: str, ex_id: int, source: dict, which: str,
                  message: dict) -> ChangeOutcome:
    """Read the thread again and extract the pair as a label would: the question keeps the asker's follow-ups."""
    from storage.models import Example

    answer_ts = source.get("ts")
    if not answer_ts:
        return ChangeOutcome.UNREADABLE
    try:
        thread = await fetch_thread(client, channel, answer_ts)
        people = People(client)
        await people.learn(thread)
    except SlackApiError as exc:
        log.warning("could not read an edited thread: %s", exc.response.get("error"))
        return ChangeOutcome.UNREADABLE
    result = extract(thread, answer_ts, [], channel_id=channel, channel_name=source.get("channel") or channel,
                     names=people.names, rules=deps.rules, bots=frozenset(people.bots))
    edited = (message.get("edited") or {}).get("ts") or message.get("ts")

    def apply(session) -> ChangeOutcome:
        ex = session.get(Example, ex_id, with_for_update=True)
        if ex is None:
            return ChangeOutcome.GONE
        if isinstance(result, Skipped):
            return ChangeOutcome.WITHDRAWN if withdraw_deleted(session, ex, which) else ChangeOutcome.UNCHANGED
        return revise(session, ex, result.question, result.answer, which, edited)

    return await deps.db(apply)


def register_fallback(app: AsyncApp) -> None:
    """The last "message" listener: acknowledges the channel messages no surface wants (the subscriptions that bring
    edits and deletions bring every message). Unhandled, Bolt would answer 404 and Slack would retry them."""

    @app.event("message")
    async def ignore(event) -> None:
        return None
