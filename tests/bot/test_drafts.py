"""Draft and auto mode through real Bolt over signed HTTP, against the fake Slack Web API and a stub model server:
modes and who may set them, one card per question, Send / Edit & send / Discard, a human reply superseding,
expiry, auto answers with hand-offs and "This solved it", and two agents racing to Send."""

import asyncio
import json

import pytest
from sqlmodel import select

from bot.drafts import flow as drafting
from core.states import DraftStatus, ExampleStatus
from storage import preferences
from storage.examples import NewExample, add_examples
from storage.models import ChannelChange, Draft, Example, Feedback, Preference, SlackChannel
from storage.snapshots import create_snapshot
from tests.bot.conftest import ADMIN, AGENT, ASKER, CURATOR, OTHER, settled

DRAFTS = "CDRAFTS"


async def _command(bot, text, user, channel="CSUP"):
    """The /ft reply: the ack's text, or what was sent to the response_url after an empty ack."""
    before = len(bot.slack.responses)
    status, body = await bot.send.command(text, user, channel=channel)
    assert status == 200
    if body.startswith("{"):
        return json.loads(body)["text"]
    reply = await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])
    return reply["text"]


async def _set_mode(bot, mode, extra=f"<#{DRAFTS}|support-drafts>"):
    return await _command(bot, f"channel mode {mode} {extra}".strip(), ADMIN)


def _message(text, ts, *, user=ASKER, channel="CSUP", **extra):
    return {"type": "message", "channel_type": "channel", "channel": channel, "user": user, "text": text, "ts": ts,
            "event_ts": ts, **extra}


async def _ask(bot, text, user=ASKER, **kw):
    ts = bot.slack.post("CSUP", user, text)
    status, _ = await bot.send.event(_message(text, ts, user=user), **kw)
    assert status == 200
    return ts


def _drafts(store):
    with store.session() as s:
        return list(s.exec(select(Draft).order_by(Draft.id)))


def _cards(bot):
    """The finished cards in the drafts channel, as they stand (a card is written in front of the team first)."""
    return [{**m, "channel": DRAFTS} for m in bot.slack.messages[DRAFTS]
            if m.get("bot_id") and not m.get("text", "").startswith("Drafting")]


def _closings(bot):
    """The card updates that close a card (its buttons give way to what happened), not those that write it."""
    return [u for u in bot.slack.calls_to("chat.update") if u["channel"] == DRAFTS and u.get("blocks")
            and not u.get("text", "").startswith("Drafting") and not any(b["type"] == "actions" for b in u["blocks"])]


def _in_thread(bot, ts):
    return [p for p in bot.slack.calls_to("chat.postMessage") if p["channel"] == "CSUP" and p.get("thread_ts") == ts]


