"""Slack's own changes reach the store, over signed HTTP: the labelled reply or the question behind an example
deleted withdraws it; one of them edited sends it back to the curators with the new text. A re-import does the
same from an export."""

from __future__ import annotations

import time

from bot.slack.importer import import_slack_export
from bot.slack.threads import Rules
from core.states import ExampleStatus
from fakes.slack_export import ExportBuilder
from tests.bot.conftest import ASKER, CURATOR, settled, stored_examples
from tests.bot.test_labelling import _reaction, _thread


async def _labelled(bot, store):
    root, follow, answer = _thread(bot.slack)
    await bot.send.event(_reaction(CURATOR, "CSUP", answer))
    await bot.slack.wait_for(lambda: stored_examples(store))
    [ex] = stored_examples(store)
    assert ex.status == ExampleStatus.APPROVED and ex.audience == "public"  # CSUP is a public channel
    return root, follow, answer


def _settled(store, predicate):
    def check():
        [ex] = stored_examples(store)
        return ex if predicate(ex) else None
    return check


async def test_an_edited_reply_goes_back_to_the_curators_with_the_new_text(bot, store):
    _, _, answer = await _labelled(bot, store)
    status, _ = await bot.send.event(bot.slack.edit("CSUP", answer, "<@UASKER> The trial lasts *30 days* now."))
    assert status == 200
    ex = await bot.slack.wait_for(_settled(store, lambda e: e.status == ExampleStatus.CANDIDATE))
    assert ex.answer == "The trial lasts 30 days now."
    assert ex.question == "How long is the free trial?\nasking for my team of 3"  # the follow-up kept
    assert ex.approved_by is None and [f["code"] for f in ex.flags] == ["edited_in_slack"]
    assert "reply was edited in Slack" in ex.flags[0]["reason"]


async def test_an_edited_question_goes_back_to_the_curators_with_the_new_text(bot, store):
    root, _, _ = await _labelled(bot, store)
    await bot.send.event(bot.slack.edit("CSUP", root, "How long is the free trial of the Team plan?"))
    ex = await bot.slack.wait_for(_settled(store, lambda e: e.status == ExampleStatus.CANDIDATE))
    assert ex.question == "How long is the free trial of the Team plan?\nasking for my team of 3"
    assert ex.answer == "The trial lasts 21 days, no card needed."


async def test_a_deleted_reply_or_question_withdraws_the_example(bot, store):
    _, _, answer = await _labelled(bot, store)
    await bot.send.event(bot.slack.delete("CSUP", answer))
    ex = await bot.slack.wait_for(_settled(store, lambda e: e.status == ExampleStatus.REJECTED))
    assert [f["code"] for f in ex.flags] == ["deleted_in_slack"] and "reply was deleted" in ex.flags[0]["reason"]


async def test_a_question_deleted_under_its_replies_leaves_a_tombstone_and_withdraws_the_example(bot, store):
    root, _, _ = await _labelled(bot, store)
    event = bot.slack.edit("CSUP", root, "This message was deleted.")
    event["message"]["subtype"] = "tombstone"  # what Slack sends for a thread's root deleted under its replies
    await bot.send.event(event)
    ex = await bot.slack.wait_for(_settled(store, lambda e: e.status == ExampleStatus.REJECTED))
    assert "question was deleted" in ex.flags[0]["reason"]


async def test_other_changes_touch_nothing_and_a_dms_edit_is_not_asked_again(bot, store):
    await _labelled(bot, store)
    other = bot.slack.post("CSUP", ASKER, "unrelated")
    await bot.send.event(bot.slack.edit("CSUP", other, "unrelated, edited"))
    dm = bot.slack.post("DASKER", ASKER, "how long is the trial?")
    event = bot.slack.edit("DASKER", dm, "how long is the trial, again?")
    event["channel_type"] = "im"
    await bot.send.event(event)
    await settled(bot)  # both listeners (and the work they queued) have run
    [ex] = stored_examples(store)
    assert ex.status == ExampleStatus.APPROVED and not ex.flags
    assert not bot.model.requests and not bot.slack.calls_to("chat.postMessage")


def _export(edit_answer: str | None = None, drop: str | None = None, edited_at: float | None = None):
    b = (ExportBuilder().channel("support", "CSUP").user("UCURATOR", "Cora").user("UAGENT", "Aaron")
         .user("UCUST1", "Mia"))
    b.thread("support", "UCUST1", "How long is the trial?", [("UAGENT", "The trial lasts 21 days.", ["UCURATOR"])])
    b.thread("support", "UCUST1", "Do you ship abroad?", [("UAGENT", "Yes, to the whole EU.", ["UCURATOR"])])
    b.thread("support", "UCUST1", "Is there an app?", [("UAGENT", "Yes, for iOS and Android.", ["UCURATOR"])])
    messages = b.messages["support"]
    if edit_answer:
        messages[1]["text"] = edit_answer
        messages[1]["edited"] = {"user": "UAGENT", "ts": f"{edited_at:.6f}"}
    if drop:
        b.messages["support"] = [m for m in messages if m["text"] != drop]
    return b


