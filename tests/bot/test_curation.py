"""Approve / Edit / Reject on the review list, Answer / Dismiss on the questions the bot could not answer: signed
block_actions and view submissions."""

import json

import pytest
from sqlmodel import select

from bot.curation.review import review_message
from core.states import ExampleStatus
from storage.examples import NewExample, add_examples, flag
from storage.models import Example
from tests.bot.conftest import ADMIN, AGENT, CURATOR, OTHER


def _seed(store, n=2, flags=()):
    items = [NewExample(source_key=f"slack:CSUP:{i}.0", question=f"Question {i}?", answer=f"Answer {i}.",
                        flags=list(flags) if i == 1 else [], labelled_by=AGENT, source={"channel": "support"})
             for i in range(1, n + 1)]
    with store.session() as s:
        return [ex.id for _, ex in add_examples(s, items)]


def _get(store, ex_id):
    with store.session() as s:
        return s.get(Example, ex_id)


async def _click(bot, user, action_id, ex_id):
    """Press a button; returns what the bot then sent to the message's response_url."""
    before = len(bot.slack.responses)
    status, body = await bot.send.action(user, action_id, str(ex_id))
    assert status == 200 and not body
    return await bot.slack.wait_for(lambda: len(bot.slack.responses) > before and bot.slack.responses[-1])


def _text(message):
    return message["text"] + "\n" + json.dumps(message.get("blocks") or [], ensure_ascii=False)


async def _submit_edit(bot, user, ex_id, question, answer, callback_id="example_edit_modal"):
    # Built here rather than with SlackSender.view_submission: Bolt needs `view.type`, which that omits.
    values = {"question": {"value": {"type": "plain_text_input", "value": question}},
              "answer": {"value": {"type": "plain_text_input", "value": answer}}}
    return await bot.send.interactive({
        "type": "view_submission", "user": {"id": user}, "trigger_id": "trig-submit",
        "view": {"id": "VSUB", "type": "modal", "callback_id": callback_id,
                 "private_metadata": str(ex_id), "state": {"values": values}}})


async def test_the_review_message_lists_the_oldest_candidates_with_their_buttons(bot, store):
    first, second = _seed(store, 2, flags=[flag("asker_answer", "the labelled reply was written by the asker")])
    message = await review_message(bot.deps, limit=1)
    shown = _text(message)
    assert "2 candidates waiting" in message["text"]
    assert "Question 1?" in shown and "Answer 1." in shown and "Question 2?" not in shown
    assert "written by the asker" in shown and f"<@{AGENT}>" in shown
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("example_approve", str(first)), ("example_edit", str(first)), ("example_reject", str(first))]


async def test_someone_who_is_not_a_curator_cannot_approve(bot, store):
    [ex_id] = _seed(store, 1)
    reply = await _click(bot, OTHER, "example_approve", ex_id)
    assert "Only curators can approve" in reply["text"]
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert _get(store, ex_id).status == ExampleStatus.CANDIDATE


async def test_a_curator_approves_and_the_list_refreshes(bot, store):
    first, second = _seed(store, 2)
    reply = await _click(bot, CURATOR, "example_approve", first)
    ex = _get(store, first)
    assert (ex.status, ex.approved_by) == (ExampleStatus.APPROVED, CURATOR)
    assert reply["replace_original"] is True
    shown = _text(reply)
    assert f"Approved example {first}" in shown and "Question 1?" not in shown and "Question 2?" in shown


async def test_an_admin_rejects_the_last_one_and_it_is_all_caught_up(bot, store):
    [ex_id] = _seed(store, 1)
    reply = await _click(bot, ADMIN, "example_reject", ex_id)
    assert _get(store, ex_id).status == ExampleStatus.REJECTED
    assert f"Rejected example {ex_id}" in reply["text"] and "All caught up" in reply["text"]


async def test_a_stale_click_says_so_and_changes_nothing(bot, store):
    [ex_id] = _seed(store, 1)
    await _click(bot, CURATOR, "example_approve", ex_id)
    reply = await _click(bot, ADMIN, "example_reject", ex_id)
    assert f"already approved by <@{CURATOR}>" in reply["text"]
    assert _get(store, ex_id).status == ExampleStatus.APPROVED

    reply = await _click(bot, CURATOR, "example_approve", 9999)
    assert "9999 no longer exists" in reply["text"]


