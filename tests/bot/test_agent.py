"""The agent view (bot.agent): a question answered with a status at once, the answer streamed as it is written, the
grounding check's verdict on the whole of it, feedback buttons, suggested prompts that honour the audience rule.
Over signed HTTP against the fake Slack and the stub model server (which streams when asked)."""

import time

import pytest
from sqlmodel import select

from core.states import ExampleStatus
from storage import audience, feedback
from storage.examples import NewExample, add_examples
from storage.models import Feedback
from tests.bot.conftest import ASKER, OTHER

ANSWER = ("The free trial lasts 21 days and needs no card. After it ends, your workspace keeps every document, "
          "and you can pick a plan from Settings at any time.")
UNAVAILABLE = "I couldn't get an answer from the model right now"


def _question(text, ts, thread_ts="1700000000.000100"):
    """A message in the agent view: a thread in the app's DM."""
    event = {"type": "message", "channel_type": "im", "channel": "DASKER", "user": ASKER, "text": text, "ts": ts,
             "event_ts": ts}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def _feedback(store):
    with store.session() as s:
        return list(s.exec(select(Feedback).order_by(Feedback.id)))


def _bot_messages(bot):
    return [m for m in bot.slack.messages["DASKER"] if m.get("bot_id")]


async def _ask_slowly(bot, text="How long is the trial?"):
    """The stub streams ANSWER in 4-character pieces, 50 ms apart (about two seconds in all). The bot under test gives
    up on the model after 2 s (tests/bot/conftest.py): here it waits 10 s, so that a busy machine (two test processes
    and their job processes) does not turn a slow stream into a timeout these tests are not about."""
    bot.model.answer, bot.model.chunk_delay_s = ANSWER, 0.05
    bot.deps.answer_timeout_s = 10.0
    ts = bot.slack.post("DASKER", ASKER, text, thread_ts="1700000000.000100")
    sent = time.perf_counter()
    status, _ = await bot.send.event(_question(text, ts))
    assert status == 200
    return sent


async def test_the_status_comes_first_and_the_answer_streams_in_batches(bot, store):
    sent = await _ask_slowly(bot)
    [stop] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.stopStream"))
    status_at = bot.slack.first_call("assistant.threads.setStatus")
    first_words_at = bot.slack.first_call("chat.startStream")
    assert status_at - sent < 0.5 and status_at < first_words_at
    [status, *_] = bot.slack.calls_to("assistant.threads.setStatus")
    assert (status["channel_id"], status["thread_ts"]) == ("DASKER", "1700000000.000100")
    assert status["status"] and len(status["loading_messages"]) == 2
    [title] = bot.slack.calls_to("assistant.threads.setTitle")
    assert title["title"] == "How long is the trial?"
    [start] = bot.slack.calls_to("chat.startStream")
    assert start["thread_ts"] == "1700000000.000100" and start["recipient_user_id"] == ASKER
    appends = bot.slack.calls_to("chat.appendStream")
    assert len(appends) >= 2 and len(appends) < len(ANSWER) // 8  # batched, not one call per piece
    [message] = _bot_messages(bot)
    assert message["text"] == ANSWER and not message["streaming"]
    assert [b["type"] for b in stop["blocks"]] == ["context", "context_actions"]
    [fb] = _feedback(store)
    assert (fb.question, fb.answer, fb.user) == ("How long is the trial?", ANSWER, ASKER)
    assert fb.source["channel"] == "DASKER" and fb.source["thread_ts"] == "1700000000.000100"


async def test_a_plain_dm_is_answered_in_its_own_thread(bot, store):
    ts = bot.slack.post("DASKER", ASKER, "Is there a trial?")
    await bot.send.event(_question("Is there a trial?", ts, thread_ts=None))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.stopStream"))
    [status, *_] = bot.slack.calls_to("assistant.threads.setStatus")
    assert status["thread_ts"] == ts and bot.slack.calls_to("chat.startStream")[0]["thread_ts"] == ts


async def test_the_feedback_buttons_rate_and_open_the_correction_form(bot, store):
    await _ask_slowly(bot)
    [stop] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.stopStream"))
    [buttons] = [e for b in stop["blocks"] if b["type"] == "context_actions" for e in b["elements"]]
    assert buttons["type"] == "feedback_buttons"
    [fb] = _feedback(store)
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (f"up:{fb.id}",
                                                                                          f"down:{fb.id}")
    await bot.send.action(OTHER, buttons["action_id"], buttons["negative_button"]["value"], channel="DASKER")
    [form] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.open"))
    assert form["view"]["callback_id"] == "feedback_correction" and form["view"]["private_metadata"] == str(fb.id)
    await bot.send.action(ASKER, buttons["action_id"], buttons["positive_button"]["value"], channel="DASKER")
    [thanks] = await bot.slack.wait_for(lambda: bot.slack.responses)
    assert "Thanks" in thanks["text"] and _feedback(store)[0].rating == "up"


