"""What the team does with a draft card, through real Bolt over signed HTTP: Send (once, even when two agents press
it together), Edit & send, Discard with a reason, a human reply superseding the draft, who may act, and what each
teaches (candidates for the curators, preference records)."""

import asyncio
import json

import pytest
from sqlmodel import select

from core.states import DraftStatus, ExampleStatus
from storage import preferences
from storage.examples import NewExample, add_examples
from storage.models import Example, Feedback, Preference
from storage.snapshots import create_snapshot
from tests.bot.conftest import ADMIN, AGENT, ASKER, CURATOR, OTHER, settled
from tests.bot.drafting import (
    DRAFTS,
    ask,
    buttons,
    closings,
    drafts_of,
    edit_values,
    in_thread,
    message_event,
    next_card,
    reason_values,
    set_mode,
)


async def test_send_posts_once_and_a_paraphrase_gets_the_approved_answer_back_unasked(drafting_bot, store):
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever

    bot = drafting_bot
    try:
        bot.deps.retriever = Retriever(store, Embedder())
    except EmbedderError as exc:
        pytest.skip(str(exc))
    bot.model.answer = "Invoices are under Billing → Invoices → Export PDF."
    ts = await ask(bot, "Where can I download my invoices as PDF?")
    card = await next_card(bot)
    [draft] = drafts_of(store)
    assert draft.declined  # nothing approved yet: the card offers Answer instead of Send
    assert set(buttons(card)) == {"draft_answer", "draft_discard"}
    with store.session() as s:
        assert s.get(Feedback, draft.feedback_id).source["declined"]  # it waits in the curators' queue too

    # A curator answers it from the card: posted in the customer's thread, approved at once.
    await bot.send.action(CURATOR, "draft_answer", str(draft.id), channel=DRAFTS)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["callback_id"] == "draft_edit_modal"
    status, body = await bot.send.view_submission(CURATOR, "draft_edit_modal", edit_values(
        "Billing → Invoices → Export PDF downloads every invoice."), private_metadata=str(draft.id))
    assert status == 200 and not body
    [sent] = await bot.slack.wait_for(lambda: in_thread(bot, ts))
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
    ts2 = await ask(bot, "how do I get a PDF of my invoices?")
    card2 = await next_card(bot, 2)
    assert len(bot.model.requests) == asked_before
    second = drafts_of(store)[1]
    assert not second.declined and second.context == [f"draft:{draft.id}"]
    assert second.answer == "Billing → Invoices → Export PDF downloads every invoice."
    assert second.reused["example_id"] == ex.id and second.reused["approved_by"] == CURATOR
    shown = json.dumps(card2["blocks"], ensure_ascii=False)
    assert "Billing → Invoices → Export PDF downloads every invoice." in shown
    link = f"https://fake.slack.example/archives/CSUP/p{sent_ts.replace('.', '')}?thread_ts={ts}"
    assert f"The answer <@{CURATOR}> approved for <{link}|a similar question>" in shown
    assert "drafted by" not in shown
    await bot.send.action(AGENT, "draft_send", buttons(card2)["draft_send"], channel=DRAFTS,
                          message={"ts": second.card_ts, "blocks": card2["blocks"]})
    [sent2] = await bot.slack.wait_for(lambda: in_thread(bot, ts2))
    assert sent2["text"] == "Billing → Invoices → Export PDF downloads every invoice."
    await bot.slack.wait_for(lambda: drafts_of(store)[1].status == DraftStatus.SENT)
    await bot.send.action(AGENT, "draft_send", str(second.id), channel=DRAFTS)  # a second click: too late
    await settled(bot)
    assert len(in_thread(bot, ts2)) == 1
    assert "Too late" in bot.slack.responses[-1]["text"]
    second = drafts_of(store)[1]
    assert (second.status, second.acted_by, second.edit_chars) == (DraftStatus.SENT, AGENT, 0)
    closed = [c for c in closings(bot) if c["ts"] == second.card_ts][-1]
    assert "Sent unchanged by" in json.dumps(closed["blocks"]) and not buttons(closed)
    with store.session() as s:  # an agent's send is a candidate for the curators, listed first in /ft review
        assert s.exec(select(Example.status).where(Example.source_key == f"draft:{second.id}")).one() == "candidate"
        add_examples(s, [NewExample("slack:CSUP:1.0", "An older candidate?", "Labelled with a ✅ earlier.")])
    from bot.curation.review import review_message

    listed = [b["block_id"] for b in (await review_message(bot.deps))["blocks"] if b["type"] == "actions"]
    assert listed[0] == f"example_{drafts_of(store)[1].example_id}" and len(listed) == 2


