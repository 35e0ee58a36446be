"""`ft deploy`, `ft rollback`, `ft reject` and `ft ask` as an operator runs them, against a real `ft serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.states import VersionStatus
from ftbot.cli.main import app
from storage import open_store
from storage.models import ModelVersion
from tests.serving.conftest import BASE
from tests.serving.test_vllm import FT, free_port

runner = CliRunner()
KEY = "cli-test-key-1"


def versions_awaiting_approval(db: str, tiny):
    """A store at `db` with support-v1 and -v2 (servable) and -v3 (a corrupted adapter) awaiting approval."""
    store = open_store(db)
    with store.session() as s:
        for name, adapter in (("support-v1", "a1"), ("support-v2", "a2"), ("support-v3", "corrupted")):
            s.add(ModelVersion(name=name, adapter_path=str(tiny[adapter]), base_model=BASE))
    return store


@pytest.fixture
def served(tiny, tmp_path, monkeypatch):
    """`ft serve` on the tiny base in a real process, a store with versions awaiting approval."""
    db = f"sqlite:///{tmp_path / 'ftbot.db'}"
    store = versions_awaiting_approval(db, tiny)
    port = free_port()
    # With a key, as in production: `ft deploy`, `ft ask` and the smoke test send it.
    env = {**os.environ, "FT_DATA_DIR": str(tmp_path), "FT_DATABASE_URL": db, "FT_MODEL_SERVER_API_KEY": KEY}
    proc = subprocess.Popen([str(FT), "serve", "--model", str(tiny["base"]), "--port", str(port), "--max-lora-rank",
                             "8"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a guard against a hang, not a speed test: a loaded CI core starts it slowly
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "ft serve did not start"
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    for key, value in (("FT_DATA_DIR", str(tmp_path)), ("FT_DATABASE_URL", db), ("FT_MODEL_SERVER_URL", url),
                       ("FT_MODEL_SERVER_API_KEY", KEY)):
        monkeypatch.setenv(key, value)
    yield store, url
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    store.close()


def ft_json(*args):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def status_of(store, name):
    with store.session() as s:
        return s.exec(select(ModelVersion).where(ModelVersion.name == name)).one().status


@pytest.mark.skipif(not FT.exists(), reason="the ft script is not installed in this environment")
def test_deploy_ask_rollback_reject_from_the_command_line(served):
    store, url = served
    deploy_ask_rollback_reject(store)


def deploy_ask_rollback_reject(store):
    """The operator's loop, against whichever server FT_MODEL_SERVER_URL names (also run on vLLM)."""
    before = ft_json("ask", "How long does the free trial last?")
    assert before["model"] == BASE and before["deployed"] is None and before["answer"]
    # What the bot would send, and why: the model's own words, the retrieved pairs and the check's signals. The
    # index is empty, so nothing backs the (random) model's words: the bot would say it does not know.
    assert before["model_answer"] and before["seconds"] > 0 and before["retrieval"] and before["context"] == []
    assert before["declined"] and before["grounding"]["reason"] == "no_context"
    assert before["answer"].startswith("I don't know")

    assert ft_json("deploy", "support-v1")["deployed"] == "support-v1"
    assert ft_json("ask", "How long does the free trial last?")["model"] == "support-v1"
    result = ft_json("deploy", "support-v2")
    assert (result["deployed"], result["retired"]) == ("support-v2", "support-v1")
    assert ft_json("ask", "Hello?")["model"] == "support-v2"

    assert ft_json("rollback")["deployed"] == "support-v1"
    assert ft_json("ask", "Hello?")["model"] == "support-v1"

    # A corrupted adapter: one line, non-zero, nothing changed.
    bad = runner.invoke(app, ["deploy", "support-v3"])
    assert bad.exit_code == 1 and "could not load support-v3" in bad.output and "Traceback" not in bad.output
    assert status_of(store, "support-v3") == VersionStatus.AWAITING_APPROVAL
    assert ft_json("ask", "Hello?")["model"] == "support-v1"
    assert ft_json("reject", "support-v3")["ok"] is True
    assert status_of(store, "support-v3") == VersionStatus.REJECTED

    missing = runner.invoke(app, ["deploy", "support-v9"])
    assert missing.exit_code == 1 and "no version named support-v9" in missing.output

    # The server holds the deployed version and the rollback target, nothing that failed or was replaced.
    request = urllib.request.Request(
        os.environ["FT_MODEL_SERVER_URL"] + "/v1/models",
        headers={"Authorization": f"Bearer {os.environ.get('FT_MODEL_SERVER_API_KEY', '')}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        adapters = {m["id"] for m in json.load(resp)["data"]} - {BASE}
    assert adapters == {"support-v1", "support-v2"}


def test_ask_with_the_server_down_is_one_line(ft_env, monkeypatch):
    monkeypatch.setenv("FT_MODEL_SERVER_URL", f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["ask", "Is anyone there?"])
    assert result.exit_code == 1 and "does not answer" in result.output and "Traceback" not in result.output


def test_the_deploy_path_refuses_a_pickled_adapter_before_asking_the_server(ft_env, tiny, monkeypatch):
    """The server is not even asked (it is down here): vLLM would unpickle adapter_model.bin."""
    store = open_store(ft_env)
    try:
        with store.session() as s:
            s.add(ModelVersion(name="support-p1", adapter_path=str(tiny["pickled"]), base_model=BASE))
        monkeypatch.setenv("FT_MODEL_SERVER_URL", f"http://127.0.0.1:{free_port()}")
        result = runner.invoke(app, ["deploy", "support-p1"])
        assert result.exit_code == 1 and "adapter_model.bin (a pickle)" in result.output, result.output
        assert "unreachable" not in result.output and status_of(store, "support-p1") == VersionStatus.AWAITING_APPROVAL
    finally:
        store.close()


def test_ask_without_the_servers_key_is_one_line(served, monkeypatch):
    monkeypatch.setenv("FT_MODEL_SERVER_API_KEY", "not-the-key")
    result = runner.invoke(app, ["ask", "Is anyone there?", "--no-retrieval"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Unauthorized: the server wants another API key" in result.output
