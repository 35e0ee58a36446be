"""Who reads the model's words before the grounding check has judged them: streamed only to the asker or the team
(a team member's mention, the draft card), never to a channel's customers (their mention, auto mode), and each of
these decisions taken from the channel mode's row in core.modes. Over signed HTTP against the fake Slack."""

import dataclasses

import pytest

from core import modes
from core.states import ChannelMode, DraftStatus
from tests.bot.conftest import AGENT, ASKER
from tests.bot.drafting import DRAFTS, ask, drafts_of, next_card, set_mode

ANSWER = "The free trial lasts 21 days and needs no card; pick a plan from Settings when it ends."


def _mention(bot, user, text="<@UFTBOT> how long is the trial?"):
    ts = bot.slack.post("CSUP", user, text)
    return ts, {"type": "app_mention", "user": user, "text": text, "channel": "CSUP", "ts": ts, "event_ts": ts}


def _answers(bot, thread_ts):
    """The bot's messages in a thread of #support, as they stand (a stream stopped or not)."""
    return [m for m in bot.slack.messages["CSUP"] if m.get("thread_ts") == thread_ts and m.get("bot_id")]


def _streamed(bot, thread_ts=None):
    return [c for c in bot.slack.calls_to("chat.startStream") if thread_ts in (None, c["thread_ts"])]


def _with_retriever(bot, store):
    """Retrieval on, over a store with nothing approved: nothing backs an answer, so the check declines it."""
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever

    try:
        bot.deps.retriever = Retriever(store, Embedder())
    except EmbedderError as exc:
        pytest.skip(str(exc))


async def test_a_team_members_mention_is_streamed_to_them_and_a_customers_is_posted_checked(bot, store):
    bot.model.answer, bot.model.chunk_delay_s = ANSWER, 0.02
    ts, event = _mention(bot, AGENT)
    await bot.send.event(event)
    [answer] = await bot.slack.wait_for(lambda: [m for m in _answers(bot, ts) if not m.get("streaming")])
    [start] = _streamed(bot, ts)
    assert start["recipient_user_id"] == AGENT and answer["text"] == ANSWER
    assert any(b["type"] == "context_actions" for b in answer["blocks"])  # the feedback buttons under it

    ts, event = _mention(bot, ASKER)
    await bot.send.event(event)
    [answer] = await bot.slack.wait_for(lambda: _answers(bot, ts))
    assert not _streamed(bot, ts) and answer["text"] == ANSWER  # posted whole, once checked


async def test_a_declined_team_mention_leaves_none_of_its_text_in_the_channel(bot, store):
    _with_retriever(bot, store)
    bot.model.answer, bot.model.chunk_delay_s = ANSWER, 0.02
    ts, event = _mention(bot, AGENT)
    await bot.send.event(event)
    [answer] = await bot.slack.wait_for(lambda: [m for m in _answers(bot, ts) if not m.get("streaming")])
    assert _streamed(bot, ts), "the model's words were shown to the team member as they came"
    assert answer["text"].startswith("I don&#x27;t know") or answer["text"].startswith("I don't know")
    assert "21 days" not in "\n".join(bot.slack.shown_in("CSUP"))
    # Slack shows a stopped stream to everyone in the channel: the declined one was deleted unstopped.
    assert not bot.slack.calls_to("chat.stopStream") and bot.slack.calls_to("chat.delete")


async def test_a_customer_in_auto_mode_never_sees_unchecked_text(bot, store):
    bot.slack.channel(DRAFTS, "support-drafts")
    assert "now runs in *auto" in await set_mode(bot, "auto", f"<#{DRAFTS}|support-drafts> confirm")
    bot.model.answer, bot.model.chunk_delay_s = ANSWER, 0.02
    ts = await ask(bot, "How long is the trial?")
    [answer] = await bot.slack.wait_for(lambda: _answers(bot, ts))
    assert answer["text"] == ANSWER and not _streamed(bot)
    assert not [u for u in bot.slack.calls_to("chat.update") if u["channel"] == "CSUP"]  # posted whole, once

    _with_retriever(bot, store)  # now the check declines: the customer reads the hand-off, nothing of the answer
    ts = await ask(bot, "Do you sell hardware scanners?")
    await bot.slack.wait_for(lambda: len(drafts_of(store)) == 2 and drafts_of(store)[1].status == DraftStatus.HANDED_OFF
                             and _answers(bot, ts))
    assert "21 days" not in "\n".join(m["text"] for m in _answers(bot, ts)) and not _streamed(bot)


async def test_the_draft_card_is_written_in_front_of_the_team(bot, store):
    bot.slack.channel(DRAFTS, "support-drafts")
    assert "now runs in *draft" in await set_mode(bot, "draft")
    bot.model.answer, bot.model.chunk_delay_s = ANSWER, 0.05  # about a second and a half
    await ask(bot, "How long is the trial?")
    card = await next_card(bot)
    writing = [u for u in bot.slack.calls_to("chat.update") if u["ts"] == card["ts"] and u["text"].startswith(
        "Drafting")]
    assert writing, "the team saw the draft while it was written"
    partial = writing[0]["blocks"][1]["text"]["text"]
    assert "Drafting" in partial and ANSWER[:12] in partial and ANSWER not in partial
    [first] = [p for p in bot.slack.calls_to("chat.postMessage") if p["channel"] == DRAFTS]  # one card, updated
    assert first["text"].startswith("Drafting") and ANSWER in card["blocks"][1]["text"]["text"]
    # The card's ts is stored from its first line, and the first response's time once the finished card is in.
    [draft] = drafts_of(store)
    assert draft.card_ts == card["ts"] and draft.status == DraftStatus.PENDING and draft.bot_response_at


async def test_what_each_mode_does_comes_from_its_row(bot, store, monkeypatch):
    """Change the mention mode's row, and the bot follows it: no stream for the team, no answer to a customer."""
    row = modes.POLICIES[ChannelMode.MENTION]
    monkeypatch.setitem(modes.POLICIES, ChannelMode.MENTION,
                        dataclasses.replace(row, streams_team_mentions=False, answers_mentions_from_customers=False))
    bot.model.answer = ANSWER
    customer_ts, customer = _mention(bot, ASKER)
    await bot.send.event(customer)
    ts, event = _mention(bot, AGENT)
    await bot.send.event(event)
    [answer] = await bot.slack.wait_for(lambda: _answers(bot, ts))
    assert answer["text"] == ANSWER and not _streamed(bot)
    # The customer's mention was seen and left alone, as the changed row says.
    await bot.slack.wait_for(lambda: bot.metrics.registry.get_sample_value(
        "ftbot_slack_requests_total", {"kind": "mention", "outcome": "not answered in mention mode"}))
    assert not _answers(bot, customer_ts) and len(bot.model.requests) == 1