def _buttons(message):
    return {e["action_id"]: e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def _card(bot, n=1):
    """The n-th finished card, once the question that wrote it is handled (its row records where the card is)."""
    await bot.slack.wait_for(lambda: len(_cards(bot)) >= n)
    await settled(bot)
    return _cards(bot)[n - 1]


def _edit_values(text):
    return {"text": {"value": {"type": "plain_text_input", "value": text}}}


def _reason_values(reason):
    return {"reason": {"value": {"type": "radio_buttons", "selected_option": {"value": reason}}}}


@pytest.fixture
async def drafting_bot(bot):
    bot.slack.channel(DRAFTS, "support-drafts")
    assert "now runs in *draft" in await _set_mode(bot, "draft")
    return bot


async def test_only_admins_set_a_mode_and_the_change_is_recorded(bot, store):
    assert "runs in *mention" in await _command(bot, "channel", OTHER)
    assert "Only admins" in await _command(bot, "channel mode draft <#CDRAFTS|support-drafts>", CURATOR)
    assert "need a drafts channel" in await _command(bot, "channel mode draft", ADMIN)
    assert "must be another channel" in await _command(bot, "channel mode draft <#CSUP|support>", ADMIN)
    assert "pick the channel from Slack" in await _command(bot, "channel mode draft #drafts", ADMIN)
    assert "no mode" in await _command(bot, "channel mode loud", ADMIN)
    with store.session() as s:  # nothing changed (the channel's kind is known now, its mode is not set)
        row = s.get(SlackChannel, "CSUP")
        assert (row.mode, row.drafts_channel, row.mode_set_by) == ("mention", None, None)
        assert list(s.exec(select(ChannelChange))) == []
    await _set_mode(bot, "draft")
    shown = await _command(bot, "channel", OTHER)
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
    event = _message("How long is the trial?", ts)
    await bot.send.event(event, event_id="EvQ1")
    card = await _card(bot)
    await bot.send.event(event, event_id="EvQ1", retry=1)  # Slack's retry
    await bot.send.event(event, event_id="EvQ1b")  # the same message delivered again under another id
    await settled(bot)
    assert len(_cards(bot)) == 1 and not _in_thread(bot, ts)
    shown = json.dumps(card["blocks"])
    assert "How long is the trial?" in shown and "The trial lasts 21 days." in shown
    assert "drafted by the base model base-model" in shown and "grounding: not checked" in shown
    [draft] = _drafts(store)
    assert _buttons(card) == {"draft_send": str(draft.id), "draft_edit": str(draft.id),
                              "draft_discard": str(draft.id)}
    assert (draft.status, draft.asker, draft.card_ts, draft.question) == (
        DraftStatus.PENDING, ASKER, card and bot.slack.messages[DRAFTS][0]["ts"], "How long is the trial?")
    assert draft.bot_response_at is not None and draft.prompt[-1]["content"] == "How long is the trial?"


async def test_the_teams_messages_bots_thread_replies_edits_and_joins_draft_nothing(drafting_bot, store):
    bot = drafting_bot
    for user in (AGENT, CURATOR, ADMIN):
        await _ask(bot, "Heads up: the release is tonight.", user=user)
    ts = bot.slack.post("CSUP", "UOTHERBOT", "Build passed")
    await bot.send.event(_message("Build passed", ts, user="UOTHERBOT", bot_id="BOTHER"))
    root = bot.slack.post("CSUP", OTHER, "an old thread")
    reply = bot.slack.post("CSUP", ASKER, "me too, how do I export?", thread_ts=root)
    await bot.send.event(_message("me too, how do I export?", reply, thread_ts=root))
    await bot.send.event(_message("", "1.1", subtype="channel_join"))
    await bot.send.event({**_message("edited", "1.2", subtype="message_changed"),
                          "message": {"text": "How do I export?", "user": ASKER, "ts": "1.0"}})
    await bot.send.event(_message("👍", bot.slack.post("CSUP", ASKER, "👍")))  # emoji only: no question
    await settled(bot)
    assert _drafts(store) == [] and _cards(bot) == [] and bot.model.requests == []


async def test_send_posts_once_and_a_paraphrase_gets_the_approved_answer_back_unasked(drafting_bot, store):
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever

    bot = drafting_bot
    try:
        bot.deps.retriever = Retriever(store, Embedder())
    except EmbedderError as exc:
        pytest.skip(str(exc))
    bot.model.answer = "Invoices are under Billing → Invoices → Export PDF."
    ts = await _ask(bot, "Where can I download my invoices as PDF?")
    card = await _card(bot)
    [draft] = _drafts(store)
    assert draft.declined  # nothing approved yet: the card offers Answer instead of Send
    assert set(_buttons(card)) == {"draft_answer", "draft_discard"}
    with store.session() as s:
        assert s.get(Feedback, draft.feedback_id).source["declined"]  # it waits in the curators' queue too

    # A curator answers it from the card: posted in the customer's thread, approved at once.
    await bot.send.action(CURATOR, "draft_answer", str(draft.id), channel=DRAFTS)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["callback_id"] == "draft_edit_modal"
    status, body = await bot.send.view_submission(CURATOR, "draft_edit_modal", _edit_values(
        "Billing → Invoices → Export PDF downloads every invoice."), private_metadata=str(draft.id))
    assert status == 200 and not body
    [sent] = await bot.slack.wait_for(lambda: _in_thread(bot, ts))
    assert "Export PDF downloads every invoice" in sent["text"] and f"Sent by <@{CURATOR}>" in json.dumps(sent)
    with store.session() as s:
        ex = s.exec(select(Example).where(Example.source_key == f"draft:{draft.id}")).one()
        assert (ex.status, ex.approved_by, ex.question) == (ExampleStatus.APPROVED, CURATOR,
                                                            "Where can I download my invoices as PDF?")
        sent_ts = ex.source["ts"]
        assert s.get(Feedback, draft.feedback_id).example_id == ex.id  # out of the curators' queue

    # The next customer's paraphrase gets the curator's answer back as its draft at once: the model is not asked,
    # and the card says whose approved answer it is, linked to where it was sent.
    asked_before = len(bot.model.requests)
    bot.model.answer = "Something the model would have made up."
    ts2 = await _ask(bot, "how do I get a PDF of my invoices?")
    card2 = await _card(bot, 2)
    assert len(bot.model.requests) == asked_before
    second = _drafts(store)[1]
    assert not second.declined and second.context == [f"draft:{draft.id}"]
    assert second.answer == "Billing → Invoices → Export PDF downloads every invoice."
    assert second.reused["example_id"] == ex.id and second.reused["approved_by"] == CURATOR
    shown = json.dumps(card2["blocks"], ensure_ascii=False)
    assert "Billing → Invoices → Export PDF downloads every invoice." in shown
    link = f"https://fake.slack.example/archives/CSUP/p{sent_ts.replace('.', '')}?thread_ts={ts}"
    assert f"The answer <@{CURATOR}> approved for <{link}|a similar question>" in shown
    assert "drafted by" not in shown
    await bot.send.action(AGENT, "draft_send", _buttons(card2)["draft_send"], channel=DRAFTS,
                          message={"ts": second.card_ts, "blocks": card2["blocks"]})
    [sent2] = await bot.slack.wait_for(lambda: _in_thread(bot, ts2))
    assert sent2["text"] == "Billing → Invoices → Export PDF downloads every invoice."
    await bot.slack.wait_for(lambda: _drafts(store)[1].status == DraftStatus.SENT)
    await bot.send.action(AGENT, "draft_send", str(second.id), channel=DRAFTS)  # a second click: too late
    await settled(bot)
    assert len(_in_thread(bot, ts2)) == 1
    assert "Too late" in bot.slack.responses[-1]["text"]
    second = _drafts(store)[1]
    assert (second.status, second.acted_by, second.edit_chars) == (DraftStatus.SENT, AGENT, 0)
    closed = [c for c in _closings(bot) if c["ts"] == second.card_ts][-1]
    assert "Sent unchanged by" in json.dumps(closed["blocks"]) and not _buttons(closed)
    with store.session() as s:  # an agent's send is a candidate for the curators, listed first in /ft review
        assert s.exec(select(Example.status).where(Example.source_key == f"draft:{second.id}")).one() == "candidate"
        add_examples(s, [NewExample("slack:CSUP:1.0", "An older candidate?", "Labelled with a ✅ earlier.")])
    from bot.curation.review import review_message

    listed = [b["block_id"] for b in (await review_message(bot.deps))["blocks"] if b["type"] == "actions"]
    assert listed[0] == f"example_{_drafts(store)[1].example_id}" and len(listed) == 2


async def test_two_agents_pressing_send_together_post_once(drafting_bot, store):
    bot = drafting_bot
    ts = await _ask(bot, "Can I change my plan mid-month?")
    await _card(bot)
    [draft] = _drafts(store)
    results = await asyncio.gather(*(bot.send.action(user, "draft_send", str(draft.id), channel=DRAFTS)
                                     for user in (AGENT, CURATOR, AGENT, CURATOR)))
    assert all(status == 200 for status, _ in results)
    await bot.slack.wait_for(lambda: len(bot.slack.responses) >= 4)  # the mode's reply, then three refusals
    await settled(bot)
    assert len(_in_thread(bot, ts)) == 1
    assert sum("Too late" in r["text"] or "right now" in r["text"] for r in bot.slack.responses) == 3
    with store.session() as s:
        assert len(list(s.exec(select(Example)))) == 1


async def test_edit_and_send_stores_the_edited_pair_and_a_preference_record(drafting_bot, store):
    bot = drafting_bot
    bot.model.answer = "The trial lasts 30 days."
    ts = await _ask(bot, "How long is the trial?")
    await _card(bot)
    [draft] = _drafts(store)
    await bot.send.action(AGENT, "draft_edit", str(draft.id), channel=DRAFTS)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["blocks"][1]["element"]["initial_value"] == "The trial lasts 30 days."
    status, body = await bot.send.view_submission(AGENT, "draft_edit_modal", _edit_values("   "),
                                                  private_metadata=str(draft.id))
    assert "can't be empty" in body  # the form says why, nothing is sent
    await bot.send.view_submission(AGENT, "draft_edit_modal", _edit_values("The trial lasts 21 days."),
                                   private_metadata=str(draft.id))
    [sent] = await bot.slack.wait_for(lambda: _in_thread(bot, ts))
    assert sent["text"] == "The trial lasts 21 days."
    [draft] = _drafts(store)
    assert (draft.status, draft.sent_text, draft.edit_chars) == (DraftStatus.EDITED, "The trial lasts 21 days.", 4)
    with store.session() as s:
        ex = s.exec(select(Example)).one()
        assert (ex.status, ex.answer, ex.labelled_by) == (ExampleStatus.CANDIDATE, "The trial lasts 21 days.", AGENT)
        [pref] = s.exec(select(Preference)).all()
    assert (pref.chosen, pref.rejected, pref.edited_by, pref.draft_id) == (
        "The trial lasts 21 days.", "The trial lasts 30 days.", AGENT, draft.id)
    assert pref.prompt == draft.prompt and pref.prompt[-1]["content"] == "How long is the trial?"
    # The form of a second agent, opened before, can no longer send.
    status, body = await bot.send.view_submission(CURATOR, "draft_edit_modal", _edit_values("Other text."),
                                                  private_metadata=str(draft.id))
    assert "Too late" in body and len(_in_thread(bot, ts)) == 1


async def test_a_private_channels_edit_trains_the_shared_adapter_only_once_marked_shareable(bot, store):
    """The edit is a record in the channel's audience; the shared snapshot leaves it out until an admin marks the
    channel shareable (`/ft channel share on`)."""
    bot.slack.channel("CSUP", "support", "private").channel(DRAFTS, "support-drafts")
    assert "now runs in *draft" in await _set_mode(bot, "draft")
    bot.model.answer = "The trial lasts 30 days."
    ts = await _ask(bot, "How long is the trial?")
    await _card(bot)
    [draft] = _drafts(store)
    await bot.send.view_submission(AGENT, "draft_edit_modal", _edit_values("The trial lasts 21 days."),
                                   private_metadata=str(draft.id))
    await bot.slack.wait_for(lambda: _in_thread(bot, ts))
    [pref] = _preferences(store)
    assert (pref.kind, pref.audience, pref.question) == ("edited", "private", "How long is the trial?")
    with store.session() as s:
        snap, _ = create_snapshot(s, val_percent=0)
    assert snap.n_preferences == 0
    before = len(bot.slack.responses)
    status, _ = await bot.send.command("channel share on", ADMIN, channel="CSUP")
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses) > before)
    with store.session() as s:
        snap, created = create_snapshot(s, val_percent=0)
        rows = preferences.snapshot_preferences(s, snap.id)
    assert created and [(r.preference_id, r.chosen, r.rejected) for r in rows] == [
        (pref.id, "The trial lasts 21 days.", "The trial lasts 30 days.")]


