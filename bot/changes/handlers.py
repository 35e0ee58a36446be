"""The edit and deletion listeners: acked at once, the work queued on the backlog."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.threads import Skipped, read_pair
from core.states import ChangeOutcome
from storage.examples import apply_slack_edit, from_message, withdraw_deleted_id

log = logging.getLogger("ftbot.bot")
CHANGED, DELETED = "message_changed", "message_deleted"


async def is_change(event) -> bool:
    return event.get("subtype") in (CHANGED, DELETED)


async def on_change(event, body, client, context):
    deps = context["deps"]
    if await deps.first_delivery(body):
        deps.backlog.submit(handle, deps, context["metrics"], event, client)


async def ignore(event) -> None:
    return None


def changed_message(event: dict) -> tuple[str | None, bool]:
    """(the ts of the message the event is about, whether it is gone)."""
    if event.get("subtype") == DELETED:
        return event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts"), True
    # A thread's root deleted while it has replies stays as a "tombstone": deleted, for us.
    message = event.get("message") or {}
    return message.get("ts"), message.get("subtype") == "tombstone"


async def handle(deps: Deps, metrics: BotMetrics, event: dict, client) -> None:
    channel, message = event.get("channel"), event.get("message") or {}
    ts, deleted = changed_message(event)
    if not channel or not ts:
        return
    found = await deps.db(lambda s: [(ex.id, ex.source_key, dict(ex.source))
                                     for ex in from_message(s, channel, ts)])
    for ex_id, key, source in found:
        which = "reply" if key.endswith(f":{ts}") else "question"
        if deleted:
            withdrawn = await deps.db(lambda s, ex_id=ex_id, which=which: withdraw_deleted_id(s, ex_id, which))
            outcome = ChangeOutcome.WITHDRAWN if withdrawn else ChangeOutcome.UNCHANGED
        else:
            outcome = await _revise(deps, client, channel, ex_id, source, which, message)
        metrics.events.labels(kind=event["subtype"], outcome=outcome).inc()
        log.info("example %s: its %s was %s in Slack (%s)", ex_id, which, "deleted" if deleted else "edited",
                 outcome)


async def _revise(deps: Deps, client, channel: str, ex_id: int, source: dict, which: str,
                  message: dict) -> ChangeOutcome:
    """Read the thread again and extract the pair as a label would: the question keeps the asker's follow-ups."""
    answer_ts = source.get("ts")
    if not answer_ts:
        return ChangeOutcome.UNREADABLE
    try:
        result = await read_pair(client, deps.people(client), channel, answer_ts, [],
                                 channel_name=source.get("channel") or channel, rules=deps.rules)
    except SlackApiError as exc:
        log.warning("could not read an edited thread: %s", exc.response.get("error"))
        return ChangeOutcome.UNREADABLE
    pair = None if isinstance(result, Skipped) else (result.question, result.answer)
    edited = (message.get("edited") or {}).get("ts") or message.get("ts")
    return await deps.db(lambda s: apply_slack_edit(s, ex_id, pair, which, edited))
