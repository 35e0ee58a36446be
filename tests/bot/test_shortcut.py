"""The "Add to training data" message shortcut and its form, over signed HTTP against the fake Slack."""

import json

from core.states import ExampleStatus
from tests.bot.conftest import AGENT, ASKER, CURATOR, OTHER, stored_examples


def _thread(slack):
    root = slack.post("CSUP", ASKER, "How do I export my invoices?")
    answer = slack.post("CSUP", AGENT, "<@UASKER> Go to *Billing → Invoices* and press Export.", thread_ts=root)
    return root, answer


async def _submit(bot, user, values, private_metadata, callback_id="add_to_training_modal"):
    # Built here rather than with SlackSender.view_submission: Bolt needs `view.type`, which that omits.
    return await bot.send.interactive({
        "type": "view_submission", "user": {"id": user}, "trigger_id": "trig-submit",
        "view": {"id": "VSUB", "type": "modal", "callback_id": callback_id, "private_metadata": private_metadata,
                 "state": {"values": values}}})


def _values(question, answer):
    return {"question": {"value": {"type": "plain_text_input", "value": question}},
            "answer": {"value": {"type": "plain_text_input", "value": answer}}}


async def _open_form(bot, user, answer_ts):
    message = bot.slack.find("CSUP", answer_ts)
    status, _ = await bot.send.message_shortcut(user, "add_to_training", "CSUP", message)
    assert status == 200
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    return call["view"]


def _initial(view, block_id):
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    assert block["element"]["type"] == "plain_text_input" and block["element"]["multiline"]
    return block["element"]["initial_value"]


async def test_the_shortcut_opens_a_form_prefilled_like_a_label(bot, store):
    _, answer = _thread(bot.slack)
    view = await _open_form(bot, OTHER, answer)
    assert view["callback_id"] == "add_to_training_modal"
    assert _initial(view, "question") == "How do I export my invoices?"
    assert _initial(view, "answer") == "Go to Billing → Invoices and press Export."
    assert json.loads(view["private_metadata"]) == {"channel": "CSUP", "ts": answer, "channel_name": "support"}
    assert not stored_examples(store)  # nothing is stored until the form is sent


async def test_a_curators_submission_is_stored_approved_with_their_edits(bot, store):
    _, answer = _thread(bot.slack)
    view = await _open_form(bot, CURATOR, answer)
    status, body = await _submit(
        bot, CURATOR, _values("How can I export invoices?", "Billing → Invoices → Export."), view["private_metadata"])
    assert status == 200 and not body  # an empty ack closes the form
    [note] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    [ex] = stored_examples(store)
    assert (ex.question, ex.answer) == ("How can I export invoices?", "Billing → Invoices → Export.")
    assert (ex.status, ex.labelled_by, ex.approved_by) == (ExampleStatus.APPROVED, CURATOR, CURATOR)
    assert ex.source_key == f"slack:CSUP:{answer}" and ex.source["answerer"] == AGENT
    assert note["user"] == CURATOR and note["channel"] == "CSUP" and "approved example" in note["text"]


async def test_anyone_elses_submission_is_a_candidate(bot, store):
    _, answer = _thread(bot.slack)
    view = await _open_form(bot, OTHER, answer)
    await _submit(bot, OTHER, _values("Q?", "A."), view["private_metadata"])
    [note] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    [ex] = stored_examples(store)
    assert (ex.status, ex.labelled_by, ex.approved_by) == (ExampleStatus.CANDIDATE, OTHER, None)
    assert "candidate" in note["text"] and "curator will review" in note["text"]


async def test_an_empty_field_keeps_the_form_open_with_a_message(bot, store):
    _, answer = _thread(bot.slack)
    meta = json.dumps({"channel": "CSUP", "ts": answer, "channel_name": "support"})
    status, body = await _submit(bot, CURATOR, _values("Q?", "   "), meta)
    assert status == 200
    reply = json.loads(body)
    assert reply["response_action"] == "errors"
    assert list(reply["errors"]) == ["answer"] and "can't be empty" in reply["errors"]["answer"]
    assert not stored_examples(store) and not bot.slack.calls_to("chat.postEphemeral")


async def test_a_flagged_reply_stays_a_candidate_even_from_a_curator(bot, store):
    root = bot.slack.post("CSUP", ASKER, "Can I pause my plan?")
    own = bot.slack.post("CSUP", ASKER, "Found it: Settings → Plan → Pause.", thread_ts=root)
    view = await _open_form(bot, CURATOR, own)
    await _submit(bot, CURATOR, _values("Can I pause my plan?", "Settings → Plan → Pause."),
                  view["private_metadata"])
    [note] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    [ex] = stored_examples(store)
    assert ex.status == ExampleStatus.CANDIDATE and ex.flags[0]["code"] == "asker_answer"
    assert "not approved" in note["text"] and "written by the person who asked" in note["text"]


async def test_sending_the_same_reply_twice_says_it_is_already_stored(bot, store):
    _, answer = _thread(bot.slack)
    view = await _open_form(bot, OTHER, answer)
    for n in (1, 2):  # one after the other, as a person would
        await _submit(bot, OTHER, _values("Q?", "A."), view["private_metadata"])
        await bot.slack.wait_for(lambda n=n: len(bot.slack.calls_to("chat.postEphemeral")) == n)
    notes = await bot.slack.wait_for(lambda: len(bot.slack.calls_to("chat.postEphemeral")) == 2
                                     and bot.slack.calls_to("chat.postEphemeral"))
    assert len(stored_examples(store)) == 1
    assert "already in the training data" in notes[1]["text"]


async def test_the_shortcut_on_the_question_itself_explains_and_opens_nothing(bot, store):
    root, _ = _thread(bot.slack)
    await bot.send.message_shortcut(OTHER, "add_to_training", "CSUP", bot.slack.find("CSUP", root))
    [reply] = await bot.slack.wait_for(lambda: bot.slack.responses)
    assert "reply that answers the question" in reply["text"] and reply["response_type"] == "ephemeral"
    assert not bot.slack.calls_to("views.open") and not stored_examples(store)
