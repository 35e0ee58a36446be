"""App Home: opening the Home tab publishes where examples, jobs and the deployed model stand."""

import json
import time

from core.states import ExampleStatus, JobStatus, VersionStatus
from storage.examples import NewExample, add_examples
from storage.jobs import enqueue
from storage.models import ModelVersion
from tests.bot.conftest import AGENT, CURATOR, OTHER


def _opened(user, tab="home"):
    return {"type": "app_home_opened", "user": user, "channel": "DHOME", "tab": tab,
            "event_ts": f"{time.time():.6f}"}


async def _published(bot, user, tab="home"):
    status, _ = await bot.send.event(_opened(user, tab))
    assert status == 200
    [call] = await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish"))
    assert call["user_id"] == user and call["view"]["type"] == "home"
    return json.dumps(call["view"]["blocks"], ensure_ascii=False)


def _seed(store):
    items = [NewExample(f"slack:CSUP:{i}.0", f"Question number {i}?", f"Answer number {i}.", labelled_by=AGENT,
                        status=ExampleStatus.APPROVED if i % 2 else ExampleStatus.CANDIDATE)
             for i in range(1, 8)]
    with store.session() as s:
        add_examples(s, items)
        running = enqueue(s, {}, CURATOR)
        running.status, running.progress = JobStatus.RUNNING, {"step": 40, "total": 120, "loss": 1.2345}
        enqueue(s, {}, CURATOR)


async def test_home_shows_counts_newest_examples_jobs_and_the_base_model(bot, store):
    _seed(store)
    shown = await _published(bot, CURATOR)
    assert "4 approved" in shown and "3 candidate" in shown and "0 rejected" in shown
    assert "Question number 7?" in shown and "Question number 3?" in shown
    assert "Question number 2?" not in shown  # only the 5 newest
    assert "Job 1: *running* (step 40/120, loss 1.23)" in shown and "Job 2: *queued*" in shown
    assert "the base model (nothing deployed)" in shown
    assert "/ft review" in shown  # curators get their hint
    assert "could not answer" not in shown


async def test_home_lists_the_questions_waiting_for_an_answer(bot, store):
    from storage import feedback

    with store.session() as s:
        feedback.record(s, question="Can I pay with PayPal?", answer="", user=AGENT, version_name=None, source={},
                        declined=True)
    shown = await _published(bot, CURATOR)
    assert "Questions the bot could not answer" in shown and "Can I pay with PayPal?" in shown


async def test_home_names_the_deployed_version(bot, store):
    with store.session() as s:
        s.add(ModelVersion(name="support-v3", status=VersionStatus.DEPLOYED))
    shown = await _published(bot, OTHER)
    assert "support-v3" in shown and "nothing deployed" not in shown
    assert "No examples yet" in shown and "No training jobs yet" in shown


async def test_the_messages_tab_publishes_nothing(bot, store):
    await bot.send.event(_opened(OTHER, tab="messages"))
    await bot.send.event(_opened(OTHER))  # the next event shows the first was handled and ignored
    await bot.slack.wait_for(lambda: bot.slack.calls_to("views.publish"))
    assert len(bot.slack.calls_to("views.publish")) == 1


async def test_home_shows_each_watched_channels_live_record(bot, store):
    from datetime import datetime, timezone

    from tests.outcome_rows import AUTO, DRAFTS, seed

    assert "Live record" not in await _published(bot, OTHER)  # no question in a watched channel yet
    seed(store, datetime.now(timezone.utc))
    await bot.send.event(_opened(OTHER))
    calls = await bot.slack.wait_for(lambda: len(bot.slack.calls_to("views.publish")) == 2 and
                                     bot.slack.calls_to("views.publish"))
    shown = json.dumps(calls[-1]["view"]["blocks"], ensure_ascii=False)
    assert "Live record" in shown
    assert (f"*<#{DRAFTS}>*\\nDrafts: 14 questions · 2 sent unchanged (20% of 10 acted on) · 3 edited · "
            "4 discarded · 1 superseded · 1 expired · 2 waiting") in shown
    assert (f"*<#{AUTO}>*\\nAuto: 8 questions · 6 answered · 1 handed off · 1 :+1: / 1 :-1: · "
            "resolved: 1 confirmed, 3 assumed") in shown
    assert "/ft stats" in shown