def test_a_reimport_withdraws_what_is_gone_and_revises_what_was_edited(store, tmp_path):
    rules = Rules(curators=frozenset({"UCURATOR"}))
    first = import_slack_export(store, _export().write_dir(tmp_path / "one"), label_emoji="white_check_mark",
                                rules=rules)
    assert first.approved == 3
    again = import_slack_export(store, _export().write_dir(tmp_path / "two"), label_emoji="white_check_mark",
                                rules=rules)
    assert (again.withdrawn, again.revised, again.imported) == (0, 0, 0)  # nothing changed: nothing changes

    changed = _export(edit_answer="The trial lasts 30 days.", drop="Yes, to the whole EU.", edited_at=time.time() + 5)
    summary = import_slack_export(store, changed.write_dir(tmp_path / "three"), label_emoji="white_check_mark",
                                  rules=rules)
    assert (summary.withdrawn, summary.revised) == (1, 1)
    by_q = {ex.question: ex for ex in stored_examples(store)}
    assert by_q["How long is the trial?"].answer == "The trial lasts 30 days."
    assert by_q["How long is the trial?"].status == ExampleStatus.CANDIDATE
    assert by_q["Do you ship abroad?"].status == ExampleStatus.REJECTED
    assert by_q["Is there an app?"].status == ExampleStatus.APPROVED
    # Running it again changes nothing more.
    summary = import_slack_export(store, changed.write_dir(tmp_path / "four"), label_emoji="white_check_mark",
                                  rules=rules)
    assert (summary.withdrawn, summary.revised) == (0, 0)


def test_a_date_ranged_export_withdraws_nothing(store, tmp_path):
    rules = Rules(curators=frozenset({"UCURATOR"}))
    import_slack_export(store, _export().write_dir(tmp_path / "one"), label_emoji="white_check_mark", rules=rules)
    later = ExportBuilder(start=1_800_000_000.0).channel("support", "CSUP").user("UCURATOR", "Cora")
    later.thread("support", "UCURATOR", "Other question?", [("UCURATOR", "Other answer.")])
    summary = import_slack_export(store, later.write_dir(tmp_path / "two"), label_emoji="white_check_mark",
                                  rules=rules)
    assert summary.withdrawn == 0
    assert {ex.status for ex in stored_examples(store)} == {ExampleStatus.APPROVED}



async def test_ft_forget_erases_a_person_for_admins_only(bot, store, tmp_path):
    from tests.bot.conftest import ADMIN

    bot.deps.data_dir = tmp_path / "data"  # FT_DATA_DIR, whose files it scrubs too
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.json").write_text('{"asker": "UASKER"}')
    await _labelled(bot, store)  # asked by UASKER
    status, body = await bot.send.command("forget <@UASKER|mia>", CURATOR)
    assert status == 200 and "Only admins" in body and len(stored_examples(store)) == 1
    before = len(bot.slack.responses)
    status, body = await bot.send.command("forget <@UASKER|mia>", ADMIN)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses) > before)
    assert "Erased" in bot.slack.responses[-1]["text"] and "1 example(s)" in bot.slack.responses[-1]["text"]
    assert stored_examples(store) == [] and "UASKER" not in (tmp_path / "data" / "notes.json").read_text()
    # An id nothing names (a typo, UNOSUCHUSER1): said so, and no audit record, as `ft forget-user` does.
    before = len(bot.slack.responses)
    status, _ = await bot.send.command("forget UNOSUCHUSER1", ADMIN)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses) > before)
    assert "Nothing of `UNOSUCHUSER1` is stored" in bot.slack.responses[-1]["text"]
    with store.session() as s:
        from sqlmodel import select

        from storage.models import Erasure

        assert len(s.exec(select(Erasure)).all()) == 1  # UASKER's only


async def test_a_plain_channel_message_is_acknowledged_and_left_alone(bot, store):
    ts = bot.slack.post("CSUP", ASKER, "hello team")
    status, _ = await bot.send.event({"type": "message", "channel": "CSUP", "channel_type": "channel", "user": ASKER,
                                      "text": "hello team", "ts": ts, "event_ts": ts})
    assert status == 200  # not 404: Slack would retry it
    await settled(bot)
    assert not bot.model.requests and not bot.slack.calls_to("chat.postMessage") and stored_examples(store) == []
