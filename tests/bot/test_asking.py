"""Asking the bot by @mention and DM, and 👍/👎 on its answers, over signed HTTP against fake Slack and a stub model."""

import json
import time

import pytest
from sqlmodel import select

from core.contract import ReuseSpec
from core.states import ExampleStatus, VersionStatus
from storage import feedback
from storage.models import Feedback, ModelVersion, Preference
from tests.bot.conftest import ASKER, OTHER, stored_examples

NEVER_REUSE = ReuseSpec(min_score=2.0)  # no cosine reaches it: the model writes every answer

UNAVAILABLE = "I couldn't get an answer from the model right now"


def _mention(text, ts, thread_ts=None, user=ASKER, channel="CSUP"):
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel, "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def _dm(text, ts, **extra):
    return {"type": "message", "channel_type": "im", "channel": "DASKER", "user": ASKER, "text": text,
            "ts": ts, "event_ts": ts, **extra}


def _feedback(store):
    with store.session() as s:
        return list(s.exec(select(Feedback).order_by(Feedback.id)))


async def _answer(bot):
    [post] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postMessage"))
    return post


def _context_line(post):
    [ctx] = [b for b in post["blocks"] if b["type"] == "context"]
    return ctx["elements"][0]["text"]


def _buttons(post):
    """Buttons by action id; Slack's feedback buttons as "feedback+" and "feedback-" (one element, two values)."""
    found = {e["action_id"]: e["value"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]}
    for block in post["blocks"]:
        for e in block.get("elements") or [] if block["type"] == "context_actions" else []:
            found[e["action_id"] + "+"], found[e["action_id"] + "-"] = (e["positive_button"]["value"],
                                                                        e["negative_button"]["value"])
    return found


async def test_a_mention_is_answered_in_the_thread_by_the_base_model(bot, store):
    bot.model.answer = "The trial lasts 21 days <no card>."
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how long is the trial?")
    status, _ = await bot.send.event(_mention("<@UFTBOT> how long is the trial?", root))
    assert status == 200
    post = await _answer(bot)
    assert post["channel"] == "CSUP" and post["thread_ts"] == root
    assert "The trial lasts 21 days &lt;no card&gt;." in json.dumps(post["blocks"], ensure_ascii=False)
    assert _context_line(post) == "Answered by the base model base-model · ftbot"
    [request] = bot.model.requests
    assert request["model"] == "base-model"
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][1] == {"role": "user", "content": "how long is the trial?"}
    [fb] = _feedback(store)
    assert (fb.question, fb.answer, fb.user, fb.rating, fb.version_name) == (
        "how long is the trial?", "The trial lasts 21 days <no card>.", ASKER, "none", None)
    assert fb.source["channel"] == "CSUP" and fb.source["thread_ts"] == root and fb.source["ts"] == root
    assert _buttons(post) == {"feedback+": f"up:{fb.id}", "feedback-": f"down:{fb.id}"}
    assert post["blocks"][0] == {"type": "markdown", "text": "The trial lasts 21 days &lt;no card&gt;."}


async def test_without_retrieval_a_refusal_cut_at_its_stop_sequence_is_sent_whole(bot, store):
    from core.prompt import DONT_KNOW, ECHO_STOPS, REFUSAL_STOP

    bot.model.answer = "I don't know:"  # what a server returns when asked with the refusal's stop sequence
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> do you sell scanners?")
    await bot.send.event(_mention("<@UFTBOT> do you sell scanners?", root))
    post = await _answer(bot)
    assert bot.model.requests[0]["stop"] == [REFUSAL_STOP, *ECHO_STOPS]
    assert DONT_KNOW.replace("'", "&#x27;") in post["text"] or DONT_KNOW in post["text"]


async def test_a_mention_inside_a_thread_is_answered_in_that_thread(bot, store):
    root = bot.slack.post("CSUP", ASKER, "Trial question")
    reply = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how long?", thread_ts=root)
    await bot.send.event(_mention("<@UFTBOT> how long?", reply, thread_ts=root))
    assert (await _answer(bot))["thread_ts"] == root


async def test_the_deployed_version_answers_and_is_named(bot, store):
    with store.session() as s:
        s.add(ModelVersion(name="support-v2", status=VersionStatus.DEPLOYED, base_model="base-model"))
    bot.model.adapters["support-v2"] = "/adapters/support-v2"
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> refund policy?")
    await bot.send.event(_mention("<@UFTBOT> refund policy?", root))
    post = await _answer(bot)
    assert [r["model"] for r in bot.model.requests] == ["support-v2"]
    assert _context_line(post) == "Answered by support-v2 · ftbot"
    assert _feedback(store)[0].version_name == "support-v2"