async def test_two_agents_pressing_send_together_post_once(drafting_bot, store):
    bot = drafting_bot
    ts = await ask(bot, "Can I change my plan mid-month?")
    await next_card(bot)
    [draft] = drafts_of(store)
    results = await asyncio.gather(*(bot.send.action(user, "draft_send", str(draft.id), channel=DRAFTS)
                                     for user in (AGENT, CURATOR, AGENT, CURATOR)))
    assert all(status == 200 for status, _ in results)
    await bot.slack.wait_for(lambda: len(bot.slack.responses) >= 4)  # the mode's reply, then three refusals
    await settled(bot)
    assert len(in_thread(bot, ts)) == 1
    assert sum("Too late" in r["text"] or "right now" in r["text"] for r in bot.slack.responses) == 3
    with store.session() as s:
        assert len(list(s.exec(select(Example)))) == 1


async def test_edit_and_send_stores_the_edited_pair_and_a_preference_record(drafting_bot, store):
    bot = drafting_bot
    bot.model.answer = "The trial lasts 30 days."
    ts = await ask(bot, "How long is the trial?")
    await next_card(bot)
    [draft] = drafts_of(store)
    await bot.send.action(AGENT, "draft_edit", str(draft.id), channel=DRAFTS)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["blocks"][1]["element"]["initial_value"] == "The trial lasts 30 days."
    status, body = await bot.send.view_submission(AGENT, "draft_edit_modal", edit_values("   "),
                                                  private_metadata=str(draft.id))
    assert "can't be empty" in body  # the form says why, nothing is sent
    await bot.send.view_submission(AGENT, "draft_edit_modal", edit_values("The trial lasts 21 days."),
                                   private_metadata=str(draft.id))
    [sent] = await bot.slack.wait_for(lambda: in_thread(bot, ts))
    assert sent["text"] == "The trial lasts 21 days."
    [draft] = drafts_of(store)
    assert (draft.status, draft.sent_text, draft.edit_chars) == (DraftStatus.EDITED, "The trial lasts 21 days.", 4)
    with store.session() as s:
        ex = s.exec(select(Example)).one()
        assert (ex.status, ex.answer, ex.labelled_by) == (ExampleStatus.CANDIDATE, "The trial lasts 21 days.", AGENT)
        [pref] = s.exec(select(Preference)).all()
    assert (pref.chosen, pref.rejected, pref.edited_by, pref.draft_id) == (
        "The trial lasts 21 days.", "The trial lasts 30 days.", AGENT, draft.id)
    assert pref.prompt == draft.prompt and pref.prompt[-1]["content"] == "How long is the trial?"
    # The form of a second agent, opened before, can no longer send.
    status, body = await bot.send.view_submission(CURATOR, "draft_edit_modal", edit_values("Other text."),
                                                  private_metadata=str(draft.id))
    assert "Too late" in body and len(in_thread(bot, ts)) == 1


async def test_a_private_channels_edit_trains_the_shared_adapter_only_once_marked_shareable(bot, store):
    """The edit is a record in the channel's audience; the shared snapshot leaves it out until an admin marks the
    channel shareable (`/ft channel share on`)."""
    bot.slack.channel("CSUP", "support", "private").channel(DRAFTS, "support-drafts")
    assert "now runs in *draft" in await set_mode(bot, "draft")
    bot.model.answer = "The trial lasts 30 days."
    ts = await ask(bot, "How long is the trial?")
    await next_card(bot)
    [draft] = drafts_of(store)
    await bot.send.view_submission(AGENT, "draft_edit_modal", edit_values("The trial lasts 21 days."),
                                   private_metadata=str(draft.id))
    await bot.slack.wait_for(lambda: in_thread(bot, ts))
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
    await ask(bot, "lol wrong channel sorry")
    await next_card(bot)
    [draft] = drafts_of(store)
    await bot.send.action(AGENT, "draft_discard", str(draft.id), channel=DRAFTS)
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["callback_id"] == "draft_discard_modal"
    _, body = await bot.send.view_submission(AGENT, "draft_discard_modal", reason_values("bogus"),
                                             private_metadata=str(draft.id))
    assert "Pick a reason" in body
    status, body = await bot.send.view_submission(AGENT, "draft_discard_modal", reason_values("not_a_question"),
                                                  private_metadata=str(draft.id))
    assert status == 200 and not body
    [draft] = drafts_of(store)
    assert (draft.status, draft.discard_reason, draft.acted_by) == (DraftStatus.DISCARDED, "not_a_question", AGENT)
    update = await bot.slack.wait_for(lambda: closings(bot))
    assert "Discarded by" in json.dumps(update[-1]["blocks"]) and "not a question" in json.dumps(update[-1]["blocks"])