async def test_discard_records_its_reason(drafting_bot, store):
    bot = drafting_bot
    await _ask(bot, "lol wrong channel sorry")
    await _card(bot)
    [draft] = _drafts(store)
    await bot.send.action(AGENT, "draft_discard", str(draft.id), channel=DRAFTS)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["callback_id"] == "draft_discard_modal"
    _, body = await bot.send.view_submission(AGENT, "draft_discard_modal", _reason_values("bogus"),
                                             private_metadata=str(draft.id))
    assert "Pick a reason" in body
    status, body = await bot.send.view_submission(AGENT, "draft_discard_modal", _reason_values("not_a_question"),
                                                  private_metadata=str(draft.id))
    assert status == 200 and not body
    [draft] = _drafts(store)
    assert (draft.status, draft.discard_reason, draft.acted_by) == (DraftStatus.DISCARDED, "not_a_question", AGENT)
    update = await bot.slack.wait_for(lambda: _closings(bot))
    assert "Discarded by" in json.dumps(update[-1]["blocks"]) and "not a question" in json.dumps(update[-1]["blocks"])


async def _discarded(bot, store, question, reason):
    ts = await _ask(bot, question)
    await _card(bot, len(_drafts(store)))
    draft = _drafts(store)[-1]
    status, _ = await bot.send.view_submission(AGENT, "draft_discard_modal", _reason_values(reason),
                                               private_metadata=str(draft.id))
    assert status == 200
    return ts, draft