async def test_a_dm_is_answered(bot, store):
    ts = bot.slack.post("DASKER", ASKER, "Do you support SSO?")
    await bot.send.event(_dm("Do you support SSO?", ts))
    [stop] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.stopStream"))  # streamed (bot.agent)
    [start] = bot.slack.calls_to("chat.startStream")
    assert start["channel"] == "DASKER" and start["thread_ts"] == ts
    assert bot.slack.find("DASKER", stop["ts"])["text"] == "The trial lasts 21 days."
    assert bot.model.requests[0]["messages"][1]["content"] == "Do you support SSO?"


async def test_a_server_that_is_down_gets_a_plain_sentence_and_the_question_is_kept(bot, store):
    await bot.model.stop()
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> is the API down?")
    await bot.send.event(_mention("<@UFTBOT> is the API down?", root))
    post = await _answer(bot)
    assert post["thread_ts"] == root and post["text"].startswith(UNAVAILABLE) and not post.get("blocks")
    [fb] = _feedback(store)
    assert (fb.question, fb.answer, fb.rating) == ("is the API down?", "", "none")
    assert fb.source["error"]


async def test_a_slow_server_times_out_with_the_same_sentence(bot, store):
    bot.model.delay_s = 3.0  # more than answer_timeout_s (2 s)
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> slow?")
    started = time.monotonic()
    await bot.send.event(_mention("<@UFTBOT> slow?", root))
    post = await _answer(bot)
    assert post["text"].startswith(UNAVAILABLE) and time.monotonic() - started < 3.0
    [fb] = _feedback(store)
    assert fb.answer == "" and fb.source["error"]


async def test_an_empty_mention_gets_usage_and_asks_nothing(bot, store):
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT>")
    await bot.send.event(_mention("<@UFTBOT> ", root))
    post = await _answer(bot)
    assert "Ask me a question" in post["text"]
    assert not bot.model.requests and not _feedback(store)


async def test_the_bot_ignores_its_own_and_other_bots_messages_and_edits(bot, store):
    await bot.send.event(_dm("my own answer", "1.1", user="UFTBOT", bot_id="BFTBOT"))
    await bot.send.event(_dm("beep", "1.2", user="UOTHERBOT", bot_id="BOTHER", subtype="bot_message"))
    await bot.send.event(_dm("edited", "1.3", subtype="message_changed"))
    await bot.send.event(_mention("<@UFTBOT> hi from a bot", "1.4", user="UOTHERBOT") | {"bot_id": "BOTHER"})
    # A real question afterwards: once it is answered, the ignored ones have long been handled.
    await bot.send.event(_dm("Real question?", "1.5"))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.stopStream"))
    assert len(bot.model.requests) == 1 and len(bot.slack.calls_to("chat.startStream")) == 1
    assert [fb.question for fb in _feedback(store)] == ["Real question?"]


async def _answered(bot):
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how long is the trial?")
    await bot.send.event(_mention("<@UFTBOT> how long is the trial?", root))
    return _buttons(await _answer(bot))


async def test_thumbs_up_sets_the_rating_and_thanks_ephemerally(bot, store):
    buttons = await _answered(bot)
    status, body = await bot.send.action(OTHER, "feedback", buttons["feedback+"])
    assert status == 200 and not body
    [reply] = await bot.slack.wait_for(lambda: bot.slack.responses)
    assert reply["response_type"] == "ephemeral" and "Thanks" in reply["text"]
    [fb] = _feedback(store)
    assert fb.rating == "up" and fb.source["rated_by"] == OTHER


async def test_the_old_thumbs_buttons_of_earlier_answers_still_work(bot, store):
    await _answered(bot)
    [fb] = _feedback(store)
    await bot.send.action(OTHER, "feedback_down", str(fb.id))
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert call["view"]["private_metadata"] == str(fb.id)
    await bot.send.action(OTHER, "feedback_up", str(fb.id))
    await bot.slack.wait_for(lambda: bot.slack.responses)
    assert _feedback(store)[0].rating == "up"


async def _submit(bot, user, fb_id, correction):
    # Built here rather than with SlackSender.view_submission: Bolt needs `view.type`, which that omits.
    values = {"correction": {"value": {"type": "plain_text_input", "value": correction}}}
    return await bot.send.interactive({
        "type": "view_submission", "user": {"id": user}, "trigger_id": "trig-submit",
        "view": {"id": "VSUB", "type": "modal", "callback_id": "feedback_correction",
                 "private_metadata": str(fb_id), "state": {"values": values}}})