async def test_a_curator_edits_then_saves_and_approves(bot, store):
    [ex_id] = _seed(store, 1)
    await bot.send.action(CURATOR, "example_edit", str(ex_id))
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = call["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("example_edit_modal", str(ex_id))
    assert view["submit"]["text"] == "Save and approve"
    inputs = {b["block_id"]: b["element"]["initial_value"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs == {"question": "Question 1?", "answer": "Answer 1."}

    status, body = await _submit_edit(bot, CURATOR, ex_id, "How do I reset 2FA?", "Settings → Security → Reset.")
    assert status == 200 and not body
    ex = _get(store, ex_id)
    assert (ex.question, ex.answer) == ("How do I reset 2FA?", "Settings → Security → Reset.")
    assert (ex.status, ex.approved_by) == (ExampleStatus.APPROVED, CURATOR)
    # The review list the Edit came from is replaced with the refreshed one.
    [reply] = await bot.slack.wait_for(lambda: bot.slack.responses)
    assert reply["replace_original"] is True and f"Saved and approved example {ex_id}" in _text(reply)


async def test_an_edit_form_refuses_empty_fields_clashes_and_non_curators(bot, store):
    first, second = _seed(store, 2)
    body = json.loads((await _submit_edit(bot, CURATOR, first, "", "Answer."))[1])
    assert body["response_action"] == "errors" and "question" in body["errors"]
    body = json.loads((await _submit_edit(bot, CURATOR, first, "Question 2?", "Answer 2."))[1])
    assert f"already stored as example {second}" in body["errors"]["answer"]
    body = json.loads((await _submit_edit(bot, OTHER, first, "Q?", "A."))[1])
    assert "Only curators can edit" in body["errors"]["answer"]
    ex = _get(store, first)
    assert (ex.question, ex.status) == ("Question 1?", ExampleStatus.CANDIDATE)


async def test_non_curators_cannot_open_the_edit_form(bot, store):
    [ex_id] = _seed(store, 1)
    reply = await _click(bot, OTHER, "example_edit", ex_id)
    assert "Only curators can edit" in reply["text"]
    assert not bot.slack.calls_to("views.open")


async def test_a_question_the_bot_declined_is_answered_by_a_curator_and_served_at_once(bot, store):
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever
    from storage import feedback

    try:
        bot.deps.retriever = Retriever(store, Embedder())
    except EmbedderError as exc:
        pytest.skip(str(exc))
    bot.model.answer = "Yes, we accept PayPal."
    root = bot.slack.post("CSUP", AGENT, "<@UFTBOT> can I pay with PayPal?")
    await bot.send.event({"type": "app_mention", "user": AGENT, "text": "<@UFTBOT> can I pay with PayPal?",
                          "channel": "CSUP", "ts": root, "event_ts": root})
    [post] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postMessage"))
    assert post["text"].startswith("I don&#x27;t know") or post["text"].startswith("I don't know")  # nothing backs it
    with store.session() as s:
        [waiting] = feedback.unanswered(s)

    message = await review_message(bot.deps)
    shown = _text(message)
    assert "1 question the bot could not answer" in message["text"] and "can I pay with PayPal?" in shown
    buttons = [(e["action_id"], e["value"]) for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [("unanswered_answer", str(waiting.id)), ("unanswered_dismiss", str(waiting.id))]

    reply = await _click(bot, OTHER, "unanswered_answer", waiting.id)
    assert "Only curators can answer questions" in reply["text"]
    await bot.send.action(CURATOR, "unanswered_answer", str(waiting.id))
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert (call["view"]["callback_id"], call["view"]["private_metadata"]) == ("unanswered_answer_modal",
                                                                              str(waiting.id))
    status, body = await _submit_edit(bot, CURATOR, waiting.id, "Can I pay with PayPal?",
                                      "No: we take cards and SEPA direct debit only.", "unanswered_answer_modal")
    assert status == 200 and not body
    [reply] = await bot.slack.wait_for(lambda: bot.slack.responses[-1:] if len(bot.slack.responses) > 1 else [])
    assert f"Answered question {waiting.id}" in _text(reply) and "All caught up" in _text(reply)
    with store.session() as s:
        ex = s.exec(select(Example).where(Example.source_key == f"feedback:{waiting.id}")).one()
        assert (ex.status, ex.approved_by) == (ExampleStatus.APPROVED, CURATOR)

    # The next customer asking it gets the curator's answer in front, and an answer stating it is sent.
    bot.model.answer = "No: we take cards and SEPA direct debit only."
    root = bot.slack.post("CSUP", AGENT, "<@UFTBOT> do you take PayPal?")
    await bot.send.event({"type": "app_mention", "user": AGENT, "text": "<@UFTBOT> do you take PayPal?",
                          "channel": "CSUP", "ts": root, "event_ts": root})
    # A team member's mention is streamed to them: the answer is the thread's message once the stream stops.
    [answer] = await bot.slack.wait_for(lambda: [m for m in bot.slack.messages["CSUP"] if m.get("thread_ts") == root
                                                 and m.get("bot_id") and not m.get("streaming")])
    assert "SEPA direct debit" in bot.model.requests[-1]["messages"][-1]["content"]
    assert answer["text"].startswith("No: we take cards")


async def test_a_curator_sets_a_question_aside(bot, store):
    from storage import feedback

    with store.session() as s:
        fb_id = feedback.record(s, question="hello?", answer="", user=AGENT, version_name=None, source={},
                                declined=True).id
    reply = await _click(bot, CURATOR, "unanswered_dismiss", fb_id)
    assert f"Set question {fb_id} aside" in _text(reply) and "All caught up" in _text(reply)
    with store.session() as s:
        assert feedback.unanswered(s) == [] and feedback.get(s, fb_id).source["dismissed_by"] == CURATOR
