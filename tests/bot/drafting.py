"""What the draft-mode tests do and look at: the /ft reply, a customer's question as Slack delivers it, the drafts
stored, the cards in the drafts channel (finished, closed) and the replies in the customer's thread. The bot with a
channel in draft mode is conftest's `drafting_bot`."""

import json

from sqlmodel import select

from storage.models import Draft
from tests.bot.conftest import ADMIN, ASKER, settled

DRAFTS = "CDRAFTS"


async def command(bot, text, user, channel="CSUP"):
    """The /ft reply: the ack's text, or what was sent to the response_url after an empty ack."""
    before = len(bot.slack.responses)
    status, body = await bot.send.command(text, user, channel=channel)
    assert status == 200
    if body.startswith("{"):
        return json.loads(body)["text"]
    reply = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    return reply["text"]


async def set_mode(bot, mode, extra=f"<#{DRAFTS}|support-drafts>"):
    return await command(bot, f"channel mode {mode} {extra}".strip(), ADMIN)


def message_event(text, ts, *, user=ASKER, channel="CSUP", **extra):
    return {"type": "message", "channel_type": "channel", "channel": channel, "user": user, "text": text, "ts": ts,
            "event_ts": ts, **extra}


async def ask(bot, text, user=ASKER, **kw):
    ts = bot.slack.post("CSUP", user, text)
    status, _ = await bot.send.event(message_event(text, ts, user=user), **kw)
    assert status == 200
    return ts


def drafts_of(store):
    with store.session() as s:
        return list(s.exec(select(Draft).order_by(Draft.id)))


def finished_cards(bot):
    """The finished cards in the drafts channel, as they stand (a card is written in front of the team first)."""
    return [{**m, "channel": DRAFTS} for m in bot.slack.messages[DRAFTS]
            if m.get("bot_id") and not m.get("text", "").startswith("Drafting")]


def closings(bot):
    """The card updates that close a card (its buttons give way to what happened), not those that write it."""
    return [u for u in bot.slack.calls_to("chat.update") if u["channel"] == DRAFTS and u.get("blocks")
            and not u.get("text", "").startswith("Drafting") and not any(b["type"] == "actions" for b in u["blocks"])]


def in_thread(bot, ts):
    return [p for p in bot.slack.calls_to("chat.postMessage") if p["channel"] == "CSUP" and p.get("thread_ts") == ts]


def buttons(message):
    return {e["action_id"]: e["value"] for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]}


async def next_card(bot, n=1):
    """The n-th finished card, once the question that wrote it is handled (its row records where the card is)."""
    await bot.slack.wait_for(lambda: len(finished_cards(bot)) >= n)
    await settled(bot)
    return finished_cards(bot)[n - 1]


def edit_values(text):
    return {"text": {"value": {"type": "plain_text_input", "value": text}}}


def reason_values(reason):
    return {"reason": {"value": {"type": "radio_buttons", "selected_option": {"value": reason}}}}