async def test_thumbs_down_and_a_correction_make_a_candidate_example(bot, store):
    bot.model.answer = "The trial lasts 7 days."
    buttons = await _answered(bot)
    await bot.send.action(OTHER, "feedback", buttons["feedback-"])
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    view = call["view"]
    assert view["callback_id"] == "feedback_correction" and buttons["feedback-"] == f"down:{view['private_metadata']}"
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["element"]["multiline"] and "initial_value" not in field["element"]

    status, body = await _submit(bot, OTHER, view["private_metadata"], "   ")
    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert not stored_examples(store) and _feedback(store)[0].rating == "none"

    status, body = await _submit(bot, OTHER, view["private_metadata"], "The trial lasts 21 days.")
    assert status == 200 and not body
    [note] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    assert note["user"] == OTHER and "candidate" in note["text"]
    [fb] = _feedback(store)
    [ex] = stored_examples(store)
    assert (fb.rating, fb.correction, fb.example_id) == ("down", "The trial lasts 21 days.", ex.id)
    assert (ex.question, ex.answer, ex.status, ex.labelled_by) == (
        "how long is the trial?", "The trial lasts 21 days.", ExampleStatus.CANDIDATE, OTHER)
    assert ex.source_key == f"feedback:{fb.id}" and ex.source["kind"] == "feedback"
    assert "version" in ex.source and ex.source["model_answer"] == "The trial lasts 7 days."


async def test_thumbs_down_and_a_correction_make_a_preference_record(bot, store):
    """The correction is preferred to the bot's answer; a plain answer's prompt is not stored, so the record keeps the
    question (a trainer builds the prompt from it). A second correction replaces the first."""
    bot.model.answer = "The trial lasts 7 days."
    buttons = await _answered(bot)
    fb_id = buttons["feedback-"].split(":")[1]
    for correction in ("The trial lasts 14 days.", "The trial lasts 21 days."):
        await bot.send.action(OTHER, "feedback", buttons["feedback-"])
        status, body = await _submit(bot, OTHER, fb_id, correction)
        assert status == 200 and not body
    with store.session() as s:
        [pref] = s.exec(select(Preference)).all()
    assert (pref.kind, pref.question, pref.prompt, pref.chosen, pref.rejected) == (
        "corrected", "how long is the trial?", [], "The trial lasts 21 days.", "The trial lasts 7 days.")
    assert (pref.feedback_id, pref.asker, pref.edited_by, pref.channel_id, pref.pair_key) == (
        int(fb_id), ASKER, OTHER, "CSUP", f"feedback:{fb_id}")


async def test_answer_question_without_a_thread_posts_in_the_channel(bot, store):
    # What `/ft ask` does: no thread to answer in, so a plain message in the command's channel.
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.asking.answer import answer_question
    from bot.metrics import BotMetrics

    client = AsyncWebClient(token="xoxb-test-token", base_url=bot.slack.api_url)
    metrics = BotMetrics()
    await answer_question(bot.deps, client, metrics, question="Is there a free trial?", user=ASKER,
                          channel="CSUP", thread_ts=None)
    post = await _answer(bot)
    assert post["channel"] == "CSUP" and "thread_ts" not in post
    assert _feedback(store)[0].source["thread_ts"] is None
    assert metrics.registry.get_sample_value("ftbot_answers_total", {"outcome": "ok"}) == 1


