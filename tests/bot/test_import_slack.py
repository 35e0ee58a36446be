"""`ft import-slack`'s core on a small export the test builds, on SQLite and PostgreSQL."""

import json

import pytest
from sqlmodel import select

from bot.slack.export import ExportError
from bot.slack.importer import import_slack_export
from bot.slack.threads import Rules
from core.states import ExampleStatus
from fakes.slack_export import ExportBuilder, support_workspace
from storage.models import Example

RULES = Rules(curators=frozenset({"UCURATOR"}), max_answer_chars=200)


def _import(store, path, **kw):
    return import_slack_export(store, path, label_emoji="white_check_mark", rules=RULES, **kw)


def _examples(store):
    with store.session() as s:
        return {e.question.splitlines()[0]: e for e in s.exec(select(Example))}


def test_labelled_threads_become_examples(store, tmp_path):
    summary = _import(store, support_workspace().write_dir(tmp_path / "export"))
    ex = _examples(store)
    trial = ex["How long is the trial?"]
    assert trial.answer == "The trial lasts 21 days."  # greeting mention dropped, markup gone
    assert (trial.status, trial.approved_by, trial.labelled_by) == (ExampleStatus.APPROVED, "UCURATOR", "UCURATOR")
    assert trial.source_key.startswith("slack:CSUP:")
    solo = ex["what does the Solo plan cost"]
    assert solo.answer == "Solo is €9 a month, see pricing." and solo.status == ExampleStatus.CANDIDATE
    # Flagged, and not approved even with a curator's ✅.
    assert [f["code"] for f in ex["Export to DATEV?"].flags] == ["asker_answer"]
    assert [f["code"] for f in ex["is it down?"].flags] == ["empty_answer"]
    assert [f["code"] for f in ex["status page?"].flags] == ["bot_message"]
    assert all(ex[q].status == ExampleStatus.CANDIDATE for q in ("Export to DATEV?", "is it down?", "status page?"))
    # The asker's follow-up is part of the question; PII redacted, invoice id kept.
    charged = ex["My card was charged twice"]
    assert charged.question == ("My card was charged twice\n"
                                "it's for invoice QM-2026-00042, mail me at <email> or <phone>")
    assert charged.answer == "Refunded to IBAN <iban> for QM-2026-00042; card <card> untouched."
    assert summary.labels == 8 and summary.imported == 7 and summary.approved == 3
    assert summary.flagged == {"asker_answer": 1, "empty_answer": 1, "bot_message": 1}
    assert summary.skipped == {"label on the question, not on a reply": 1}
    assert set(summary.channels) == {"support", "random"}


def test_second_import_changes_nothing(store, tmp_path):
    path = support_workspace().write_dir(tmp_path / "export")
    _import(store, path)
    before = {k: (e.id, e.status, e.updated_at) for k, e in _examples(store).items()}
    again = _import(store, path)
    assert again.imported == 0 and again.skipped["already imported"] == 7
    assert {k: (e.id, e.status, e.updated_at) for k, e in _examples(store).items()} == before


@pytest.mark.parametrize("top", ["", "Quillmate Slack export Oct 1 2026 - Oct 31 2026/"])
def test_zip_exports_and_channel_filter(store, tmp_path, top):
    path = support_workspace().write_zip(tmp_path / "export.zip", top=top)
    summary = _import(store, path, channels=["#random"])
    assert summary.channels == ["random"] and summary.imported == 1
    assert list(_examples(store)) == ["lunch?"]


def test_long_answers_are_flagged(store, tmp_path):
    b = ExportBuilder().channel("support", "C1").user("UA", "A").user("UQ", "Q")
    b.thread("support", "UQ", "tell me everything", [("UA", "x" * 201, ["UCURATOR"])])
    _import(store, b.write_dir(tmp_path / "e"))
    [ex] = _examples(store).values()
    assert [f["code"] for f in ex.flags] == ["too_long"] and ex.status == ExampleStatus.CANDIDATE


@pytest.mark.parametrize("breakage, message", [
    (lambda p: (p / "channels.json").unlink(), "channels.json not found"),
    (lambda p: (p / "support" / sorted(x.name for x in (p / "support").iterdir())[0]).write_text('[{"ts": "1",'),
     "malformed JSON"),
    (lambda p: (p / "channels.json").write_text('{"not": "a list"}'), "expected a list of channels"),
])
def test_broken_exports_name_the_file_and_write_nothing(store, tmp_path, breakage, message):
    path = support_workspace().write_dir(tmp_path / "export")
    breakage(path)
    with pytest.raises(ExportError, match=message) as err:
        _import(store, path)
    assert str(tmp_path) in str(err.value)
    assert _examples(store) == {}


def test_missing_corrupt_and_unknown(store, tmp_path):
    with pytest.raises(ExportError, match="no such file"):
        _import(store, tmp_path / "nope")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ExportError, match="not a readable Slack export zip"):
        _import(store, tmp_path / "bad.zip")
    with pytest.raises(ExportError, match="no channel named general"):
        _import(store, support_workspace().write_dir(tmp_path / "e"), channels=["general"])


