"""A tiny base model and adapters built once per session, and the embedded server on a free port."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fakes.tiny_model import build_tiny_model, make_lora_adapter

BASE = "tiny-llama"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """The base directory and adapters: a1, a2 (servable), and ones a vLLM-compatible server refuses."""
    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_model(root / BASE, hidden_size=128)  # head size 64: vLLM's CPU attention has none for 16
    paths = {"base": base,
             "a1": make_lora_adapter(base, root / "a1", seed=1),
             "a2": make_lora_adapter(base, root / "a2", seed=2),
             "rank16": make_lora_adapter(base, root / "rank16", seed=3, rank=16),
             "bias": make_lora_adapter(base, root / "bias", seed=4, bias="all"),
             "lm_head": make_lora_adapter(base, root / "lm_head", seed=5, modules_to_save=["lm_head"])}
    corrupted = shutil.copytree(paths["a2"], root / "corrupted")
    (corrupted / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file" * 100)
    paths["corrupted"] = corrupted
    paths["pickled"] = pickled_copy(paths["a1"], root / "pickled")
    other = build_tiny_model(root / "other-base", seed=7, hidden_size=64)
    paths["other_base_adapter"] = make_lora_adapter(other, root / "other", seed=6)
    return paths


def pickled_copy(adapter: Path, out: Path) -> Path:
    """The same adapter with its weights pickled (adapter_model.bin, torch.save) instead of safetensors."""
    import torch
    from safetensors.torch import load_file

    out = shutil.copytree(adapter, out)
    torch.save(load_file(out / "adapter_model.safetensors"), out / "adapter_model.bin")
    (out / "adapter_model.safetensors").unlink()
    return out


@pytest.fixture
async def start_server(tiny):
    """start_server(max_queue=…) -> a started ModelServer on 127.0.0.1:<free port>; stopped afterwards."""
    from serving.generation import Engine
    from serving.model_server import ModelServer

    started = []

    async def start(max_queue: int = 16, max_lora_rank: int = 8, api_key: str | None = None) -> ModelServer:
        engine = Engine(tiny["base"], max_lora_rank=max_lora_rank)
        server = ModelServer(engine, max_queue=max_queue, api_key=api_key)
        await server.start("127.0.0.1", 0)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def server(start_server):
    return await start_server()