async def _team_reply(bot, ts, text, user=CURATOR):
    reply = bot.slack.post("CSUP", user, text, thread_ts=ts)
    await bot.send.event(_message(text, reply, user=user, thread_ts=ts))


async def test_a_draft_discarded_as_wrong_then_answered_by_the_team_is_a_preference_record(drafting_bot, store):
    bot = drafting_bot
    bot.model.answer = "Yes, the Android app is in the Play Store under Quillmate Pro."
    ts, draft = await _discarded(bot, store, "Is there an Android app?", "wrong")
    await _team_reply(bot, ts, f"<@{ASKER}> yes, search Ferryline in Google Play.")
    await bot.slack.wait_for(lambda: _preferences(store) and _preferences(store)[0].pair_key)
    [pref] = _preferences(store)
    with store.session() as s:
        ex = s.exec(select(Example)).one()
    assert (pref.kind, pref.chosen, pref.rejected, pref.edited_by, pref.asker) == (
        "discarded_then_answered", "yes, search Ferryline in Google Play.",
        "Yes, the Android app is in the Play Store under Quillmate Pro.", CURATOR, ASKER)
    assert (pref.question, pref.prompt, pref.draft_id) == ("Is there an Android app?", draft.prompt, draft.id)
    assert pref.prompt[-1]["content"] == "Is there an Android app?"
    assert (ex.answer, ex.status, pref.pair_key) == (pref.chosen, ExampleStatus.CANDIDATE, ex.source_key)
    # A later reply in the thread is conversation: the record stays the first answer's.
    await _team_reply(bot, ts, "Let us know if it works!")
    await settled(bot)
    assert [p.chosen for p in _preferences(store)] == ["yes, search Ferryline in Google Play."]
    assert _drafts(store)[0].status == DraftStatus.DISCARDED


