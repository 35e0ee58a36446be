"""A Slack thread and a labelled reply → an example. One code path for export import and live ✅."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.slack.api import fetch_thread
from bot.slack.markup import strip_emoji, to_plain
from core.states import ExampleSource, ExampleStatus
from storage.examples import NewExample, flag

# Flag codes and the sentence a curator (or the reactor, in an ephemeral note) reads.
ASKER_ANSWER = "asker_answer"
EMPTY_ANSWER = "empty_answer"
TOO_LONG = "too_long"
BOT_MESSAGE = "bot_message"
EMPTY_QUESTION = "empty_question"


@dataclass
class Skipped:
    reason: str


@dataclass
class Rules:
    curators: frozenset[str]
    max_answer_chars: int = 4000


def source_key(channel_id: str, ts: str) -> str:
    return f"slack:{channel_id}:{ts}"


def is_bot(message: Mapping[str, Any]) -> bool:
    return message.get("subtype") == "bot_message" or bool(message.get("bot_id"))


def is_content(message: Mapping[str, Any]) -> bool:
    """Joins, topic changes and the like are not part of a conversation."""
    return message.get("subtype") in (None, "bot_message", "thread_broadcast", "file_share")


def extract(
    thread: list[Mapping[str, Any]],
    answer_ts: str,
    reactors: Iterable[str],
    *,
    channel_id: str,
    channel_name: str,
    names: Mapping[str, str],
    rules: Rules,
    bots: frozenset[str] = frozenset(),
    channel_kind: str | None = None,
) -> NewExample | Skipped:
    """question = the thread's root plus the asker's follow-ups before the answer; answer = the reply.
    channel_kind: who can read the channel (core.states.ChannelKind); None: what ftbot recorded for it."""
    by_ts = {m["ts"]: m for m in thread}
    answer = by_ts.get(answer_ts)
    if answer is None:
        return Skipped("labelled message not found")
    root_ts = answer.get("thread_ts") or answer_ts
    root = by_ts.get(root_ts)
    if root is None:
        return Skipped("thread root not available")
    if answer_ts == root_ts:
        return Skipped("label on the question, not on a reply")
    asker = root.get("user")
    parts = [root] + [
        m for m in sorted(thread, key=lambda m: float(m["ts"]))
        if float(root_ts) < float(m["ts"]) < float(answer_ts) and m.get("user") == asker and is_content(m)
    ]
    question = "\n".join(t for t in (to_plain(m.get("text", ""), names) for m in parts) if t)
    answer_text = _without_greeting_mention(answer.get("text", ""), asker, names)

    flags = []
    if answer.get("user") and answer.get("user") == asker:
        flags.append(flag(ASKER_ANSWER, "the labelled reply was written by the person who asked"))
    if is_bot(answer) or answer.get("user") in bots:
        flags.append(flag(BOT_MESSAGE, "the labelled reply was posted by a bot"))
    if not strip_emoji(answer_text):
        flags.append(flag(EMPTY_ANSWER, "the labelled reply is empty or only emoji"))
    if len(answer_text) > rules.max_answer_chars:
        flags.append(flag(TOO_LONG, f"the answer is {len(answer_text)} characters (limit {rules.max_answer_chars})"))
    if not strip_emoji(question):
        flags.append(flag(EMPTY_QUESTION, "the question is empty"))

    reactors = list(dict.fromkeys(reactors))
    curator = next((u for u in reactors if u in rules.curators), None)
    approved = curator is not None and not flags
    return NewExample(
        source_key=source_key(channel_id, answer_ts),
        question=question,
        answer=answer_text,
        status=ExampleStatus.APPROVED if approved else ExampleStatus.CANDIDATE,
        flags=flags,
        source={"kind": ExampleSource.SLACK, "channel": channel_name, "channel_id": channel_id, "thread_ts": root_ts,
                "ts": answer_ts, "asker": asker, "answerer": answer.get("user") or answer.get("bot_id")},
        labelled_by=curator or (reactors[0] if reactors else None),
        approved_by=curator if approved else None,
        channel_id=channel_id,
        audience=channel_kind,
    )


def _without_greeting_mention(text: str, asker: str | None, names: Mapping[str, str]) -> str:
    """Agents open with "<@asker> …": that addresses one customer and is no part of the answer."""
    text = text.lstrip()
    if asker and text.startswith(f"<@{asker}"):
        end = text.find(">")
        text = text[end + 1:].lstrip(" ,:")
    return to_plain(text, names)


async def read_pair(client, people, channel: str, answer_ts: str, reactors: Iterable[str], *, channel_name: str,
                    rules: Rules, channel_kind: str | None = None) -> NewExample | Skipped:
    """The one path from Slack to a pair (✅ label, shortcut, a reply that beat a draft, an edit): read the whole
    thread, learn who wrote in it (bot.slack.api.People), extract. Slack's refusals raise SlackApiError."""
    thread = await fetch_thread(client, channel, answer_ts)
    await people.learn(thread)
    return extract(thread, answer_ts, reactors, channel_id=channel, channel_name=channel_name, names=people.names,
                   rules=rules, bots=frozenset(people.bots), channel_kind=channel_kind)
