"""A ✅ in Slack, through real Bolt over signed HTTP, against the fake Slack Web API."""

import time

from core.states import ExampleStatus
from storage.snapshots import create_snapshot
from tests.bot.conftest import AGENT, ASKER, CURATOR, OTHER, stored_examples


def _reaction(user, channel, ts, kind="reaction_added", reaction="white_check_mark"):
    return {"type": kind, "user": user, "reaction": reaction, "item_user": AGENT,
            "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": f"{time.time():.6f}"}


def _thread(slack):
    root = slack.post("CSUP", ASKER, "How long is the free trial?")
    follow = slack.post("CSUP", ASKER, "asking for my team of 3", thread_ts=root)
    answer = slack.post("CSUP", AGENT, "<@UASKER> The trial lasts *21 days*, no card needed.", thread_ts=root)
    return root, follow, answer


async def test_a_label_stores_a_candidate_and_acknowledges_quietly(bot, store):
    _, _, answer = _thread(bot.slack)
    status, _ = await bot.send.event(_reaction(OTHER, "CSUP", answer))
    assert status == 200
    await bot.slack.wait_for(lambda: bot.slack.calls_to("reactions.add"))
    [ex] = stored_examples(store)
    assert ex.question == "How long is the free trial?\nasking for my team of 3"
    assert ex.answer == "The trial lasts 21 days, no card needed."
    assert (ex.status, ex.labelled_by, ex.source_key) == (ExampleStatus.CANDIDATE, OTHER, f"slack:CSUP:{answer}")
    assert bot.slack.calls_to("reactions.add")[0]["timestamp"] == answer
    assert not bot.slack.calls_to("chat.postMessage") and not bot.slack.calls_to("chat.postEphemeral")


async def test_a_curators_label_approves(bot, store):
    _, _, answer = _thread(bot.slack)
    await bot.send.event(_reaction(CURATOR, "CSUP", answer))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("reactions.add"))
    [ex] = stored_examples(store)
    assert (ex.status, ex.approved_by) == (ExampleStatus.APPROVED, CURATOR)


async def test_a_label_on_the_askers_own_message_is_flagged_with_a_note(bot, store):
    root, follow, _ = _thread(bot.slack)
    await bot.send.event(_reaction(CURATOR, "CSUP", follow))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    [ex] = stored_examples(store)
    assert ex.status == ExampleStatus.CANDIDATE and ex.flags[0]["code"] == "asker_answer"
    note = bot.slack.calls_to("chat.postEphemeral")[0]
    assert note["user"] == CURATOR and "written by the person who asked" in note["text"]


async def test_removing_the_label_withdraws_unless_a_snapshot_used_it(bot, store):
    _, _, answer = _thread(bot.slack)
    await bot.send.event(_reaction(OTHER, "CSUP", answer))
    await bot.slack.wait_for(lambda: stored_examples(store))
    # Someone else's removal does nothing; the labeller's removes it.
    await bot.send.event(_reaction(CURATOR, "CSUP", answer, kind="reaction_removed"))
    await bot.send.event(_reaction(OTHER, "CSUP", answer, kind="reaction_removed"))
    await bot.slack.wait_for(lambda: not stored_examples(store))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("reactions.remove"))

    await bot.send.event(_reaction(CURATOR, "CSUP", answer))
    await bot.slack.wait_for(lambda: stored_examples(store))
    with store.session() as s:
        create_snapshot(s, 15)
    await bot.send.event(_reaction(CURATOR, "CSUP", answer, kind="reaction_removed"))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    assert len(stored_examples(store)) == 1


async def test_a_duplicate_delivery_is_acknowledged_and_ignored(bot, store):
    _, _, answer = _thread(bot.slack)
    event = _reaction(OTHER, "CSUP", answer)
    assert (await bot.send.event(event, event_id="EvSAME"))[0] == 200
    assert (await bot.send.event(event, event_id="EvSAME", retry=1))[0] == 200
    await bot.slack.wait_for(lambda: bot.slack.calls_to("reactions.add"))
    assert len(bot.slack.calls_to("conversations.replies")) == 1
    assert len(stored_examples(store)) == 1


async def test_bad_signature_and_stale_timestamp_get_401(bot, store):
    _, _, answer = _thread(bot.slack)
    event = _reaction(OTHER, "CSUP", answer)
    assert (await bot.send.event(event, signature="v0=" + "0" * 64))[0] == 401
    assert (await bot.send.event(event, timestamp=int(time.time()) - 301))[0] == 401
    assert (await bot.send.command("status", CURATOR, signature="v0=bad"))[0] == 401
    assert not bot.slack.calls_to("conversations.replies") and not stored_examples(store)


async def test_other_reactions_and_labels_on_the_question_store_nothing(bot, store):
    root, _, answer = _thread(bot.slack)
    await bot.send.event(_reaction(OTHER, "CSUP", answer, reaction="tada"))
    await bot.send.event(_reaction(OTHER, "CSUP", root))
    await bot.slack.wait_for(lambda: bot.slack.calls_to("chat.postEphemeral"))
    assert "reply that answers" in bot.slack.calls_to("chat.postEphemeral")[0]["text"]
    assert not stored_examples(store)