async def test_with_retrieval_the_nearest_approved_pairs_go_in_front_and_their_threads_are_linked(bot, store):
    from core.embedder import Embedder, EmbedderError
    from core.prompt import CONTEXT_HEADER, NO_CONTEXT
    from serving.retrieval import Retriever
    from storage.examples import NewExample, add_examples

    try:
        embedder = Embedder()
    except EmbedderError as exc:
        pytest.skip(str(exc))
    with store.session() as s:
        add_examples(s, [
            NewExample("slack:CSUP:1700000000.000200", "How long does the free trial last?", "The trial lasts 21 days.",
                       status=ExampleStatus.APPROVED, source={"kind": "slack", "channel": "support",
                                                             "channel_id": "CSUP", "ts": "1700000000.000200",
                                                             "thread_ts": "1700000000.000100"}),
            NewExample("slack:CSUP:1700000001.000200", "Can I export invoices as PDF?", "Yes: Invoices → Export.",
                       status=ExampleStatus.APPROVED)])
    bot.deps.retriever = Retriever(store, embedder)  # approved before the bot started: found without a rebuild
    bot.deps.reuse = NEVER_REUSE  # the model writes every answer here (an approved answer given as it is: below)

    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how many days is the trial?")
    await bot.send.event(_mention("<@UFTBOT> how many days is the trial?", root))
    post = await _answer(bot)
    user_turn = bot.model.requests[0]["messages"][-1]["content"]
    assert user_turn.startswith(CONTEXT_HEADER) and "A: The trial lasts 21 days." in user_turn
    assert "PDF" not in user_turn and user_turn.endswith("Question: how many days is the trial?")
    assert "/archives/CSUP/p1700000000000200?thread_ts=1700000000.000100|#support>" in _context_line(post)
    assert _feedback(store)[0].source["context"] == ["slack:CSUP:1700000000.000200"]

    # Nothing close: the model is told so (and was taught to say it does not know).
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> do you sell hardware scanners?")
    await bot.send.event(_mention("<@UFTBOT> do you sell hardware scanners?", root))
    await bot.slack.wait_for(lambda: len(bot.model.requests) == 2)
    assert bot.model.requests[1]["messages"][-1]["content"].startswith(NO_CONTEXT)
    # ... and whatever the model says then is not sent: the bot says it does not know, and the question waits
    # for a curator (/ft review, App Home).
    posts = await bot.slack.wait_for(lambda: len(bot.slack.calls_to("chat.postMessage")) == 2 and
                                     bot.slack.calls_to("chat.postMessage"))
    assert posts[1]["text"].startswith("I don&#x27;t know") or posts[1]["text"].startswith("I don't know")
    assert "drawn from" not in _context_line(posts[1])
    declined = _feedback(store)[1]
    assert declined.source["declined"] and declined.source["grounding"]["reason"] == "no_context"
    assert declined.source["model_answer"] == "The trial lasts 21 days."
    with store.session() as s:
        assert [r.id for r in feedback.unanswered(s)] == [declined.id]

    # A close pair, but the answer states what no retrieved approved answer says: not sent either.
    bot.model.answer = "The trial lasts 30 days."
    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how long can I try it?")
    await bot.send.event(_mention("<@UFTBOT> how long can I try it?", root))
    await bot.slack.wait_for(lambda: len(bot.slack.calls_to("chat.postMessage")) == 3)
    invented = _feedback(store)[2]
    assert invented.answer.startswith("I don't know") and invented.source["grounding"]["unsupported"] == ["#30"]


async def test_an_approved_answer_that_fits_is_given_as_it_is_in_a_mention_and_a_dm(bot, store):
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever
    from storage import audience
    from storage.examples import NewExample, add_examples

    try:
        embedder = Embedder()
    except EmbedderError as exc:
        pytest.skip(str(exc))
    with store.session() as s:
        audience.remember(s, "CSUP", "public", "support")
        [(_, ex)] = add_examples(s, [NewExample(
            "slack:CSUP:1700000000.000200", "How long does the free trial last?",
            "Hi Sam! The free trial lasts 21 days, no card needed.", status=ExampleStatus.APPROVED,
            approved_by="UCURATOR", source={"kind": "slack", "channel": "support", "channel_id": "CSUP",
                                            "ts": "1700000000.000200", "thread_ts": "1700000000.000100"})])
        ex_id = ex.id
    bot.deps.retriever = Retriever(store, embedder)
    link = "https://fake.slack.example/archives/CSUP/p1700000000000200?thread_ts=1700000000.000100"
    said = f"The answer <@UCURATOR> approved for <{link}|a similar question>"

    root = bot.slack.post("CSUP", ASKER, "<@UFTBOT> how long is the free trial?")
    await bot.send.event(_mention("<@UFTBOT> how long is the free trial?", root))
    post = await _answer(bot)
    assert post["text"] == "The free trial lasts 21 days, no card needed." and said in _context_line(post)
    assert "Answered by" not in _context_line(post)
    assert _feedback(store)[0].source["reused"]["example_id"] == ex_id

    # A DM is streamed (bot.agent): the approved answer is the streamed text, and the stream ends with the same line.
    ts = bot.slack.post("DASKER", ASKER, "How long is your free trial?")
    await bot.send.event(_dm("How long is your free trial?", ts))
    [stop] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.stopStream"))
    assert bot.slack.find("DASKER", stop["ts"])["text"] == "The free trial lasts 21 days, no card needed."
    assert said in json.dumps(stop["blocks"])
    assert bot.model.requests == []  # neither answer asked the model