async def _discarded(bot, store, question, reason):
    ts = await ask(bot, question)
    await next_card(bot, len(drafts_of(store)))
    draft = drafts_of(store)[-1]
    status, _ = await bot.send.view_submission(AGENT, "draft_discard_modal", reason_values(reason),
                                               private_metadata=str(draft.id))
    assert status == 200
    return ts, draft


async def _team_reply(bot, ts, text, user=CURATOR):
    reply = bot.slack.post("CSUP", user, text, thread_ts=ts)
    await bot.send.event(message_event(text, reply, user=user, thread_ts=ts))


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
    assert drafts_of(store)[0].status == DraftStatus.DISCARDED


async def test_a_draft_discarded_for_another_reason_then_answered_teaches_nothing(drafting_bot, store):
    bot = drafting_bot
    ts, _ = await _discarded(bot, store, "Is the old importer still there?", "outdated")
    await _team_reply(bot, ts, "It was retired in March; use the new one under Settings.")
    await settled(bot)
    assert _preferences(store) == [] and drafts_of(store)[0].human_response_at is not None


def _preferences(store):
    with store.session() as s:
        return list(s.exec(select(Preference).order_by(Preference.id)))


async def test_only_the_team_acts_on_drafts(drafting_bot, store):
    bot = drafting_bot
    ts = await ask(bot, "How do I reset my password?")
    await next_card(bot)
    [draft] = drafts_of(store)
    before = len(bot.slack.responses)
    for action in ("draft_send", "draft_edit", "draft_discard"):
        await bot.send.action(OTHER, action, str(draft.id), channel=DRAFTS)
    await bot.slack.wait_for(lambda: len(bot.slack.responses) >= before + 3)
    assert all("Only the support team" in r["text"] for r in bot.slack.responses[before:])
    _, body = await bot.send.view_submission(OTHER, "draft_edit_modal", edit_values("hi"),
                                             private_metadata=str(draft.id))
    assert "Only the support team" in body
    assert not in_thread(bot, ts) and drafts_of(store)[0].status == DraftStatus.PENDING


async def test_a_human_reply_in_the_thread_supersedes_the_draft(drafting_bot, store):
    bot = drafting_bot
    ts = await ask(bot, "Is there an Android app?")
    await next_card(bot)
    reply = bot.slack.post("CSUP", AGENT, f"<@{ASKER}> yes, search Ferryline in Google Play.", thread_ts=ts)
    await bot.send.event(message_event(f"<@{ASKER}> yes, search Ferryline in Google Play.", reply, user=AGENT,
                                  thread_ts=ts))
    update = await bot.slack.wait_for(lambda: closings(bot))
    assert "Answered by hand" in json.dumps(update[-1]["blocks"])
    [draft] = drafts_of(store)
    assert (draft.status, draft.acted_by, draft.human_response_at is not None) == (DraftStatus.SUPERSEDED, AGENT, True)
    with store.session() as s:
        ex = s.exec(select(Example)).one()
    assert (ex.question, ex.answer, ex.status) == ("Is there an Android app?", "yes, search Ferryline in Google Play.",
                                                   ExampleStatus.CANDIDATE)
    assert draft.example_id == ex.id
    await bot.send.action(AGENT, "draft_send", str(draft.id), channel=DRAFTS)  # the card's old button
    await settled(bot)
    assert in_thread(bot, ts) == []
