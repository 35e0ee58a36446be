"""Auto mode through real Bolt over signed HTTP: earned by the channel's record or confirmed by an admin, answers
with "This solved it", hand-offs when the bot declines, and /ft stats' counters reconciled with the events sent."""

import json

from sqlmodel import select

from core.states import DraftStatus
from storage.models import ChannelChange
from tests.bot.conftest import ADMIN, AGENT, ASKER, CURATOR, OTHER
from tests.bot.drafting import (
    DRAFTS,
    ask,
    buttons,
    command,
    drafts_of,
    edit_values,
    finished_cards,
    in_thread,
    message_event,
    next_card,
    reason_values,
    set_mode,
)


async def test_auto_mode_is_earned_or_confirmed_and_answers_or_hands_off(drafting_bot, store):
    bot = drafting_bot
    refused = await set_mode(bot, "auto", "")
    assert "has not earned auto mode" in refused and "no drafts acted on yet" in refused
    assert "now runs in *auto" in await set_mode(bot, "auto", "confirm")
    with store.session() as s:
        change = s.exec(select(ChannelChange).where(ChannelChange.new == "auto")).one()
    assert change.by == ADMIN and "confirmed below the bar" in change.note

    # Grounded enough (retrieval off here): the bot answers in the thread, with "This solved it".
    bot.model.answer = "The trial lasts 21 days."
    ts = await ask(bot, "How long is the trial?")
    [answer] = await bot.slack.wait_for(lambda: in_thread(bot, ts))
    [draft] = drafts_of(store)
    assert draft.status == DraftStatus.ANSWERED and finished_cards(bot) == []
    assert buttons(answer) == {"draft_solved": str(draft.id)}
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
    draft = drafts_of(store)[0]
    assert (draft.resolved_by, draft.bot_response_at is not None, draft.followed_up_at) == (ASKER, True, None)
    follow = bot.slack.post("CSUP", ASKER, "and can I extend it?", thread_ts=ts)
    await bot.send.event(message_event("and can I extend it?", follow, thread_ts=ts))
    await bot.slack.wait_for(lambda: drafts_of(store)[0].followed_up_at is not None)

    # The model says it does not know: the asker is told the team follows up, and the team gets a hand-off card.
    from core.prompt import DONT_KNOW

    bot.deps.retriever = _NothingClose()
    bot.model.answer = DONT_KNOW
    ts2 = await ask(bot, "Can I pay in bitcoin?")
    [told] = await bot.slack.wait_for(lambda: in_thread(bot, ts2))
    assert "passed your question to the support team" in told["text"]
    card = await next_card(bot, 1)
    handoff = drafts_of(store)[1]
    assert handoff.status == DraftStatus.HANDED_OFF and buttons(card) == {"draft_answer": str(handoff.id)}
    await bot.send.view_submission(AGENT, "draft_edit_modal", edit_values("No, cards and SEPA only."),
                                   private_metadata=str(handoff.id))
    await bot.slack.wait_for(lambda: len(in_thread(bot, ts2)) == 2)
    handoff = drafts_of(store)[1]
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
    threads = [await ask(bot, f"Question number {i}?", user=user) for i, user in
               enumerate((ASKER, OTHER, ASKER, OTHER, ASKER))]
    await bot.slack.wait_for(lambda: len(finished_cards(bot)) == 5)
    by_thread = {d.question_ts: d.id for d in drafts_of(store)}
    ids = [by_thread[ts] for ts in threads]  # the drafts were made concurrently: their ids need not follow
    await bot.send.action(AGENT, "draft_send", str(ids[0]), channel=DRAFTS)  # sent unchanged
    await bot.send.view_submission(AGENT, "draft_edit_modal", edit_values("The trial lasts 21 days, no card."),
                                   private_metadata=str(ids[1]))  # edited
    await bot.send.view_submission(CURATOR, "draft_discard_modal", reason_values("wrong"),
                                   private_metadata=str(ids[2]))  # discarded
    reply = bot.slack.post("CSUP", AGENT, "Answered by hand.", thread_ts=threads[3])
    await bot.send.event(message_event("Answered by hand.", reply, user=AGENT, thread_ts=threads[3]))  # superseded
    def statuses():
        by_id = {d.id: d.status for d in drafts_of(store)}
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
    assert "sent unchanged" in (await command(bot, "stats", OTHER)).lower()
