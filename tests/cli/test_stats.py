"""`ft stats`: the live outcome figures reconcile with the Draft rows a channel produced."""

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from ftbot.cli.main import app
from storage import open_store
from tests.outcome_rows import AUTO, DRAFTS, OTHER_CHANNEL, V1, seed

runner = CliRunner()


@pytest.fixture
def seeded(ft_env):
    store = open_store(ft_env)
    seed(store, datetime.now(timezone.utc))
    store.close()
    return ft_env


def _json(*args):
    result = runner.invoke(app, ["stats", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_json_reconciles_with_the_rows(seeded):
    report = _json()
    assert [c["channel_id"] for c in report["channels"]] == [DRAFTS, AUTO, OTHER_CHANNEL]
    assert report["since"] is None and report["resolution_window_h"] == 24.0
    desk, auto, _ = report["channels"]
    d = desk["draft"]
    assert desk["name"] == "help-desk" and desk["questions"] == 14
    assert {k: d[k] for k in ("sent", "edited", "discarded", "superseded", "expired", "pending", "failed",
                              "acted_on")} == {"sent": 2, "edited": 3, "discarded": 4, "superseded": 1, "expired": 1,
                                               "pending": 2, "failed": 1, "acted_on": 10}
    assert d["discarded_by_reason"] == {"wrong": 1, "outdated": 1, "not_a_question": 1, "other": 1}
    assert (d["edit_chars_median"], d["edit_chars_mean"], d["sent_unchanged_share"]) == (40.0, 50.0, 0.2)
    assert d["human_response"] == {"n": 6, "p50_s": 300.0, "p90_s": 1200.0}
    assert [(v["version"], v["draft"]["questions"], v["draft"]["sent"]) for v in desk["versions"]] == \
           [(V1, 10, 2), (None, 4, 0)]
    a = auto["auto"]
    assert {k: a[k] for k in ("questions", "answered", "declined", "handed_off", "failed", "thumbs_up",
                              "thumbs_down", "resolved_confirmed", "resolved_assumed", "followed_up", "awaiting")} == \
        {"questions": 8, "answered": 6, "declined": 1, "handed_off": 1, "failed": 1, "thumbs_up": 1, "thumbs_down": 1,
         "resolved_confirmed": 1, "resolved_assumed": 3, "followed_up": 1, "awaiting": 1}
    # The total is the sum of the channels.
    assert report["total"]["questions"] == 24 == sum(c["questions"] for c in report["channels"])
    assert report["total"]["draft"]["sent"] == 3


def test_stats_narrows_by_channel_time_and_version(seeded, monkeypatch):
    assert _json("--since", "7d")["total"]["draft"]["questions"] == 15  # one question is 10 days old
    assert _json("--since", "2020-01-01")["total"]["draft"]["questions"] == 16
    for named in ("help-desk", "#help-desk", DRAFTS):
        only = _json("--channel", named)
        assert [c["channel_id"] for c in only["channels"]] == [DRAFTS] and only["total"]["questions"] == 14
    assert _json("--version", "base")["total"]["draft"]["questions"] == 4
    monkeypatch.setenv("FT_RESOLUTION_WINDOW_H", "36")
    auto = _json("--channel", "pro-support")
    assert auto["resolution_window_h"] == 36.0 and auto["total"]["auto"]["resolved_assumed"] == 0


def test_stats_table_names_each_figure(seeded):
    result = runner.invoke(app, ["stats", "--channel", "help-desk"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for label in ("sent unchanged", "2 (20% of 10)", "edit size, median / mean chars", "40 / 50", "not a question",
                  "superseded", "first response: a person", "p50 5 min, p90 20 min (of 6)", V1, "base model"):
        assert label in result.stdout, label


@pytest.mark.parametrize("args,problem", [
    (["--since", "last week"], "--since 'last week' is not a time: write 7d, 24h, 30m"),
    (["--since", "7y"], "is not a time"),
    (["--since", "99999999d"], "reaches further back than a date can"),
    (["--channel", "#nowhere"], "--channel: no channel '#nowhere' is known"),
])
def test_bad_input_is_one_line_and_exit_2(seeded, args, problem):
    result = runner.invoke(app, ["stats", *args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert problem in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and result.stdout == ""
