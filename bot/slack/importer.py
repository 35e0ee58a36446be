"""`ft import-slack`: every ✅-labelled reply in an export becomes an example, in one transaction."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from sqlmodel import Session, col, select

from bot.slack.export import Export, ReadLimits, load_export
from bot.slack.threads import Rules, Skipped, extract
from core.states import ChangeOutcome, ExampleSource, ExampleStatus
from storage import Store, audience
from storage.examples import (
    CREATED,
    DELETED_IN_SLACK,
    DUPLICATE,
    EXISTS,
    UPGRADED,
    NewExample,
    add_examples,
    edited_since,
    revise,
    withdraw_deleted,
)
from storage.models import Example


@dataclass
class ImportSummary:
    channels: list[str] = field(default_factory=list)
    messages: int = 0
    threads_seen: int = 0
    labels: int = 0
    imported: int = 0
    approved: int = 0
    candidates: int = 0
    upgraded: int = 0
    withdrawn: int = 0  # its reply or question is gone from Slack
    revised: int = 0  # its reply or question was edited in Slack: back to the curators
    flagged: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "flagged": dict(self.flagged), "skipped": dict(self.skipped)}


def import_slack_export(
    store: Store,
    path: Path | str,
    *,
    label_emoji: str,
    rules: Rules,
    channels: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    limits: ReadLimits | None = None,
) -> ImportSummary:
    export = load_export(path, channels, limits)
    names, bots = export.display_names(), export.bot_users()
    summary = ImportSummary(channels=[c["name"] for c in export.channels])
    summary.skipped.update(export.skipped)  # items not in Slack's shape: left out, each reason counted
    pending: list[NewExample] = []
    for channel in export.channels:
        messages = export.messages[channel["name"]]
        summary.messages += len(messages)
        threads: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in messages:
            threads[message.get("thread_ts") or message["ts"]].append(message)
        if progress:
            progress(f"#{channel['name']}: {len(messages)} messages")
        for thread in threads.values():
            if len(thread) > 1 or thread[0].get("reply_count"):
                summary.threads_seen += 1
            for message in thread:
                reactors = _label_reactors(message, label_emoji)
                if not reactors:
                    continue
                summary.labels += 1
                result = extract(thread, message["ts"], reactors, channel_id=channel.get("id") or channel["name"],
                                 channel_name=channel["name"], names=names, rules=rules, bots=bots,
                                 channel_kind=export.kind(channel))
                if isinstance(result, Skipped):
                    summary.skipped[result.reason] += 1
                else:
                    pending.append(result)

    with store.session() as session:  # one transaction: an error leaves nothing half-written
        for channel in export.channels:
            if channel.get("id"):
                audience.remember(session, channel["id"], export.kind(channel), channel["name"])
            _slack_changes(session, export, channel, names, rules, bots, summary)
        for outcome, example in add_examples(session, pending):
            if outcome == CREATED:
                summary.imported += 1
                if example.status == ExampleStatus.APPROVED:
                    summary.approved += 1
                else:
                    summary.candidates += 1
                for f in example.flags:
                    summary.flagged[f["code"]] += 1
            elif outcome == UPGRADED:
                summary.upgraded += 1
            elif outcome == EXISTS:
                summary.skipped["already imported"] += 1
            elif outcome == DUPLICATE:
                summary.skipped["duplicate of a stored pair"] += 1
    return summary


def _slack_changes(session: Session, export: Export, channel: dict[str, Any], names: dict[str, str], rules: Rules,
                   bots: frozenset[str], summary: ImportSummary) -> None:
    """Stored examples of this channel whose reply or question is gone from the export, or was edited after it was
    stored, change as they do live (bot.changes): withdrawn, or back to the curators with the new text. A message
    is gone only where the export covers its day (and the days around it): a date-ranged export deletes nothing."""
    messages = export.messages[channel["name"]]
    by_ts = {m["ts"]: m for m in messages}
    days = export.days.get(channel["name"], set())

    def covered(ts: str) -> bool:
        try:
            day = datetime.fromtimestamp(float(ts), timezone.utc).date()
        except (TypeError, ValueError, OverflowError):
            return False
        return all(str(day + timedelta(days=d)) in days for d in (-1, 0, 1))

    def gone(ts: str | None, root_present: bool = False) -> bool:
        message = by_ts.get(ts or "")
        if message is not None:
            return message.get("subtype") == "tombstone"
        return bool(ts) and (root_present or covered(ts))

    cid = channel.get("id") or channel["name"]
    for ex in session.exec(select(Example).where(col(Example.source_key).startswith(f"slack:{cid}:"))):
        if ex.source.get("kind") != ExampleSource.SLACK or any(f.get("code") == DELETED_IN_SLACK for f in ex.flags):
            continue
        answer_ts, root_ts = ex.source.get("ts"), ex.source.get("thread_ts")
        root_gone = gone(root_ts)
        if root_gone or gone(answer_ts, root_present=root_ts in by_ts):
            withdraw_deleted(session, ex, "question" if root_gone else "reply")
            summary.withdrawn += 1
            continue
        edits = [e for e in (edited_since(ex, by_ts[t]) for t in (answer_ts, root_ts) if t in by_ts) if e]
        if not edits:
            continue
        thread = [m for m in messages if (m.get("thread_ts") or m["ts"]) == root_ts]
        result = extract(thread, answer_ts, [], channel_id=cid, channel_name=channel["name"], names=names,
                         rules=rules, bots=bots)
        if isinstance(result, Skipped):
            withdraw_deleted(session, ex, "reply")
            summary.withdrawn += 1
        elif (revise(session, ex, result.question, result.answer, "message", max(edits, key=float))
              != ChangeOutcome.UNCHANGED):
            summary.revised += 1


def _label_reactors(message: dict[str, Any], label_emoji: str) -> list[str]:
    for reaction in message.get("reactions") or []:
        # Skin-tone variants ("white_check_mark::skin-tone-2") count as the same label.
        if reaction.get("name", "").split("::", 1)[0] == label_emoji:
            return list(reaction.get("users") or []) or ["unknown"]
    return []
