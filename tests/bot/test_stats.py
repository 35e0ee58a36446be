"""`/ft stats` over signed HTTP, and the Prometheus counters of draft outcomes."""

from datetime import datetime, timedelta, timezone

from prometheus_client import generate_latest

from bot.commands.render import STATS_CHARS, stats
from bot.metrics import BotMetrics
from core.states import ChannelMode, DraftStatus
from storage.outcomes import ChannelFigures, DraftFigures, Report
from tests.bot.conftest import ADMIN, OTHER, command_reply, command_text
from tests.outcome_rows import AUTO, DRAFTS, V1, H, M, S, draft, seed

_send = command_text


async def _reply(bot, text, user):
    return (await command_reply(bot, text, user))["text"]


async def test_anyone_sees_the_live_outcomes_of_every_watched_channel(bot, store):
    seed(store, datetime.now(timezone.utc))
    text = await _reply(bot, "stats", OTHER)  # not a curator: everyone may
    assert "since the first question" in text and "no follow-up for 24 h" in text
    desk, auto = text.index(f"<#{DRAFTS}>"), text.index(f"<#{AUTO}>")
    assert desk < auto  # most questions first
    shown = text[desk:auto]
    assert ("14 questions · 2 sent unchanged (20% of 10 acted on) · 3 edited (median 40, mean 50 chars) · "
            "4 discarded (wrong 1, outdated 1, not a question 1, other 1) · 1 superseded · 1 expired · 2 waiting"
            in shown)
    assert "a person's answer p50 5 min, p90 20 min (of 6)" in shown
    assert f"• *{V1}*: Drafts: 10 questions · 2 sent unchanged (29% of 7 acted on)" in shown
    assert "• *the base model*: Drafts: 4 questions" in shown
    assert ("8 questions · 6 answered · 1 handed off · 1 :+1: / 1 :-1: · resolved: 1 confirmed, 3 assumed · "
            "1 followed up, 1 within the window · 1 failed") in text[auto:]
    assert "Traceback" not in text and len(text) <= STATS_CHARS


async def test_stats_of_one_channel_since_a_time(bot, store):
    seed(store, datetime.now(timezone.utc))
    text = await _reply(bot, "stats #pro-support 7d", ADMIN)
    assert f"<#{AUTO}>" in text and f"<#{DRAFTS}>" not in text and "All channels" not in text
    assert f"<#{AUTO}>* ({V1})" in text  # one version answered there: named with the channel
    mention = await _reply(bot, f"stats 2020-01-01 <#{DRAFTS}|help-desk>", ADMIN)
    assert "since 01 Jan 2020 00:00 UTC" in mention and "14 questions" in mention and f"<#{AUTO}>" not in mention
    unknown = await _reply(bot, "stats #nowhere", ADMIN)
    assert "I know no channel `#nowhere`" in unknown


async def test_stats_before_any_question_and_with_bad_arguments(bot, store):
    text = await _reply(bot, "stats", OTHER)
    assert "No questions in watched channels yet" in text and "/ft channel mode draft" in text
    for args, problem in (("stats soon", "`soon` is not a time"), ("stats 7d 24h", "at most one channel and one time"),
                          ("stats #a #b", "at most one channel"), ("stats #nope 99999999d", "is not a time")):
        reply = await _send(bot, args, OTHER)
        assert problem in reply and "`/ft stats [#channel]" in reply  # the usage list follows
    assert "`/ft stats [#channel] [7d|24h|2026-11-01]`" in await _send(bot, "help", OTHER)


def test_many_channels_stay_within_slacks_limit():
    figures = DraftFigures(questions=3, sent=1, acted_on=1, sent_unchanged_share=1.0)
    report = Report(now=datetime.now(timezone.utc), resolution_window_h=24,
                    channels=[ChannelFigures(channel_id=f"C{i:08d}", draft=figures) for i in range(200)])
    text = stats(report)
    assert len(text) <= STATS_CHARS and "more channels: name one" in text


def test_the_counters_count_each_outcome_and_time_first_responses(store):
    metrics = BotMetrics()
    now = datetime.now(timezone.utc)
    card = draft(now, DRAFTS, ChannelMode.DRAFT, DraftStatus.PENDING, bot=12 * S)
    metrics.draft_outcome(card)  # the card is posted
    card.status, card.human_response_at = DraftStatus.EDITED, card.asked_at + 4 * M
    metrics.draft_outcome(card)  # an agent edits and sends it
    answer = draft(now, AUTO, ChannelMode.AUTO, DraftStatus.ANSWERED, version=None, bot=3 * S)
    metrics.draft_outcome(answer)
    metrics.draft_outcome(answer, outcome="resolved")  # "This solved it": the status stays, not timed again
    handed = draft(now, AUTO, ChannelMode.AUTO, DraftStatus.HANDED_OFF, version=None, bot=2 * S)
    metrics.draft_outcome(handed)
    handed.human_response_at = handed.asked_at + 1 * H
    metrics.first_response(handed, "human")  # a team member replies after the hand-off
    with store.session() as s:  # a row as read back from the database (SQLite: naive UTC) times the same
        s.add(draft(now, DRAFTS, ChannelMode.DRAFT, DraftStatus.SENT, ago=timedelta(minutes=5), human=2 * M))
    with store.session() as s:
        from sqlmodel import select

        from storage.models import Draft

        metrics.draft_outcome(s.exec(select(Draft)).one())

    value = metrics.registry.get_sample_value
    count = lambda **labels: value("ftbot_draft_outcomes_total", labels)  # noqa: E731  (a one-line reader for the asserts)
    assert count(channel=DRAFTS, mode="draft", outcome="pending", version=V1) == 1
    assert count(channel=DRAFTS, mode="draft", outcome="edited", version=V1) == 1
    assert count(channel=DRAFTS, mode="draft", outcome="sent", version=V1) == 1
    assert count(channel=AUTO, mode="auto", outcome="answered", version="base") == 1
    assert count(channel=AUTO, mode="auto", outcome="resolved", version="base") == 1
    assert count(channel=AUTO, mode="auto", outcome="handed_off", version="base") == 1
    assert value("ftbot_first_response_seconds_count", {"by": "bot"}) == 3  # card, answer, hand-off note
    assert value("ftbot_first_response_seconds_sum", {"by": "bot"}) == 12 + 3 + 2
    assert value("ftbot_first_response_seconds_count", {"by": "human"}) == 3
    assert value("ftbot_first_response_seconds_sum", {"by": "human"}) == 240 + 3600 + 120
    assert b'ftbot_draft_outcomes_total{channel="CAUTO",mode="auto",outcome="resolved",version="base"} 1.0' in \
        generate_latest(metrics.registry)