def test_big_days_big_messages_emoji_and_rtl(store, tmp_path):
    b = ExportBuilder().channel("support", "C1").user("UA", "وكيل").user("UQ", "Q")
    big = "🙂 " + "ש" * 40_000
    for i in range(3_300):  # about 10,000 messages on one day
        b.thread("support", "UQ", f"سؤال رقم {i}؟ 🤔", [("UA", f"الجواب {i} ✅", ["UCURATOR"]), ("UQ", "شكرا")])
        b.clock -= 100
    b.thread("support", "UQ", "big one", [("UA", big, ["UA"])])
    path = b.write_dir(tmp_path / "e")
    assert len(list((path / "support").iterdir())) <= 2
    rules = Rules(curators=frozenset({"UCURATOR"}), max_answer_chars=50_000)
    summary = import_slack_export(store, path, label_emoji="white_check_mark", rules=rules)
    assert summary.imported == 3_301 and summary.approved == 3_300
    ex = _examples(store)
    assert ex["سؤال رقم 7؟ 🤔"].answer == "الجواب 7 ✅"
    assert ex["big one"].answer == big.strip()


def test_skin_tone_labels_and_json_summary(store, tmp_path):
    b = ExportBuilder().channel("support", "C1").user("UA", "A").user("UQ", "Q")
    b.thread("support", "UQ", "q?", [("UA", "a.", [])])
    b.messages["support"][-1]["reactions"] = [{"name": "white_check_mark::skin-tone-3", "users": ["UA"], "count": 1}]
    summary = _import(store, b.write_dir(tmp_path / "e"))
    assert json.loads(json.dumps(summary.as_dict()))["imported"] == 1


def test_items_not_in_slacks_shape_are_skipped_and_said_and_the_rest_imported(store, tmp_path):
    """users.json with a list id or a profile that is no object, a day file whose reactions is a string or
    whose ts is no timestamp: those items are left out (or the bad field ignored), each reason counted once
    per kind in the summary, and every good thread is still imported."""
    good = _import(store, support_workspace().write_dir(tmp_path / "good"))
    wanted = {(e.question, e.answer, e.status) for e in _examples(store).values()}
    with store.session() as s:
        for row in s.exec(select(Example)):
            s.delete(row)

    path = support_workspace().write_dir(tmp_path / "export")
    users = json.loads((path / "users.json").read_text())
    users += [{"id": ["U1", "U2"], "name": "list id"}, {"id": "UWEIRD", "profile": "not an object"},
              "not a user", {"name": "no id"}]
    (path / "users.json").write_text(json.dumps(users))
    day = sorted((path / "support").iterdir())[0]
    messages = json.loads(day.read_text())
    messages += [{"type": "message", "user": "UCUST1", "text": "odd", "ts": "1790000001.000001",
                  "reactions": "white_check_mark"},
                 {"type": "message", "user": "UCUST1", "text": "odd", "ts": "not a ts"},
                 {"type": "message", "user": ["U1"], "text": {"no": "text"}, "ts": "1790000002.000001",
                  "reactions": [{"name": ["white_check_mark"]}, 5]}]
    day.write_text(json.dumps(messages))

    summary = _import(store, path)
    assert {(e.question, e.answer, e.status) for e in _examples(store).values()} == wanted
    assert summary.imported == good.imported
    assert summary.skipped["users.json: a user without an id (left out)"] == 3
    assert summary.skipped["users.json: a profile that is no object (its name is not used)"] == 1
    assert summary.skipped["support/: reactions that are no list of {name, users} (ignored)"] == 2
    assert summary.skipped["support/: a message whose ts is no Slack timestamp (left out)"] == 1