async def test_a_draft_discarded_for_another_reason_then_answered_teaches_nothing(drafting_bot, store):
    bot = drafting_bot
    ts, _ = await _discarded(bot, store, "Is the old importer still there?", "outdated")
    await _team_reply(bot, ts, "It was retired in March; use the new one under Settings.")
    await settled(bot)
    assert _preferences(store) == [] and _drafts(store)[0].human_response_at is not None


def _preferences(store):
    with store.session() as s:
        return list(s.exec(select(Preference).order_by(Preference.id)))


async def test_only_the_team_acts_on_drafts(drafting_bot, store):
    bot = drafting_bot
    ts = await _ask(bot, "How do I reset my password?")
    await _card(bot)
    [draft] = _drafts(store)
    before = len(bot.slack.responses)
    for action in ("draft_send", "draft_edit", "draft_discard"):
        await bot.send.action(OTHER, action, str(draft.id), channel=DRAFTS)
    await bot.slack.wait_for(lambda: len(bot.slack.responses) >= before + 3)
    assert all("Only the support team" in r["text"] for r in bot.slack.responses[before:])
    _, body = await bot.send.view_submission(OTHER, "draft_edit_modal", _edit_values("hi"),
                                             private_metadata=str(draft.id))
    assert "Only the support team" in body
    assert not _in_thread(bot, ts) and _drafts(store)[0].status == DraftStatus.PENDING


