"""`ft gaps`: the table and the JSON an auditing script reads, the window (--since), and erasure reaching gaps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select
from typer.testing import CliRunner

from core.embedder import EmbedderError, find_model_dir
from core.states import ChannelKind, ExampleStatus
from ftbot.cli.main import app
from storage import audience, feedback, open_store
from storage.examples import NewExample, add_examples
from storage.models import Feedback
from storage.outcomes import parse_since

runner = CliRunner()
SUPPORT, PRIVATE = "CSUPPORT1", "GACME0001"
ZED, ANA, BO = "UZED4242", "UANA1111", "UBO22222"
PAYPAL = {ZED: ["Can I pay with PayPal?", "Do you accept PayPal payments?"],
          ANA: ["Is PayPal supported as a payment method?"]}
LINUX = {BO: ["Is there a Linux app?", "Can I install the app on Linux?"]}

try:
    find_model_dir()
except EmbedderError as exc:
    pytestmark = pytest.mark.skip(str(exc))


def ft(*args):
    return runner.invoke(app, list(args))


def ft_json(*args) -> dict:
    result = ft("gaps", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def seed(db_url: str, groups=(PAYPAL, LINUX), channel: str = SUPPORT, days_ago: float = 0) -> None:
    store = open_store(db_url)
    with store.session() as s:
        audience.remember(s, SUPPORT, ChannelKind.PUBLIC, "support")
        audience.remember(s, PRIVATE, ChannelKind.PRIVATE, "acme")
        n = 0
        for group in groups:
            for user, questions in group.items():
                for q in questions:
                    n += 1
                    row = feedback.record(s, question=q, answer="", user=user, version_name=None,
                                          source={"channel": channel, "thread_ts": f"{n}.0"}, declined=True)
                    row.created_at = datetime.now(timezone.utc) - timedelta(days=days_ago)
        add_examples(s, [NewExample("slack:CSUPPORT1:1.1", "Which payment methods do you accept?",
                                    "Visa, Mastercard and bank transfer.", status=ExampleStatus.APPROVED,
                                    channel_id=SUPPORT, audience=ChannelKind.PUBLIC)])
    store.close()


def test_the_table_shows_each_gap_and_the_json_lists_every_member(ft_env):
    seed(ft_env)
    shown = runner.invoke(app, ["gaps"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    out = " ".join(shown.stdout.split())
    assert "knowledge gaps since" in out and "2 gaps" in out
    assert "Do you accept PayPal payments?" in out and "#support" in out and "(3 open)" in out
    assert "Which payment methods do you accept?" in out and "Visa, Mastercard" in out

    report = ft_json()
    assert [g["size"] for g in report["gaps"]] == [3, 2]
    paypal, linux = report["gaps"]
    assert sorted(q["question"] for q in paypal["questions"]) == sorted(PAYPAL[ZED] + PAYPAL[ANA])
    assert sorted(q["question"] for q in linux["questions"]) == sorted(LINUX[BO])
    member = paypal["questions"][0]
    assert set(member) == {"ref", "kind", "question", "channel", "asked_at", "open"}
    assert (member["kind"], member["channel"], member["open"]) == ("declined", SUPPORT, True)
    assert member["ref"].startswith("feedback:") and datetime.fromisoformat(member["asked_at"])
    assert paypal["channels"] == [SUPPORT] and paypal["nearest"]["question"] == "Which payment methods do you accept?"
    assert 0 < paypal["nearest"]["score"] < 1 and len(paypal["key"]) == 10


def test_an_empty_window_says_so(ft_env):
    empty = ft("gaps")
    assert empty.exit_code == 0 and "no knowledge gaps since" in empty.stdout
    seed(ft_env, days_ago=3)
    assert ft_json("--since", "2d")["gaps"] == []
    assert "no knowledge gaps since" in ft("gaps", "--since", "36h").stdout
    assert [g["size"] for g in ft_json("--since", "1w")["gaps"]] == [3, 2]


def test_a_private_channels_gaps_show_only_as_seen_there(ft_env):
    seed(ft_env, channel=PRIVATE)
    assert ft_json()["gaps"] == []
    there = ft_json("--channel", "#acme")
    assert [g["channels"] for g in there["gaps"]] == [[PRIVATE], [PRIVATE]]
    assert ft("gaps", "--channel", "#nowhere").exit_code == 2


@pytest.mark.parametrize("bad", ["7", "seven days", "7x", "-3d", "", "99999999999d"])
def test_a_bad_since_is_one_line_and_exit_2(bad):
    result = ft("gaps", "--since", bad)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--since" in result.output and "Traceback" not in result.output


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@given(st.integers(min_value=0, max_value=5000), st.sampled_from(sorted(UNITS)), st.booleans())
def test_since_counts_back_from_now_in_each_unit(n, unit, upper):
    assert parse_since(f"{n}{unit.upper() if upper else unit}", NOW) == NOW - n * UNITS[unit]


@given(st.text(alphabet="0123456789dhwmxy -.:", max_size=12))
def test_since_either_parses_to_a_utc_time_or_says_what_is_accepted(text):
    try:
        when = parse_since(text, NOW)
    except ValueError as exc:
        assert "7d" in str(exc) or "further back" in str(exc)
    else:
        assert when.tzinfo is not None and when.utcoffset() == timedelta(0)


def test_forget_user_takes_their_questions_out_of_the_gaps(ft_env):
    seed(ft_env)
    before = ft_json()
    asked = {q["question"] for g in before["gaps"] for q in g["questions"]}
    assert set(PAYPAL[ZED]) <= asked
    forgot = ft("forget-user", ZED)
    assert forgot.exit_code == 0, forgot.output
    after = ft_json()
    text = json.dumps(after)
    assert not any(q in text for q in PAYPAL[ZED])
    # Ana's question alone is no gap now; Bo's pair of questions still is.
    assert [sorted(q["question"] for q in g["questions"]) for g in after["gaps"]] == [sorted(LINUX[BO])]
    store = open_store(ft_env)
    with store.session() as s:  # the rows the gaps were computed from are gone
        assert s.exec(select(Feedback).where(Feedback.user == ZED)).all() == []
    store.close()