def test_the_cli_says_what_it_skipped_in_one_line_each(ft_env, tmp_path):
    from typer.testing import CliRunner

    from ftbot.cli.main import app

    path = support_workspace().write_dir(tmp_path / "export")
    (path / "users.json").write_text(json.dumps(json.loads((path / "users.json").read_text())
                                                + [{"id": ["U1"]}, {"id": "UX", "profile": [1]}]))
    result = CliRunner().invoke(app, ["import-slack", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["imported"] > 0 and summary["skipped"]["users.json: a user without an id (left out)"] == 1
    result = CliRunner().invoke(app, ["import-slack", str(path)])
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "skipped: users.json: a profile that is no object (its name is not used)" in " ".join(result.output.split())


@pytest.mark.parametrize("breakage, message", [
    (lambda p: (p / "users.json").write_bytes(b"[" * 100_000), "users.json: JSON nested too deeply"),
    (lambda p: (p / "users.json").write_bytes(b'[{"id": "U\xff"}]'), "users.json: not UTF-8 text"),
    (lambda p: (p / "channels.json").write_text('[{"name": ["support"]}]'), "expected a list of channels"),
])
def test_unreadable_files_abort_in_one_line_naming_the_file(store, tmp_path, breakage, message):
    path = support_workspace().write_dir(tmp_path / "export")
    breakage(path)
    with pytest.raises(ExportError, match=message):
        _import(store, path)
    assert _examples(store) == {}


def test_any_export_imports_or_fails_in_one_line(store, tmp_path):
    """Property-based: users.json and a day file of any JSON shape either import (skipping what is not in
    Slack's shape) or raise ExportError naming the file, and a failed import stores nothing."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    json_ish = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                                          max_size=3), max_leaves=8)
    def slack_like(fields):
        return st.fixed_dictionaries({}, optional={k: json_ish | v for k, v in fields.items()})

    user = slack_like({"id": st.sampled_from(["UCURATOR", "UAGENT", "UNEW"]), "profile": json_ish,
                       "is_bot": st.booleans()})
    reaction = slack_like({"name": st.just("white_check_mark"), "users": st.lists(st.sampled_from(["UCURATOR", "UX"]))})
    message = slack_like({"ts": st.sampled_from(["1790000100.000001", "1790000200.000002", "x"]),
                          "thread_ts": st.just("1790000100.000001"), "user": st.sampled_from(["UCUST1", "UAGENT"]),
                          "text": st.text(max_size=30), "reactions": st.lists(reaction | json_ish, max_size=2),
                          "subtype": st.sampled_from(["bot_message", "channel_join"])})
    root = support_workspace().write_dir(tmp_path / "export")
    day = sorted((root / "support").iterdir())[0]
    originals = {p: p.read_bytes() for p in (root / "users.json", day)}
    outcomes = []

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(users=st.lists(user | json_ish, max_size=4) | json_ish,
           messages=st.lists(message | json_ish, max_size=5) | json_ish)
    def probe(users, messages) -> None:
        for path, data in originals.items():
            path.write_bytes(data)
        (root / "users.json").write_text(json.dumps(json.loads(originals[root / "users.json"]) + users
                                                    if isinstance(users, list) else users))
        day.write_text(json.dumps(json.loads(originals[day]) + messages if isinstance(messages, list) else messages))
        with store.session() as s:
            before = len(s.exec(select(Example)).all())
        try:
            summary = _import(store, root)
            outcomes.append("imported")
            assert summary.labels >= 1
        except ExportError as exc:
            outcomes.append("refused")
            assert str(root) in str(exc) and "\n" not in str(exc)
            with store.session() as s:
                assert len(s.exec(select(Example)).all()) == before

    probe()
    assert {"imported", "refused"} <= set(outcomes)


# --- bounded reads, no symlinks (issue 27) -------------------------------------------------------------------------

def test_a_member_over_the_file_limit_is_refused_after_reading_no_more_than_it(store, tmp_path):
    """A highly compressible day file in a zip is counted as it decompresses, not by its declared size."""
    import zipfile

    from bot.slack.export import OverLimit, ReadLimits

    path = support_workspace().write_zip(tmp_path / "export.zip")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("support/2099-01-01.json", "[" + " " * (3 << 20) + "]")
    limits = ReadLimits(max_file_mb=1, max_total_mb=1024)
    with pytest.raises(OverLimit, match=r"support/2099-01-01.json: over the 1 MB limit for one file") as err:
        _import(store, path, limits=limits)
    assert err.value.setting == "file" and "\n" not in str(err.value)
    assert _examples(store) == {}
    # Within the limits the same export imports.
    assert _import(store, support_workspace().write_zip(tmp_path / "ok.zip"), limits=limits).imported == 7


def test_an_export_over_the_total_limit_is_refused(store, tmp_path):
    from bot.slack.export import OverLimit, ReadLimits

    path = support_workspace().write_dir(tmp_path / "export")
    total = sum(p.stat().st_size for p in path.rglob("*.json"))
    with pytest.raises(OverLimit, match="the export is over the .* limit for all its files") as err:
        _import(store, path, limits=ReadLimits(max_file_mb=total / 2**20, max_total_mb=(total - 1) / 2**20))
    assert err.value.setting == "total" and _examples(store) == {}


@pytest.mark.parametrize("linked", ["day", "users.json", "channels.json", "folder"])
def test_a_symlink_in_an_export_folder_is_refused_not_followed(store, tmp_path, linked):
    path = support_workspace().write_dir(tmp_path / "export")
    secret = tmp_path / "secret.json"
    secret.write_text("[]")
    if linked == "folder":  # the channel's folder itself is a link to another folder
        real = tmp_path / "elsewhere"
        (path / "support").rename(real)
        (path / "support").symlink_to(real, target_is_directory=True)
        victim = "support"
    else:
        target = sorted((path / "support").iterdir())[0] if linked == "day" else path / linked
        target.unlink()
        target.symlink_to(secret)
        victim = target.name
    with pytest.raises(ExportError, match=f"{victim} is a symbolic link, which is not followed"):
        _import(store, path)
    assert _examples(store) == {}


def test_a_symlink_member_in_a_zip_is_refused(store, tmp_path):
    import stat
    import zipfile

    path = support_workspace().write_zip(tmp_path / "export.zip")
    link = zipfile.ZipInfo("support/2099-01-01.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ExportError, match=r"support/2099-01-01.json: a symbolic link, which is not followed"):
        _import(store, path)
    assert _examples(store) == {}