async def test_a_human_reply_in_the_thread_supersedes_the_draft(drafting_bot, store):
    bot = drafting_bot
    ts = await _ask(bot, "Is there an Android app?")
    await _card(bot)
    reply = bot.slack.post("CSUP", AGENT, f"<@{ASKER}> yes, search Ferryline in Google Play.", thread_ts=ts)
    await bot.send.event(_message(f"<@{ASKER}> yes, search Ferryline in Google Play.", reply, user=AGENT,
                                  thread_ts=ts))
    update = await bot.slack.wait_for(lambda: _closings(bot))
    assert "Answered by hand" in json.dumps(update[-1]["blocks"])
    [draft] = _drafts(store)
    assert (draft.status, draft.acted_by, draft.human_response_at is not None) == (DraftStatus.SUPERSEDED, AGENT, True)
    with store.session() as s:
        ex = s.exec(select(Example)).one()
    assert (ex.question, ex.answer, ex.status) == ("Is there an Android app?", "yes, search Ferryline in Google Play.",
                                                   ExampleStatus.CANDIDATE)
    assert draft.example_id == ex.id
    await bot.send.action(AGENT, "draft_send", str(draft.id), channel=DRAFTS)  # the card's old button
    await settled(bot)
    assert _in_thread(bot, ts) == []


async def test_a_draft_nobody_acts_on_expires(drafting_bot, store):
    bot = drafting_bot
    await _ask(bot, "Do you have a status page?")
    await _card(bot)
    bot.deps.draft_ttl_h = 0.0
    [expired] = await drafting.sweep(bot.deps, bot.app.client, bot.metrics)
    assert expired.status == DraftStatus.EXPIRED and _drafts(store)[0].status == DraftStatus.EXPIRED
    update = await bot.slack.wait_for(lambda: _closings(bot))
    assert "Expired" in json.dumps(update[-1]["blocks"])


async def test_the_card_being_written_is_recorded_before_its_buttons_show(drafting_bot, store):
    # A click or an expiry the moment the buttons show must find the card to close (CI once expired a draft in the
    # instant between its finished card and the row that said where it was: the card kept its buttons).
    bot = drafting_bot
    bot.model.delay_s = 1.0
    await _ask(bot, "Do you have a status page?")
    [writing] = await bot.slack.wait_for(lambda: [m for m in bot.slack.messages[DRAFTS]
                                                  if m.get("text", "").startswith("Drafting")])
    await bot.slack.wait_for(lambda: _drafts(store) and _drafts(store)[0].card_ts)
    [draft] = _drafts(store)
    assert (draft.drafts_channel, draft.card_ts, draft.feedback_id) == (DRAFTS, writing["ts"], None)  # unanswered
    bot.deps.draft_ttl_h = 0.0
    assert await drafting.sweep(bot.deps, bot.app.client, bot.metrics) == []  # not expired while being written
    card = await _card(bot)
    assert card["ts"] == writing["ts"] and _drafts(store)[0].card_ts == card["ts"]


