"""`ft import-slack`: every ✅-labelled reply in an export becomes an example, in one transaction."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bot.export import load_export
from bot.threads import Rules, Skipped, extract
from storage import Store
from storage.examples import CREATED, DUPLICATE, EXISTS, UPGRADED, NewExample, add_examples
from storage.models import ExampleStatus


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
) -> ImportSummary:
    export = load_export(path, channels)
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
        for root_ts, thread in threads.items():
            if len(thread) > 1 or thread[0].get("reply_count"):
                summary.threads_seen += 1
            for message in thread:
                reactors = _label_reactors(message, label_emoji)
                if not reactors:
                    continue
                summary.labels += 1
                result = extract(thread, message["ts"], reactors, channel_id=channel.get("id") or channel["name"],
                                 channel_name=channel["name"], names=names, rules=rules, bots=bots)
                if isinstance(result, Skipped):
                    summary.skipped[result.reason] += 1
                else:
                    pending.append(result)

    with store.session() as session:  # one transaction: an error leaves nothing half-written
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


def _label_reactors(message: dict[str, Any], label_emoji: str) -> list[str]:
    for reaction in message.get("reactions") or []:
        # Skin-tone variants ("white_check_mark::skin-tone-2") count as the same label.
        if reaction.get("name", "").split("::", 1)[0] == label_emoji:
            return list(reaction.get("users") or []) or ["unknown"]
    return []
