"""`ft serve`: the embedded model server, or `--vllm` to run and supervise vLLM from its own environment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer

from core.contract import RANK_CHOICES
from ftbot import wiring
from ftbot.cli import common
from ftbot.cli.common import console, fail
from ftbot.settings import Settings
from serving.generation import PROMPT_LOOKUP_TOKENS  # a constant: torch is imported only when an Engine is built


def serve(
    ctx: typer.Context,
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="HTTP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface; "
                                                         "anything but loopback needs FT_MODEL_SERVER_API_KEY)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m",
                                         help="Base model directory (default FT_BASE_MODEL, else the prepared "
                                              "SmolLM2-135M-Instruct in FT_DATA_DIR/models)."),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name",
                                                    help="Name of the base model in the API (default: the "
                                                         "directory's name)."),
    max_queue: int = typer.Option(16, "--max-queue", min=0,
                                  help="Generations that may wait; one more gets 503 (embedded server)."),
    max_lora_rank: Optional[int] = typer.Option(None, "--max-lora-rank",
                                                help=f"Largest adapter rank accepted: {RANK_CHOICES} (default: 64 "
                                                     "embedded; vLLM: the stored adapters' largest, which keeps vLLM "
                                                     "fast)."),
    prompt_lookup: int = typer.Option(PROMPT_LOOKUP_TOKENS, "--prompt-lookup", min=0, max=64,
                                      help="Greedy answers: tokens drafted from the prompt and checked in one pass "
                                           "(same answer, faster when it copies retrieved answers); 0: off "
                                           "(embedded server)."),
    vllm: bool = typer.Option(False, "--vllm", help="Run and supervise vLLM from its own environment instead "
                                                    "(make vllm; FT_VLLM_PYTHON)."),
    max_loras: int = typer.Option(4, "--max-loras", min=1, help="vLLM: adapters in one batch (GPU slots)."),
    max_cpu_loras: Optional[int] = typer.Option(None, "--max-cpu-loras",
                                                help="vLLM: adapters cached in CPU memory (default --max-loras)."),
    kv_cache_gib: int = typer.Option(2, "--kv-cache-gib", min=1,
                                     help="vLLM on CPU: GiB of memory for the KV cache."),
    tensor_parallel: Optional[int] = typer.Option(None, "--tensor-parallel-size", min=1,
                                                  help="vLLM on GPUs: shard the model over this many (default: every "
                                                       "GPU it is given, CUDA_VISIBLE_DEVICES)."),
    vllm_arg: Optional[list[str]] = typer.Option(None, "--vllm-arg",
                                                 help="vLLM: one more argument for `vllm serve` (repeatable)."),
) -> None:
    """Serve the base model and its LoRA adapters over vLLM's OpenAI-compatible API (re-loading the
    deployed and previous versions' adapters on start)."""
    from core.contract import LORA_RANKS, RANKS_LISTED
    from ftbot import logs

    if max_lora_rank is not None and max_lora_rank not in LORA_RANKS:
        fail(f"--max-lora-rank must be one of {RANKS_LISTED} (as vLLM), not {max_lora_rank}")
    from serving.auth import bind_problem

    s = common.settings(ctx)
    problem = bind_problem(host, s.model_server_key)
    if problem:  # before a model loads: the reason, not a minute of loading first
        fail(problem)
    logs.setup(s.log_level, s.log_json, secrets=[s.model_server_key or ""])
    if vllm:
        _serve_vllm(ctx, model, host, port, served_model_name, max_loras, max_lora_rank, max_cpu_loras, kv_cache_gib,
                    vllm_arg or [], tensor_parallel)
        return
    _serve_embedded(ctx, s, model, host, port, served_model_name, max_lora_rank or 64, prompt_lookup, max_queue)