async def test_auto_mode_is_earned_or_confirmed_and_answers_or_hands_off(drafting_bot, store):
    bot = drafting_bot
    refused = await _set_mode(bot, "auto", "")
    assert "has not earned auto mode" in refused and "no drafts acted on yet" in refused
    assert "now runs in *auto" in await _set_mode(bot, "auto", "confirm")
    with store.session() as s:
        change = s.exec(select(ChannelChange).where(ChannelChange.new == "auto")).one()
    assert change.by == ADMIN and "confirmed below the bar" in change.note

    # Grounded enough (retrieval off here): the bot answers in the thread, with "This solved it".
    bot.model.answer = "The trial lasts 21 days."
    ts = await _ask(bot, "How long is the trial?")
    [answer] = await bot.slack.wait_for(lambda: _in_thread(bot, ts))
    [draft] = _drafts(store)
    assert draft.status == DraftStatus.ANSWERED and _cards(bot) == []
    assert _buttons(answer) == {"draft_solved": str(draft.id)}
    [feedback_buttons] = [e for b in answer["blocks"] if b["type"] == "context_actions" for e in b["elements"]]
    assert (feedback_buttons["positive_button"]["value"], feedback_buttons["negative_button"]["value"]) == (
        f"up:{draft.feedback_id}", f"down:{draft.feedback_id}")
    before = len(bot.slack.responses)
    await bot.send.action(OTHER, "draft_solved", str(draft.id))
    await bot.slack.wait_for(lambda: len(bot.slack.responses) >= before + 1)
    await bot.send.action(ASKER, "draft_solved", str(draft.id))
    await bot.slack.wait_for(lambda: len(bot.slack.responses) >= before + 2)
    assert "Only the person who asked" in bot.slack.responses[before]["text"]
    assert "Glad it helped" in bot.slack.responses[before + 1]["text"]
    draft = _drafts(store)[0]
    assert (draft.resolved_by, draft.bot_response_at is not None, draft.followed_up_at) == (ASKER, True, None)
    follow = bot.slack.post("CSUP", ASKER, "and can I extend it?", thread_ts=ts)
    await bot.send.event(_message("and can I extend it?", follow, thread_ts=ts))
    await bot.slack.wait_for(lambda: _drafts(store)[0].followed_up_at is not None)

    # The model says it does not know: the asker is told the team follows up, and the team gets a hand-off card.
    from core.prompt import DONT_KNOW

    bot.deps.retriever = _NothingClose()
    bot.model.answer = DONT_KNOW
    ts2 = await _ask(bot, "Can I pay in bitcoin?")
    [told] = await bot.slack.wait_for(lambda: _in_thread(bot, ts2))
    assert "passed your question to the support team" in told["text"]
    card = await _card(bot, 1)
    handoff = _drafts(store)[1]
    assert handoff.status == DraftStatus.HANDED_OFF and _buttons(card) == {"draft_answer": str(handoff.id)}
    await bot.send.view_submission(AGENT, "draft_edit_modal", _edit_values("No, cards and SEPA only."),
                                   private_metadata=str(handoff.id))
    await bot.slack.wait_for(lambda: len(_in_thread(bot, ts2)) == 2)
    handoff = _drafts(store)[1]
    assert (handoff.status, handoff.sent_text, handoff.acted_by) == (DraftStatus.HANDED_OFF,
                                                                     "No, cards and SEPA only.", AGENT)


class _NothingClose:
    """A retriever that finds no approved pair close enough (the grounding check then declines)."""

    def search(self, question, **_):
        return []


