"""A real vLLM (the CPU build in .venv-vllm, installed by `make vllm`) behind `ft serve --vllm`.

One vLLM is started for the module (about 25 s) and the tests run in order on it, as an operator would:
deploy, ask, roll back and reject with `ft`; vLLM is killed and comes back with the deployed and previous
adapters; the official openai client talks to it; an adapter is unloaded; a version trained on a 4-bit
base deploys onto vLLM's bf16 base and passes its smoke test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.contract import VersionMetrics
from serving.client import ModelClient, ModelServerError
from serving.vllm import ENTRY_MODULE, VllmNotFound, find_vllm
from storage import Store
from storage.models import ModelVersion
from tests.serving.conftest import BASE
from tests.serving.test_cli_deploy import deploy_ask_rollback_reject, ft_json, versions_awaiting_approval
from tests.serving.test_vllm import FT, free_port

pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not FT.exists(), reason="the ft script is not installed")]
KEY = "vllm-test-key-1"  # FT_MODEL_SERVER_API_KEY: vLLM requires it, every `ft` command and client here sends it


@dataclass
class Served:
    store: Store
    url: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def loaded(url: str) -> set[str]:
    request = urllib.request.Request(url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return {m["id"] for m in json.load(resp)["data"]} - {BASE}


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_for(check, served: Served, timeout_s: float = 240.0, what: str = "vLLM to serve"):
    deadline = time.monotonic() + timeout_s
    while True:
        assert served.proc.poll() is None, (f"ft serve --vllm exited while waiting for {what}:\n"
                                            f"{served.output()[-4000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{served.output()[-4000:]}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def vllm_served(tiny, tmp_path_factory):
    try:
        find_vllm()
    except VllmNotFound as exc:
        pytest.skip(f"{exc} (make test installs it on Linux x86_64)")
    root = tmp_path_factory.mktemp("vllm")
    db = f"sqlite:///{root / 'ftbot.db'}"
    store = versions_awaiting_approval(db, tiny)
    port = free_port()
    env = {**os.environ, "FT_DATA_DIR": str(root), "FT_DATABASE_URL": db,
           "FT_MODEL_SERVER_URL": f"http://127.0.0.1:{port}", "FT_MODEL_SERVER_API_KEY": KEY}
    log = root / "vllm.log"
    with open(log, "w") as out:  # a file, not a pipe: vLLM logs a lot, and a full pipe would block it
        proc = subprocess.Popen([str(FT), "serve", "--vllm", "--model", str(tiny["base"]), "--port", str(port),
                                 "--kv-cache-gib", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    served = Served(store, f"http://127.0.0.1:{port}", port, env, log, proc)
    try:
        wait_for(lambda: healthy(served.url), served)
        yield served
    finally:
        servers = [pid for pid in _alive() if _is_vllm(pid, port)]
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        store.close()
    left = [pid for server in servers for pid in _group(server)]
    assert not left, f"ft serve --vllm stopped but left vLLM processes running: {left}"


@pytest.fixture
def ft_on(vllm_served, monkeypatch):
    for key in ("FT_DATA_DIR", "FT_DATABASE_URL", "FT_MODEL_SERVER_URL", "FT_MODEL_SERVER_API_KEY"):
        monkeypatch.setenv(key, vllm_served.env[key])
    return vllm_served


def test_vllm_runs_with_cpu_settings_and_the_adapters_rank(ft_on):
    log = ft_on.output()
    assert "(CPU build)" in log and "--max-lora-rank 8" in log  # the stored adapters are rank 8
    assert f"-m {ENTRY_MODULE} --model" in log


async def test_vllm_refuses_requests_without_the_key(ft_on, tiny):
    """Nobody without FT_MODEL_SERVER_API_KEY lists, asks, loads or unloads; the key never shows in `ps`."""
    import aiohttp

    loaded_before = loaded(ft_on.url)
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
            for method, path, body in (("GET", "/v1/models", None),
                                       ("POST", "/v1/chat/completions",
                                        {"model": BASE, "messages": [{"role": "user", "content": "hi"}]}),
                                       ("POST", "/v1/unload_lora_adapter", {"lora_name": "support-v1"}),
                                       ("POST", "/v1/load_lora_adapter",
                                        {"lora_name": "intruder", "lora_path": str(tiny["a2"])})):
                async with http.request(method, ft_on.url + path, json=body, headers=headers) as resp:
                    assert (resp.status, await resp.json()) == (401, {"error": "Unauthorized"}), (path, headers)
        async with http.get(ft_on.url + "/health") as resp:
            assert resp.status == 200
    assert loaded(ft_on.url) == loaded_before
    client = ModelClient(ft_on.url)  # no key
    try:
        with pytest.raises(ModelServerError) as err:
            await client.models()
        assert err.value.status == 401 and "none was sent" in err.value.message
    finally:
        await client.close()
    servers = [pid for pid in _alive() if _is_vllm(pid, ft_on.port)]
    assert servers and all(KEY.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in servers)
    assert KEY not in ft_on.output()


def test_deploy_ask_rollback_reject_on_vllm(ft_on):
    deploy_ask_rollback_reject(ft_on.store)


def test_a_restarted_vllm_gets_the_deployed_and_previous_adapters_back(ft_on):
    assert loaded(ft_on.url) == {"support-v1", "support-v2"}  # as the deploy loop left it
    server = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _is_vllm(int(pid), ft_on.port)]
    assert len(server) == 1, server
    crashed = _group(server[0])
    assert len(crashed) >= 2  # the API server and its engine (and worker) processes
    os.kill(server[0], signal.SIGKILL)  # a crash: the supervisor starts it again and re-registers
    wait_for(lambda: not healthy(ft_on.url), ft_on, timeout_s=30, what="vLLM to go down")
    wait_for(lambda: loaded(ft_on.url) == {"support-v1", "support-v2"}, ft_on, what="the adapters to come back")
    assert not _group(server[0]), "the crashed server's engine processes were left running"
    assert ft_json("ask", "How long does the free trial last?")["model"] == "support-v1"
    assert "re-registered adapters: support-v1 (loaded), support-v2 (loaded)" in ft_on.output()


async def test_the_official_openai_client_talks_to_vllm(ft_on):
    from tests.serving.contract import check_with_openai_client

    await check_with_openai_client(ft_on.url, BASE, "support-v1", api_key=KEY)


async def test_the_official_openai_client_streams_from_vllm(ft_on):
    from tests.serving.contract import check_streaming_with_openai_client

    for model in (BASE, "support-v1"):
        await check_streaming_with_openai_client(ft_on.url, model, api_key=KEY)


# vLLM's own additions to OpenAI's chunks (null unless asked for); the embedded server leaves them out.
VLLM_ONLY = {"token_ids", "prompt_token_ids", "prompt_text", "system_fingerprint", "metrics"}


def shape(event) -> tuple:
    """What a streamed event holds, without its values: its keys, its choices' and deltas' keys."""
    if not isinstance(event, dict):
        return (event,)
    choices = tuple((tuple(sorted(set(c) - VLLM_ONLY)), tuple(sorted(c["delta"])), c["finish_reason"] is None)
                    for c in event.get("choices", []))
    return tuple(sorted(set(event) - VLLM_ONLY)), choices, tuple(sorted(event.get("usage") or {}))


async def test_the_embedded_server_streams_the_events_vllm_streams(ft_on, server):
    """The same streamed request to vLLM and to `ft serve` on the same base: the same kinds of events in the same
    order, and ModelClient reads the same text from both as their whole answers."""
    from tests.serving.contract import sse_events

    body = {"model": BASE, "messages": [{"role": "user", "content": "How long does the free trial last?"}],
            "max_tokens": 8, "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    theirs, ours = await sse_events(ft_on.url, body, api_key=KEY), await sse_events(server.url, body)
    assert theirs[:2] == ours[:2] == (200, "text/event-stream; charset=utf-8")
    collapsed = [[s for i, s in enumerate(kinds) if i == 0 or s != kinds[i - 1]]  # one per run of content chunks
                 for kinds in ([shape(e) for e in theirs[2]], [shape(e) for e in ours[2]])]
    assert collapsed[0] == collapsed[1], (theirs[2], ours[2])

    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    for url, key in ((ft_on.url, KEY), (server.url, None)):
        client = ModelClient(url, api_key=key)
        try:
            pieces.clear()
            whole = await client.chat("support-v1" if key else BASE, body["messages"], max_tokens=16)
            assert await client.complete("support-v1" if key else BASE, body["messages"], max_tokens=16,
                                         on_text=collect) == whole == "".join(pieces)
            pieces.clear()
            with pytest.raises(ModelServerError) as err:
                await client.complete("no-such-adapter", body["messages"], on_text=collect)
            assert err.value.status == 404 and pieces == []
        finally:
            await client.close()


async def test_unload_takes_an_adapter_off_vllm(ft_on):
    client = ModelClient(ft_on.url, api_key=KEY)
    try:
        await client.unload_adapter("support-v2")
        assert loaded(ft_on.url) == {"support-v1"}
        with pytest.raises(ModelServerError) as err:
            await client.chat("support-v2", [{"role": "user", "content": "hi"}], max_tokens=4)
        assert err.value.status == 404
        with pytest.raises(ModelServerError) as err:
            await client.unload_adapter("support-v2")
        assert err.value.status == 404
        assert await client.chat("support-v1", [{"role": "user", "content": "hi"}], max_tokens=4) is not None
    finally:
        await client.close()


def test_a_qlora_version_deploys_on_the_bf16_base_and_passes_its_smoke_test(ft_on, tiny, tmp_path):
    """Trained on the 4-bit base (bitsandbytes), evaluated by the trainer on the fp32 base, served by vLLM on
    its bf16 base: the smoke test compares vLLM's answers with the evaluation's (train/serve parity)."""
    pytest.importorskip("bitsandbytes", reason="the qlora extra is not installed")
    from tests.trainer.conftest import rows
    from trainer.config import TrainConfig
    from trainer.evaluate import evaluate
    from trainer.train import train_adapter

    cfg = TrainConfig(base_model=str(tiny["base"]), rank=8, alpha=16, dropout=0.0, epochs=6, lr=1e-2, batch_size=2,
                      max_length=256, early_stopping_patience=0, max_new_tokens=16, warmup_ratio=0.0, replay=False,
                      retrieval=False, threads=1, qlora=True)
    adapter = tmp_path / "ft-7-v1"
    train_adapter(cfg, rows(), [], adapter)
    assert json.loads((adapter / "train_config.json").read_text())["device"]["qlora"] is True
    evaluation = evaluate(str(tiny["base"]), rows()[:3], adapter, system_prompt=cfg.system_prompt,
                          max_new_tokens=cfg.max_new_tokens, probe=[], threads=1)
    with ft_on.store.session() as s:
        s.add(ModelVersion(name="support-q1", adapter_path=str(adapter), base_model=BASE,
                           metrics=VersionMetrics(samples=evaluation.samples,
                                                  max_new_tokens=cfg.max_new_tokens).to_json()))
    result = ft_json("deploy", "support-q1")
    assert result["ok"] and result["deployed"] == "support-q1", result["message"]
    assert len(result["smoke"]) == 3 and all(a["expected"] for a in result["smoke"])
    assert ft_json("ask", "How long does the free trial last?")["model"] == "support-q1"


def _group(pgid: int) -> set[int]:
    """Live processes in a process group (the supervisor starts each vLLM as a group of its own)."""
    found = set()
    for pid in _alive():
        try:
            if os.getpgid(pid) == pgid:
                found.add(pid)
        except ProcessLookupError:
            pass
    return found


def _alive() -> set[int]:
    alive = set()
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # not a zombie
                alive.add(pid)
        except (OSError, IndexError):
            pass
    return alive


def _is_vllm(pid: int, port: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return ENTRY_MODULE.encode() in argv and str(port).encode() in argv
