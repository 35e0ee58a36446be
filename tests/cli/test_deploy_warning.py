"""`ft versions list` shows the forgetting warning, and `ft deploy` of a warned version asks to confirm first
(`--yes` skips the question): the deployment controller's one rule (serving.deploy.needs_confirming), as an operator
meets it. A stub model server stands behind the deploy."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.contract import EvalScores, PreferenceStage, Scores, VersionMetrics
from core.states import VersionStatus
from ftbot.cli.main import app
from storage import open_store
from storage.models import ModelVersion
from tests.model_stub import ModelStub

runner = CliRunner()


def probe_fell(base: float, new: float, preference: PreferenceStage | None = None) -> dict:
    return VersionMetrics(probe=new, eval=EvalScores(base=Scores(probe=base), new=Scores(probe=new)),
                          preference=preference).to_json()


@pytest.fixture
def versions(ft_env):
    """ft-1-v1: the general probe fell from 75% to 58% (warned); ft-2-v1: 75% to 70% (not), SFT + preference kept."""
    store = open_store(ft_env)
    with store.session() as s:
        s.add(ModelVersion(name="ft-1-v1", adapter_path="/adapters/ft-1-v1", metrics=probe_fell(0.75, 0.58)))
        s.add(ModelVersion(name="ft-2-v1", adapter_path="/adapters/ft-2-v1", metrics=probe_fell(
            0.75, 0.70, PreferenceStage(records=30, trained=True, kept=True, reason="it gains and loses nothing"))))
    yield store
    store.close()


@pytest.fixture
def model_server(monkeypatch):
    """The stub model server on a loop of its own (the `ft` command runs its own asyncio.run in this thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stub = asyncio.run_coroutine_threadsafe(ModelStub().start(), loop).result(10)
    monkeypatch.setenv("FT_MODEL_SERVER_URL", stub.url)
    yield stub
    asyncio.run_coroutine_threadsafe(stub.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def status_of(store, name: str) -> str:
    with store.session() as s:
        return s.exec(select(ModelVersion).where(ModelVersion.name == name)).one().status


def test_ft_versions_prints_the_warning(versions):
    listed = runner.invoke(app, ["versions", "list"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    [warning] = [line for line in lines if line.startswith("warning:")]
    assert warning.startswith("warning: ft-1-v1: forgetting: general questions answered fell from 75% (base) to 58%")
    assert "`ft deploy ft-1-v1` asks to confirm" in warning
    assert "75% → 58%" in next(row for row in lines if "ft-1-v1" in row and "│" in row)  # the probe column
    assert "SFT + preference" in next(row for row in lines if "ft-2-v1" in row and "│" in row)
    as_json = {v["name"]: v for v in json.loads(runner.invoke(app, ["versions", "list", "--json"]).stdout)}
    assert "fell from 75% (base) to 58%" in as_json["ft-1-v1"]["forgetting_warning"]
    assert as_json["ft-2-v1"]["forgetting_warning"] is None


def test_ft_deploy_of_a_warned_version_asks_and_no_deploys_nothing(versions, model_server):
    declined = runner.invoke(app, ["deploy", "ft-1-v1"], input="n\n")
    assert declined.exit_code == 1 and "fell from 75% (base) to 58%" in declined.output
    assert "Deploy ft-1-v1 anyway?" in declined.output and "not deployed" in declined.output
    assert status_of(versions, "ft-1-v1") == VersionStatus.AWAITING_APPROVAL and not model_server.adapters

    as_json = runner.invoke(app, ["deploy", "ft-1-v1", "--json"])  # nobody to ask: one line, nothing changed
    assert as_json.exit_code == 1 and "--yes" in as_json.output and not model_server.adapters

    confirmed = runner.invoke(app, ["deploy", "ft-1-v1"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "ft-1-v1 is deployed" in confirmed.output and set(model_server.adapters) == {"ft-1-v1"}


def test_ft_deploy_yes_skips_the_question_and_an_unwarned_version_is_not_asked(versions, model_server):
    quiet = runner.invoke(app, ["deploy", "ft-2-v1"], input="")  # no input to give: it must not ask
    assert quiet.exit_code == 0 and "anyway?" not in quiet.output and status_of(versions, "ft-2-v1") == "deployed"
    yes = runner.invoke(app, ["deploy", "ft-1-v1", "--yes"], input="")
    assert yes.exit_code == 0 and "anyway?" not in yes.output, yes.output
    assert status_of(versions, "ft-1-v1") == VersionStatus.DEPLOYED