async def test_ft_stats_and_the_counters_reconcile_with_the_events_sent(drafting_bot, store, monkeypatch):
    from typer.testing import CliRunner

    from ftbot.cli.main import app

    bot = drafting_bot
    bot.model.answer = "The trial lasts 21 days."
    threads = [await _ask(bot, f"Question number {i}?", user=user) for i, user in
               enumerate((ASKER, OTHER, ASKER, OTHER, ASKER))]
    await bot.slack.wait_for(lambda: len(_cards(bot)) == 5)
    by_thread = {d.question_ts: d.id for d in _drafts(store)}
    ids = [by_thread[ts] for ts in threads]  # the drafts were made concurrently: their ids need not follow
    await bot.send.action(AGENT, "draft_send", str(ids[0]), channel=DRAFTS)  # sent unchanged
    await bot.send.view_submission(AGENT, "draft_edit_modal", _edit_values("The trial lasts 21 days, no card."),
                                   private_metadata=str(ids[1]))  # edited
    await bot.send.view_submission(CURATOR, "draft_discard_modal", _reason_values("wrong"),
                                   private_metadata=str(ids[2]))  # discarded
    reply = bot.slack.post("CSUP", AGENT, "Answered by hand.", thread_ts=threads[3])
    await bot.send.event(_message("Answered by hand.", reply, user=AGENT, thread_ts=threads[3]))  # superseded
    def statuses():
        by_id = {d.id: d.status for d in _drafts(store)}
        return [by_id[i] for i in ids]

    def counted(outcome):
        return bot.metrics.registry.get_sample_value("ftbot_draft_outcomes_total", {
            "channel": "CSUP", "mode": "draft", "outcome": outcome, "version": "base"}) or 0

    # The row changes before its outcome is counted (after the card is updated): wait for both.
    await bot.slack.wait_for(lambda: statuses()[:4] == ["sent", "edited", "discarded", "superseded"]
                             and counted("superseded") == 1)
    # ids[4] stays pending

    monkeypatch.setenv("FT_DATABASE_URL", store.url)
    result = CliRunner().invoke(app, ["stats", "--channel", "CSUP", "--json"])
    assert result.exit_code == 0, result.output
    [channel] = json.loads(result.stdout)["channels"]
    figures = channel["draft"]
    assert {k: figures[k] for k in ("questions", "sent", "edited", "discarded", "superseded", "pending",
                                    "acted_on")} == {"questions": 5, "sent": 1, "edited": 1, "discarded": 1,
                                                     "superseded": 1, "pending": 1, "acted_on": 4}
    assert figures["discarded_by_reason"]["wrong"] == 1 and figures["edit_chars_median"] == 9  # ", no card" inserted
    assert figures["sent_unchanged_share"] == 0.25

    assert [counted(o) for o in ("pending", "sent", "edited", "discarded", "superseded")] == [5, 1, 1, 1, 1]
    assert bot.metrics.registry.get_sample_value("ftbot_first_response_seconds_count", {"by": "human"}) == 3
    assert "sent unchanged" in (await _command(bot, "stats", OTHER)).lower()


async def test_when_the_model_server_fails_the_card_says_so_and_an_agent_can_answer(drafting_bot, store):
    bot = drafting_bot
    await bot.model.stop()  # the model server is down
    ts = await _ask(bot, "Is the app down?")
    card = await _card(bot)
    [draft] = _drafts(store)
    assert draft.status == DraftStatus.FAILED and "gave no answer" in json.dumps(card["blocks"])
    assert set(_buttons(card)) == {"draft_answer", "draft_discard"}
    await bot.send.view_submission(AGENT, "draft_edit_modal", _edit_values("No: everything is up, try again."),
                                   private_metadata=str(draft.id))
    [sent] = await bot.slack.wait_for(lambda: _in_thread(bot, ts))
    assert sent["text"] == "No: everything is up, try again."
    assert _drafts(store)[0].status == DraftStatus.EDITED