@pytest.mark.parametrize("limit", [("stream_ttl_s", 0.2), ("stream_max_chars", 50)], ids=["expired", "too_long"])
async def test_a_stream_slack_ends_midway_loses_no_text(bot, store, limit):
    setattr(bot.slack, *limit)
    await _ask_slowly(bot)
    await bot.slack.wait_for(lambda: len(_bot_messages(bot)) == 2 and _bot_messages(bot)[1].get("blocks"))
    streamed, rest = _bot_messages(bot)
    [body] = [b["text"] for b in rest["blocks"] if b["type"] == "markdown"]
    assert streamed["text"] and streamed["text"] + body == ANSWER
    assert rest["thread_ts"] == "1700000000.000100"
    assert {b["type"] for b in rest["blocks"]} == {"markdown", "context", "context_actions"}


async def test_a_declined_answer_leaves_none_of_its_text_visible(bot, store):
    from core.embedder import Embedder, EmbedderError
    from serving.retrieval import Retriever

    try:
        bot.deps.retriever = Retriever(store, Embedder())  # nothing approved: nothing close, so the check declines
    except EmbedderError as exc:
        pytest.skip(str(exc))
    await _ask_slowly(bot, "Do you sell hardware scanners?")
    await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.update"))
    assert bot.slack.calls_to("chat.startStream")  # the model's text was shown while it was written
    [message] = _bot_messages(bot)
    assert message["text"].startswith("I don&#x27;t know") or message["text"].startswith("I don't know")
    shown = "\n".join(bot.slack.shown_in("DASKER"))
    assert "21 days" not in shown and "no card" not in shown
    [fb] = _feedback(store)
    assert fb.source["declined"] and fb.source["model_answer"] == ANSWER


async def test_a_model_server_that_is_down_clears_the_status_and_says_so(bot, store):
    await bot.model.stop()
    ts = bot.slack.post("DASKER", ASKER, "Is the API down?", thread_ts="1700000000.000100")
    await bot.send.event(_question("Is the API down?", ts))
    [post] = await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postMessage"))
    assert post["text"].startswith(UNAVAILABLE) and post["thread_ts"] == "1700000000.000100"
    statuses = await bot.slack.wait_for(lambda: (lambda s: s if s[-1] == "" else [])(
        [p["status"] for p in bot.slack.calls_to("assistant.threads.setStatus")]))  # cleared once the answer failed
    assert statuses[0] and statuses[-1] == ""
    assert not bot.slack.calls_to("chat.startStream")
    [fb] = _feedback(store)
    assert fb.answer == "" and fb.source["error"]


PAIRS = [("GPRIV", "1.2", "What is our internal escalation rota?", "Ask Dana."),
         ("CSUP", "1.2", "Can I export invoices as PDF?", "Yes: Invoices → Export."),
         ("CSUP", "2.2", "How long is the free trial?", "21 days.")]


def _approved(store):
    """A public channel's approved pairs and a private channel's, drawn on by people's questions."""
    with store.session() as s:
        audience.remember(s, "GPRIV", "private", "team")
        audience.remember(s, "CSUP", "public", "support")
        add_examples(s, [NewExample(f"slack:{cid}:{ts}", q, a, status=ExampleStatus.APPROVED,
                                    source={"kind": "slack", "channel_id": cid, "ts": ts}) for cid, ts, q, a in PAIRS])
        for context in (["slack:GPRIV:1.2"], ["slack:GPRIV:1.2", "slack:CSUP:1.2"], ["slack:CSUP:1.2"]):
            feedback.record(s, question="q", answer="a", user=OTHER, version_name=None,
                            source={"channel": "GPRIV", "context": context})


async def test_suggested_prompts_are_the_most_asked_questions_the_person_may_see(bot, store):
    _approved(store)
    await bot.send.event({"type": "app_home_opened", "user": ASKER, "channel": "DASKER", "tab": "messages",
                          "event_ts": "1.1"})
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert call["channel_id"] == "DASKER"
    # Most asked first; the private channel's pair, asked about most, is not suggested outside it.
    assert [p["message"] for p in call["prompts"]] == ["Can I export invoices as PDF?", "How long is the free trial?"]
    assert not bot.slack.calls_to("views.publish")  # the Messages tab, not the Home tab


async def test_a_new_agent_thread_gets_suggestions_too(bot, store):
    _approved(store)
    await bot.send.event({"type": "assistant_thread_started", "event_ts": "1.1", "assistant_thread": {
        "user_id": ASKER, "channel_id": "DASKER", "thread_ts": "1700000000.000100", "context": {}}})
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert call["thread_ts"] == "1700000000.000100" and len(call["prompts"]) == 2