def _serve_embedded(ctx: typer.Context, s: Settings, model: Optional[Path], host: str, port: int,
                    served_name: Optional[str], max_lora_rank: int, prompt_lookup: int, max_queue: int) -> None:
    """The embedded model server in this process: load the base, then serve until stopped, re-loading the stored
    versions' adapters once the port answers."""
    base = _base_model(ctx, model)
    from serving.model_server import serve_forever

    with console.status(f"loading {base} …"):
        try:
            server = wiring.model_server(s, base, served_name=served_name, max_lora_rank=max_lora_rank,
                                         prompt_lookup_tokens=prompt_lookup, max_queue=max_queue)
        except (OSError, ValueError) as exc:
            fail(f"cannot load the base model {base}: {str(exc).strip().splitlines()[0]}")
    engine = server.engine
    store = _store_or_none(ctx)

    async def ready(url: str) -> None:
        console.print(f"serving [bold]{engine.served_name}[/] "
                      f"({engine.device}, {str(engine.dtype).removeprefix('torch.')}) on {url}", highlight=False)
        if store is not None:
            await _reregister(s, url, store)

    try:
        asyncio.run(serve_forever(server, host, port, on_ready=ready))
    except OSError as exc:  # the port is taken, …
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass


def _serve_vllm(ctx: typer.Context, model: Optional[Path], host: str, port: int, served_name: Optional[str],
                max_loras: int, max_lora_rank: Optional[int], max_cpu_loras: Optional[int], kv_cache_gib: int,
                extra: list[str], tensor_parallel: Optional[int] = None) -> None:
    import signal

    from serving.vllm import SupervisorError, VllmNotFound, supervise

    try:
        env_found = wiring.vllm_env(common.settings(ctx))
    except VllmNotFound as exc:
        fail(str(exc))
    base = _base_model(ctx, model)
    store = _store_or_none(ctx)
    try:
        launch = wiring.vllm_launch(common.settings(ctx), env_found, base, store, host=host, port=port,
                                    served_name=served_name, max_loras=max_loras, max_lora_rank=max_lora_rank,
                                    max_cpu_loras=max_cpu_loras, kv_cache_gib=kv_cache_gib,
                                    tensor_parallel=tensor_parallel, extra=extra)
    except ValueError as exc:
        fail(str(exc))
    argv, env = launch.argv, launch.env
    console.print(f"vLLM {env_found.version}{' (CPU build)' if env_found.cpu else ''} from {env_found.python}, "
                  f"--max-lora-rank {launch.max_lora_rank}"
                  f"{f', --tensor-parallel-size {launch.tensor_parallel}' if launch.tensor_parallel > 1 else ''}, "
                  f"on port {port}", highlight=False, soft_wrap=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await supervise(argv, env, port=port, store=store, stop=stop, api_key=common.settings(ctx).model_server_key)

    try:
        asyncio.run(run())
    except SupervisorError as exc:
        fail(str(exc))


def _base_model(ctx: typer.Context, model: Optional[Path]) -> Path:
    if model is not None:
        if not (model / "config.json").is_file():
            fail(f"--model {model}: not a model directory (no config.json)")
        return model
    try:
        from trainer.base_model import BaseModelError, resolve_base_model
    except ImportError:
        fail("no base model: pass --model DIR (a Hugging Face model directory)")
    s = common.settings(ctx)
    try:
        with console.status("preparing the base model (once; about 30 s)…"):
            return resolve_base_model(s.base_model, s.models_dir)
    except (BaseModelError, FileNotFoundError) as exc:
        fail(f"{exc} (or pass --model DIR)")
    except ImportError:  # the vllm image has no torch: the workers prepare the base model on the shared store
        fail("no base model here: set FT_BASE_MODEL to the workers' base model directory (`ft model prepare` "
             "on a worker prints it), or pass --model DIR")


def _store_or_none(ctx: typer.Context):
    """The store, to re-register deployed adapters; a server without a database still serves the base."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return common.store(ctx)
    except SQLAlchemyError as exc:
        common.error(f"database unavailable, adapters are not re-registered: {str(exc).splitlines()[0]}")
        return None


async def _reregister(settings: Settings, url: str, store) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from serving.client import ModelServerUnavailable
    from serving.vllm import reregister

    client = wiring.model_client(settings, url=url, timeout_s=600.0)  # loading an adapter can take minutes
    try:
        for name, outcome in (await reregister(client, store)).items():
            console.print(f"adapter {name}: {outcome}", highlight=False)
    except (ModelServerUnavailable, SQLAlchemyError) as exc:  # keep serving the base model
        common.error(f"adapters not re-registered: {str(exc).strip().splitlines()[0]}")
    finally:
        await client.close()
