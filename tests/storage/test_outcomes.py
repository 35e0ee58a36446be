"""The live outcome figures, on SQLite and PostgreSQL, against rows of every status (tests/outcome_rows.py)."""

from datetime import datetime, timedelta, timezone

import pytest

from core.states import ChannelMode, DraftStatus
from storage.outcomes import BASE, outcomes, parse_since, record
from tests.outcome_rows import AUTO, DRAFTS, OTHER_CHANNEL, V1, H, draft, seed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def seeded(store):
    seed(store, NOW)
    return store


def _report(store, **kw):
    with store.session() as s:
        return outcomes(s, now=NOW, **kw)


def test_draft_mode_counts_every_outcome_and_the_edit_size(seeded):
    report = _report(seeded)
    help_desk = next(c for c in report.channels if c.channel_id == DRAFTS)
    assert help_desk.name == "help-desk"
    d = help_desk.draft
    assert (d.questions, d.sent, d.edited, d.discarded, d.superseded, d.expired, d.pending, d.failed) == \
           (14, 2, 3, 4, 1, 1, 2, 1)
    assert d.discarded_by_reason == {"wrong": 1, "outdated": 1, "not_a_question": 1, "other": 1}
    assert d.declined == 1
    assert (d.edit_chars_median, d.edit_chars_mean) == (40.0, 50.0)  # edits of 10, 40 and 100 characters
    assert d.acted_on == 10 and d.sent_unchanged_share == pytest.approx(0.2)
    assert help_desk.auto.questions == 0 and help_desk.questions == 14
    # Cards after 5, 10, 15, 20, 30 s; people's answers after 60, 120, 300, 600, 900, 1200 s (nearest rank).
    assert (d.bot_response.n, d.bot_response.p50_s, d.bot_response.p90_s) == (5, 15.0, 30.0)
    assert (d.human_response.n, d.human_response.p50_s, d.human_response.p90_s) == (6, 300.0, 1200.0)


def test_each_version_is_counted_apart(seeded):
    help_desk = next(c for c in _report(seeded).channels if c.channel_id == DRAFTS)
    v1, base = help_desk.versions  # most questions first
    assert (v1.version, base.version) == (V1, None)
    assert (v1.draft.questions, v1.draft.sent, v1.draft.edited, v1.draft.discarded, v1.draft.expired,
            v1.draft.pending) == (10, 2, 2, 3, 1, 2)
    assert v1.draft.acted_on == 7 and v1.draft.sent_unchanged_share == pytest.approx(2 / 7)
    assert (v1.draft.edit_chars_median, v1.draft.edit_chars_mean) == (55.0, 55.0)
    assert (base.draft.questions, base.draft.edited, base.draft.discarded, base.draft.superseded,
            base.draft.failed, base.draft.sent_unchanged_share) == (4, 1, 1, 1, 1, 0.0)
    assert base.draft.discarded_by_reason["outdated"] == 1

    only_base = _report(seeded, version=BASE)
    assert only_base.total.draft.questions == 4 and only_base.total.auto.questions == 0
    only_v1 = _report(seeded, version=V1)
    assert only_v1.total.draft.questions == 10 + 2 and only_v1.total.auto.questions == 8


def test_auto_mode_keeps_confirmed_resolutions_apart_from_assumed_ones(seeded):
    auto = next(c for c in _report(seeded).channels if c.channel_id == AUTO)
    assert auto.name == "pro-support" and auto.draft.questions == 0
    a = auto.auto
    assert (a.questions, a.answered, a.declined, a.handed_off, a.failed) == (8, 6, 1, 1, 1)
    assert (a.thumbs_up, a.thumbs_down) == (1, 1)
    # 6 answers: 1 confirmed; 3 older than 24 h with no follow-up within them (one came back only after);
    # 1 followed up within the window; 1 younger than the window.
    assert (a.resolved_confirmed, a.resolved_assumed, a.followed_up, a.awaiting) == (1, 3, 1, 1)
    assert (a.bot_response.n, a.bot_response.p50_s, a.bot_response.p90_s) == (7, 2.0, 4.0)
    assert (a.human_response.n, a.human_response.p50_s) == (1, 1800.0)

    # A longer window: the answers 24 h and 30 h old are not old enough yet; the follow-up 26 h after counts.
    wide = next(c for c in _report(seeded, resolution_window_h=36).channels if c.channel_id == AUTO).auto
    assert (wide.resolved_confirmed, wide.resolved_assumed, wide.followed_up, wide.awaiting) == (1, 0, 2, 3)
    # Later, with the same window, they are.
    with seeded.session() as s:
        later = outcomes(s, now=NOW + 7 * H, resolution_window_h=36).channels
    assert next(c for c in later if c.channel_id == AUTO).auto.resolved_assumed == 1


