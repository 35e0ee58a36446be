"""The `ft` command as a user runs it, on SQLite and PostgreSQL."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.slack_export import support_workspace
from ftbot.cli.main import app

runner = CliRunner()
FT = shutil.which("ft", path=str(Path(sys.executable).parent))


def ft(*args):
    result = runner.invoke(app, list(args))
    return result


def ft_json(*args):
    result = ft(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_init_import_list_decide_status(ft_env, tmp_path):
    assert ft("init").exit_code == 0
    export = support_workspace().write_dir(tmp_path / "export")
    summary = ft_json("import-slack", str(export), "--channel", "support", "--json")
    assert (summary["imported"], summary["approved"], summary["candidates"]) == (6, 2, 4)

    examples = ft_json("examples", "list", "--json")
    assert {"id", "status", "question", "answer", "flags", "source"} <= set(examples[0])
    candidates = ft_json("examples", "list", "--status", "candidate", "--json")
    assert len(candidates) == 4
    solo = next(e for e in candidates if e["question"] == "what does the Solo plan cost")
    datev = next(e for e in candidates if e["flags"])

    result = ft("examples", "approve", str(solo["id"]))
    assert result.exit_code == 0 and f"approved 1: {solo['id']}" in result.stdout
    assert ft("examples", "reject", str(datev["id"])).exit_code == 0
    status = ft_json("status", "--json")
    assert status["examples"] == {"candidate": 2, "approved": 3, "rejected": 1}
    assert status["snapshots"] == 0 and status["deployed"] is None and status["jobs"]["queued"] == 0

    snap = ft_json("dataset", "snapshot", "--json")
    assert snap["created"] and snap["examples"] == 3 and snap["train"] + snap["validation"] == 3
    assert ft_json("status", "--json")["snapshots"] == 1

    missing = ft("examples", "approve", "9999")
    assert missing.exit_code == 1 and "no example with id 9999" in missing.output


def test_export_formats_and_splits(ft_env, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_VAL_PERCENT", "50")
    ft("import-slack", str(support_workspace().write_dir(tmp_path / "export")))
    ft("examples", "approve", *[str(e["id"]) for e in ft_json("examples", "list", "--json") if not e["flags"]])
    lines = {}
    for split in ("train", "validation", "all"):
        result = ft("examples", "export", "--split", split)
        assert result.exit_code == 0
        lines[split] = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines["all"]) == 4
    assert sorted(map(json.dumps, lines["train"] + lines["validation"])) == sorted(map(json.dumps, lines["all"]))
    first = lines["all"][0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"]

    out = tmp_path / "pc.jsonl"
    assert ft("examples", "export", "--format", "prompt-completion", "-o", str(out)).exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"prompt", "completion"} == set(records[0]) and len(records) == 4
    assert ft("examples", "export", "--format", "csv").exit_code != 0
    for fmt in ("openai", "preference"):  # a folder that does not exist: one line, no traceback
        missing = ft("examples", "export", "--format", fmt, "-o", str(tmp_path / "missing" / "dir" / "x.jsonl"))
        assert missing.exit_code == 1 and "can't write" in missing.output and "No such file" in missing.output
        assert "Traceback" not in missing.output and len(missing.output.strip().splitlines()) == 1


def test_jsonl_import_reports_bad_lines_and_keeps_good_ones(ft_env, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([
        json.dumps({"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "Q1?"},
                                 {"role": "assistant", "content": "A1."}]}),
        json.dumps({"prompt": "Q2?", "completion": "A2."}),
        "{not json",
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
        json.dumps({"prompt": "Q3, mail me at x@example.com", "completion": "A3."}),
    ]) + "\n", encoding="utf-8")
    result = ft("examples", "import", str(path), "--approve")
    assert result.exit_code == 1
    assert f"{path}:3: not valid JSON" in result.output
    assert f"{path}:4: a conversation must end with a user message" in result.output
    stored = ft_json("examples", "list", "--json")
    assert [(e["question"], e["status"]) for e in stored] == [
        ("Q1?", "approved"), ("Q2?", "approved"), ("Q3, mail me at <email>", "approved")]
    # Idempotent: the same file again adds nothing.
    ft("examples", "import", str(path))
    assert len(ft_json("examples", "list", "--json")) == 3


def test_real_ft_command_fails_in_one_line(ft_env, tmp_path):
    """Bad input: one line naming the file, non-zero exit, no traceback, nothing written."""
    env = {**os.environ}
    bad_zip = tmp_path / "export.zip"
    bad_zip.write_bytes(b"garbage")
    proc = subprocess.run([FT, "import-slack", str(bad_zip)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and str(bad_zip) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    no_channels = support_workspace().write_zip(tmp_path / "nochan.zip")
    import zipfile
    with zipfile.ZipFile(no_channels) as src, zipfile.ZipFile(tmp_path / "stripped.zip", "w") as dst:
        for item in src.namelist():
            if item != "channels.json":
                dst.writestr(item, src.read(item))
    proc = subprocess.run([FT, "import-slack", str(tmp_path / "stripped.zip")], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "channels.json not found" in proc.stderr and "Traceback" not in proc.stderr

    proc = subprocess.run([FT, "status", "--json"], capture_output=True, text=True, env=env)
    assert json.loads(proc.stdout)["examples"] == {"candidate": 0, "approved": 0, "rejected": 0}

    env["FT_VAL_PERCENT"] = "lots"
    proc = subprocess.run([FT, "status"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "FT_VAL_PERCENT" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("db", ["postgresql+psycopg://nobody@127.0.0.1:1/none"])
def test_unreachable_database_is_one_line(tmp_path, db):
    env = {**os.environ, "FT_DATABASE_URL": db, "FT_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([FT, "status"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and proc.stderr.startswith("error: database unavailable")
    assert "Traceback" not in proc.stderr


def test_jsonl_import_flags_too_long_answers_and_survives_a_deeply_nested_line(ft_env, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_MAX_ANSWER_CHARS", "50")
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([
        json.dumps({"prompt": "Q1?", "completion": "A1."}).encode(),
        b'{"prompt": ' + b"[" * 100_000 + b"\n"[:0],
        json.dumps({"prompt": "Q2?", "completion": "A" * 51}).encode(),
        b'{"prompt": "Q3?", "completion": "caf\xe9"}',
        json.dumps({"prompt": "Q4?", "completion": "A4."}).encode(),
    ]) + b"\n")
    result = ft("examples", "import", str(path), "--approve")
    assert result.exit_code == 1
    assert f"{path}:2: nested too deeply to read" in result.output
    assert f"{path}:4: not UTF-8 text" in result.output
    assert "imported 3" in result.output and "1 flagged too long (over FT_MAX_ANSWER_CHARS=50)" in result.output
    stored = {e["question"]: e for e in ft_json("examples", "list", "--json")}
    assert {q: e["status"] for q, e in stored.items()} == {"Q1?": "approved", "Q2?": "candidate", "Q4?": "approved"}
    assert [f["code"] for f in stored["Q2?"]["flags"]] == ["too_long"]
    # A curator may still approve it by hand, as a flagged pair from Slack.
    assert ft("examples", "approve", str(stored["Q2?"]["id"])).exit_code == 0


def test_any_jsonl_file_imports_its_good_lines_and_reports_the_rest(ft_env, tmp_path):
    """Property-based over the JSONL reader and `ft examples import`: whatever the lines hold, each non-blank
    line is one pair or one reported bad line, nothing raises, and a file of bad lines stores nothing."""
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    from storage.jsonl import read_records

    text = st.text(max_size=20)
    json_ish = st.recursive(st.none() | st.booleans() | st.integers() | text,
                            lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=8)
    pair = st.one_of(st.fixed_dictionaries({"prompt": text | json_ish, "completion": text | json_ish}),
                     st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
                         {"role": st.sampled_from(["system", "user", "assistant"]) | json_ish,
                          "content": text | json_ish}), max_size=3) | json_ish}))
    line = st.one_of(pair.map(json.dumps), json_ish.map(json.dumps), st.binary(max_size=40).map(
        lambda b: b.decode("latin-1")), st.integers(1, 3000).map(lambda n: "[" * n))
    counts = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lines=st.lists(line, max_size=6), raw_tail=st.binary(max_size=20))
    # One file with a good pair and one without, whatever the draw.
    @example(lines=[json.dumps({"prompt": "How do I reset my password?", "completion": "Use the reset link."})],
             raw_tail=b"")
    @example(lines=["{not json"], raw_tail=b"\xff")
    def probe(lines, raw_tail) -> None:
        path = tmp_path / "probe.jsonl"
        data = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw_tail.replace(b"\n", b"")
        path.write_bytes(data)
        records = list(read_records(path))
        nonblank = [n for n, raw in enumerate(data.split(b"\n"), 1) if not _decodes(raw) or raw.decode().strip()]
        assert [n for n, _, _ in records] == nonblank
        assert all((pair is None) != (problem is None) for _, pair, problem in records)
        good = sum(1 for _, pair, _ in records if pair is not None)
        before = len(ft_json("examples", "list", "--json"))
        result = ft("examples", "import", str(path))
        assert result.exit_code in (0, 1) and (result.exception is None or isinstance(result.exception, SystemExit)), \
            result.exception
        after = len(ft_json("examples", "list", "--json"))
        assert before <= after <= before + good
        counts.append(good)

    probe()
    assert any(counts) and not all(counts)


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("env, args, message", [
    ({"FT_DATABASE_URL": "nonsense"}, ["status"], "error: FT_DATABASE_URL is not a database URL"),
    ({"FT_DATABASE_URL": "", "FT_DATA_DIR": "/proc/nope"}, ["status"], "error: FT_DATA_DIR=/proc/nope: cannot hold"),
    ({"FT_DATABASE_URL": "", "FT_DATA_DIR": "/proc/nope"}, ["init"],
     "error: FT_DATA_DIR=/proc/nope: cannot be created"),
    ({"FT_MODEL_SERVER_URL": "nonsense"}, ["ask", "hi"], "error: bad setting: FT_MODEL_SERVER_URL: Value error, "
                                                         "'nonsense' is not an http(s) URL"),
    ({"FT_MODEL_SERVER_URL": "http://127.0.0.1:notaport"}, ["ask", "hi"], "FT_MODEL_SERVER_URL"),
    ({}, ["examples", "approve", "99999999999999999999999"], "error: no example with id 99999999999999999999999"),
    ({}, ["jobs", "watch", "99999999999999999999999"], "error: no job 99999999999999999999999"),
])
def test_bad_settings_and_impossible_ids_are_one_line(ft_env, env, args, message):
    proc = subprocess.run([FT, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr
