"""`ft doctor` as a user runs it: what passes here passes, and what is broken is named in one line.

No model server runs in tests, so its check is shown failing against a closed port; Slack is the fake
Web API server (fakes/fake_slack.py), reached through FT_SLACK_API_URL as the bot reaches it.
"""

import asyncio
import json
import socket

from typer.testing import CliRunner

from fakes.fake_slack import FakeSlack
from ftbot.cli import doctor
from ftbot.cli.main import app

runner = CliRunner()


def ft(*args):
    return runner.invoke(app, list(args))


def closed_port_url() -> str:
    with socket.socket() as sock:  # bound, then closed: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def lines(output: str, mark: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(mark)]


def test_a_migrated_store_passes_and_a_missing_model_server_is_named(ft_env, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv("FT_MODEL_SERVER_URL", url)
    assert ft("init").exit_code == 0

    result = ft("doctor")
    assert result.exit_code == 1, result.output
    failed = lines(result.output, "✗")
    assert len(failed) == 1 and "FT_MODEL_SERVER_URL" in failed[0] and url in failed[0], result.output
    passed = "\n".join(lines(result.output, "✓"))
    for name in ("settings", "database", "data dir", "embedding model"):
        assert f"✓ {name}:" in passed, result.output
    assert "migrations at head" in passed
    assert "Traceback" not in result.output

    checks = {c["name"]: c for c in json.loads(ft("doctor", "--json").stdout)}
    assert checks["model server"]["status"] == "fail" and checks["database"]["status"] == "ok"
    assert checks["approvals channel"]["status"] == "warn"  # FT_APPROVALS_CHANNEL unset: a warning only


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_DATA_DIR", str(tmp_path))
    for name, value in (("FT_VAL_PERCENT", "500"), ("FT_TRAIN_SCHEDULE", "not cron")):
        monkeypatch.setenv(name, value)
        result = ft("doctor")  # the doctor names it among its checks
        assert result.exit_code == 1 and "Traceback" not in result.output
        line = next(line for line in result.output.splitlines() if line.startswith("✗ settings"))
        assert name in line, result.output
        other = ft("status")  # any other command stops at once, in one line
        assert other.exit_code == 1 and name in other.output and len(other.output.strip().splitlines()) == 1
        settings, check = doctor.load_settings()  # the doctor's own reading says the same
        assert settings is None and check.status == "fail" and check.detail.startswith(name)
        monkeypatch.delenv(name)


def test_an_unreachable_or_unmigrated_database_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FT_MODEL_SERVER_URL", closed_port_url())
    monkeypatch.setenv("FT_DATABASE_URL", "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none")
    result = ft("doctor")
    assert result.exit_code == 1
    db = next(line for line in result.output.splitlines() if "database:" in line)
    assert db.startswith("✗") and "FT_DATABASE_URL" in db and "127.0.0.1:1" in db
    assert "hunter2" not in result.output  # passwords are never printed

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # a database nobody migrated
    monkeypatch.setenv("FT_DATABASE_URL", f"sqlite:///{empty}")
    db = next(line for line in ft("doctor").output.splitlines() if "database:" in line)
    assert db.startswith("✗") and "ft init" in db


async def test_the_slack_token_is_checked_with_auth_test(ft_env, monkeypatch):
    slack = await FakeSlack().start()
    try:
        token = "xoxb-doctor-secret"
        monkeypatch.setenv("SLACK_BOT_TOKEN", token)
        monkeypatch.setenv("FT_SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("FT_MODEL_SERVER_URL", closed_port_url())
        monkeypatch.setenv("FT_APPROVALS_CHANNEL", "C0APPROVALS")
        # The CLI runs its own event loops (and blocks): off this test's loop, which serves the fake Slack.
        result = await asyncio.to_thread(ft, "doctor")
        assert "✓ Slack: token works: bot @ftbot" in result.output, result.output
        assert "✗ Slack mode: SLACK_SIGNING_SECRET not set" in result.output
        assert "✓ approvals channel" in result.output
        assert token not in result.output
        assert slack.calls_to("auth.test")

        monkeypatch.setenv("SLACK_SIGNING_SECRET", "shh")
        result = await asyncio.to_thread(ft, "doctor")
        assert "✓ Slack mode: HTTP" in result.output, result.output
    finally:
        await slack.stop()