def test_the_total_adds_up_and_filters_narrow_it(seeded):
    report = _report(seeded)
    assert [c.channel_id for c in report.channels] == [DRAFTS, AUTO, OTHER_CHANNEL]
    assert report.total.draft.questions == 14 + 2 and report.total.auto.questions == 8
    assert report.total.draft.sent == 3 and report.total.questions == 24
    other = report.channels[2]
    assert other.name == "" and other.draft.bot_response.p50_s == 0.0  # a card stamped before its question
    week = _report(seeded, since=NOW - timedelta(days=7))
    assert week.total.draft.questions == 15 and week.total.draft.sent == 2  # the 10-day-old question is out
    assert week.since == NOW - timedelta(days=7)
    assert _report(seeded, channel=AUTO).total.draft.questions == 0
    assert [c.channel_id for c in _report(seeded, channel=AUTO).channels] == [AUTO]
    assert _report(seeded, channel="CNONE").channels == []
    assert _report(seeded, channel="CNONE").total.draft.sent_unchanged_share is None


def test_the_report_is_plain_json(seeded):
    data = _report(seeded).to_json()
    assert data["total"]["questions"] == 24
    assert data["channels"][0]["versions"][0]["draft"]["discarded_by_reason"]["wrong"] == 1
    assert data["resolution_window_h"] == 24.0 and data["now"].startswith("2026-12-01T12:00")


def test_record_counts_the_last_n_acted_on_drafts(seeded):
    with seeded.session() as s:
        # Newest first by when a person acted: sent (1 min ago), discarded (2), sent (3), edited (10)…
        assert (record(s, DRAFTS, 1).sent_unchanged, record(s, DRAFTS, 1).acted_on) == (1, 1)
        three = record(s, DRAFTS, 3)
        assert (three.sent_unchanged, three.acted_on, three.share) == (2, 3, pytest.approx(2 / 3))
        every = record(s, DRAFTS, 50)
        assert (every.sent_unchanged, every.acted_on, every.last_n) == (2, 10, 50)  # pending, expired… not acted on
        assert record(s, AUTO, 20).acted_on == 0 and record(s, AUTO, 20).share is None
        assert record(s, "CNONE", 20).to_json() == {"channel_id": "CNONE", "last_n": 20, "acted_on": 0,
                                                    "sent_unchanged": 0, "share": None}


def test_record_orders_a_hand_reply_by_when_it_came(store):
    with store.session() as s:
        s.add(draft(NOW, DRAFTS, ChannelMode.DRAFT, DraftStatus.SENT, acted_ago=2 * H))
        s.add(draft(NOW, DRAFTS, ChannelMode.DRAFT, DraftStatus.SUPERSEDED, ago=3 * H, human=2.5 * H))  # 30 min ago
    with store.session() as s:
        assert record(s, DRAFTS, 1).sent_unchanged == 0


@pytest.mark.parametrize("text,expected", [
    ("7d", NOW - timedelta(days=7)), ("24h", NOW - 24 * H), ("30m", NOW - timedelta(minutes=30)),
    ("2w", NOW - timedelta(weeks=2)), ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ("2026-11-01T09:30+01:00", datetime(2026, 11, 1, 8, 30, tzinfo=timezone.utc)),
])
def test_since_accepts_durations_and_iso_dates(text, expected):
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "seven days", "7y", "2026-13-01", "-7d"])
def test_since_refuses_anything_else_in_one_sentence(text):
    with pytest.raises(ValueError, match="is not a time: write 7d, 24h, 30m"):
        parse_since(text, NOW)


def test_since_too_far_back_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="reaches further back than a date can"):
        parse_since("99999999d", NOW)
