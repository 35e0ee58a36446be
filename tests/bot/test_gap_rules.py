"""bot.gaps.rules: what a button and a form carry stays inside Slack's bounds and comes back whole; the form starts
from the gap's most common wording; a week is one digest."""

from datetime import datetime, timezone

from bot.gaps.rules import (
    BUTTON_LIMIT,
    METADATA_LIMIT,
    Target,
    common_question,
    form_errors,
    pack,
    unpack,
    week_of,
)


def test_a_target_round_trips_and_a_big_gap_is_cut_to_slacks_bounds():
    small = Target("GPRIVATE", ["draft:12", "feedback:345"])
    assert unpack(pack(small, BUTTON_LIMIT)) == small
    big = Target(None, [f"draft:{100000 + i}" for i in range(1000)])
    for limit in (BUTTON_LIMIT, METADATA_LIMIT):
        carried = unpack(pack(big, limit))
        assert len(pack(big, limit)) <= limit and carried.channel is None
        assert carried.refs == big.refs[:len(carried.refs)] and len(carried.refs) > 100  # the first kept: open ones


def test_what_is_no_target_reads_as_none():
    for forged in (None, "", "12", "{not json", '{"c":"C1","r":[]}', '{"c":"C1","r":["x12"]}', '{"c":1,"r":["d1"]}',
                   '{"c":"C1","r":["dx"]}', '[1]'):
        assert unpack(forged) is None, forged


def test_the_form_starts_from_the_most_common_wording():
    asked = ["Can I export to PDF?", "How do I get a PDF?", "how do i get a pdf", "How do I get a PDF?!"]
    assert common_question(asked) == "How do I get a PDF?"
    assert common_question(["Only one?"]) == "Only one?" and common_question([]) == ""


def test_a_written_answer_is_neither_empty_nor_longer_than_a_field():
    assert form_errors("Q?", "A.", 4000) == {}
    assert set(form_errors(" ", ":tada:", 4000)) == {"question", "answer"}
    assert "3,000" in form_errors("Q?", "x" * 3001, 4000)["answer"]
    assert "100" in form_errors("Q?", "x" * 101, 100)["answer"]  # FT_MAX_ANSWER_CHARS when smaller


def test_a_week_is_its_iso_week():
    assert week_of(datetime(2026, 12, 31, tzinfo=timezone.utc)) == "2026-W53"
    assert week_of(datetime(2027, 1, 4, tzinfo=timezone.utc)) == "2027-W01"
