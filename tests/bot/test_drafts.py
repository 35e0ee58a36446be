"""Draft mode through real Bolt over signed HTTP, against the fake Slack Web API and a stub model server: modes and
who may set them, one card per question written in front of the team, a card nobody acts on expiring, and a card
when the model server fails. What agents do with a card is test_draft_actions; auto mode is test_auto_mode."""

import json

from sqlmodel import select

from bot.drafts import flow as drafting
from core.states import DraftStatus
from storage.models import ChannelChange, SlackChannel
from tests.bot.conftest import ADMIN, AGENT, ASKER, CURATOR, OTHER, settled
from tests.bot.drafting import (
    DRAFTS,
    ask,
    buttons,
    closings,
    command,
    drafts_of,
    edit_values,
    finished_cards,
    in_thread,
    message_event,
    next_card,
    set_mode,
)


async def test_only_admins_set_a_mode_and_the_change_is_recorded(bot, store):
    assert "runs in *mention" in await command(bot, "channel", OTHER)
    assert "Only admins" in await command(bot, "channel mode draft <#CDRAFTS|support-drafts>", CURATOR)
    assert "need a drafts channel" in await command(bot, "channel mode draft", ADMIN)
    assert "must be another channel" in await command(bot, "channel mode draft <#CSUP|support>", ADMIN)
    assert "pick the channel from Slack" in await command(bot, "channel mode draft #drafts", ADMIN)
    assert "no mode" in await command(bot, "channel mode loud", ADMIN)
    with store.session() as s:  # nothing changed (the channel's kind is known now, its mode is not set)
        row = s.get(SlackChannel, "CSUP")
        assert (row.mode, row.drafts_channel, row.mode_set_by) == ("mention", None, None)
        assert list(s.exec(select(ChannelChange))) == []
    await set_mode(bot, "draft")
    shown = await command(bot, "channel", OTHER)
    assert "runs in *draft" in shown and f"<#{DRAFTS}>" in shown and "no drafts acted on yet" in shown
    with store.session() as s:
        row = s.get(SlackChannel, "CSUP")
        assert (row.mode, row.drafts_channel, row.mode_set_by) == ("draft", DRAFTS, ADMIN)
        changes = {(c.field, c.old, c.new, c.by) for c in s.exec(select(ChannelChange))}
    assert changes == {("mode", "mention", "draft", ADMIN), ("drafts_channel", None, DRAFTS, ADMIN)}


async def test_a_customer_question_gets_one_draft_card_and_nothing_in_the_channel(drafting_bot, store):
    bot = drafting_bot
    bot.model.answer = "The trial lasts 21 days."
    ts = bot.slack.post("CSUP", ASKER, "How long is the trial?")
    event = message_event("How long is the trial?", ts)
    await bot.send.event(event, event_id="EvQ1")
    card = await next_card(bot)
    await bot.send.event(event, event_id="EvQ1", retry=1)  # Slack's retry
    await bot.send.event(event, event_id="EvQ1b")  # the same message delivered again under another id
    await settled(bot)
    assert len(finished_cards(bot)) == 1 and not in_thread(bot, ts)
    shown = json.dumps(card["blocks"])
    assert "How long is the trial?" in shown and "The trial lasts 21 days." in shown
    assert "drafted by the base model base-model" in shown and "grounding: not checked" in shown
    [draft] = drafts_of(store)
    assert buttons(card) == {"draft_send": str(draft.id), "draft_edit": str(draft.id),
                              "draft_discard": str(draft.id)}
    assert (draft.status, draft.asker, draft.card_ts, draft.question) == (
        DraftStatus.PENDING, ASKER, card and bot.slack.messages[DRAFTS][0]["ts"], "How long is the trial?")
    assert draft.bot_response_at is not None and draft.prompt[-1]["content"] == "How long is the trial?"


async def test_the_teams_messages_bots_thread_replies_edits_and_joins_draft_nothing(drafting_bot, store):
    bot = drafting_bot
    for user in (AGENT, CURATOR, ADMIN):
        await ask(bot, "Heads up: the release is tonight.", user=user)
    ts = bot.slack.post("CSUP", "UOTHERBOT", "Build passed")
    await bot.send.event(message_event("Build passed", ts, user="UOTHERBOT", bot_id="BOTHER"))
    root = bot.slack.post("CSUP", OTHER, "an old thread")
    reply = bot.slack.post("CSUP", ASKER, "me too, how do I export?", thread_ts=root)
    await bot.send.event(message_event("me too, how do I export?", reply, thread_ts=root))
    await bot.send.event(message_event("", "1.1", subtype="channel_join"))
    await bot.send.event({**message_event("edited", "1.2", subtype="message_changed"),
                          "message": {"text": "How do I export?", "user": ASKER, "ts": "1.0"}})
    await bot.send.event(message_event("👍", bot.slack.post("CSUP", ASKER, "👍")))  # emoji only: no question
    await settled(bot)
    assert drafts_of(store) == [] and finished_cards(bot) == [] and bot.model.requests == []


async def test_a_draft_nobody_acts_on_expires(drafting_bot, store):
    bot = drafting_bot
    await ask(bot, "Do you have a status page?")
    await next_card(bot)
    bot.deps.draft_ttl_h = 0.0
    [expired] = await drafting.sweep(bot.deps, bot.app.client, bot.metrics)
    assert expired.status == DraftStatus.EXPIRED and drafts_of(store)[0].status == DraftStatus.EXPIRED
    update = await bot.slack.wait_for(lambda: closings(bot))
    assert "Expired" in json.dumps(update[-1]["blocks"])


async def test_the_card_being_written_is_recorded_before_its_buttons_show(drafting_bot, store):
    # A click or an expiry the moment the buttons show must find the card to close (CI once expired a draft in the
    # instant between its finished card and the row that said where it was: the card kept its buttons).
    bot = drafting_bot
    bot.model.delay_s = 1.0
    await ask(bot, "Do you have a status page?")
    [writing] = await bot.slack.wait_for(lambda: [m for m in bot.slack.messages[DRAFTS]
                                                  if m.get("text", "").startswith("Drafting")])
    await bot.slack.wait_for(lambda: drafts_of(store) and drafts_of(store)[0].card_ts)
    [draft] = drafts_of(store)
    assert (draft.drafts_channel, draft.card_ts, draft.feedback_id) == (DRAFTS, writing["ts"], None)  # unanswered
    bot.deps.draft_ttl_h = 0.0
    assert await drafting.sweep(bot.deps, bot.app.client, bot.metrics) == []  # not expired while being written
    card = await next_card(bot)
    assert card["ts"] == writing["ts"] and drafts_of(store)[0].card_ts == card["ts"]


async def test_when_the_model_server_fails_the_card_says_so_and_an_agent_can_answer(drafting_bot, store):
    bot = drafting_bot
    await bot.model.stop()  # the model server is down
    ts = await ask(bot, "Is the app down?")
    card = await next_card(bot)
    [draft] = drafts_of(store)
    assert draft.status == DraftStatus.FAILED and "gave no answer" in json.dumps(card["blocks"])
    assert set(buttons(card)) == {"draft_answer", "draft_discard"}
    await bot.send.view_submission(AGENT, "draft_edit_modal", edit_values("No: everything is up, try again."),
                                   private_metadata=str(draft.id))
    [sent] = await bot.slack.wait_for(lambda: in_thread(bot, ts))
    assert sent["text"] == "No: everything is up, try again."
    assert drafts_of(store)[0].status == DraftStatus.EDITED
