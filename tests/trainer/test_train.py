"""Real LoRA training for a few steps through TRL and peft, on a tiny model built in the test."""

import hashlib
import json

import pytest

from core.contract import LORA_RANKS
from tests.trainer.conftest import rows
from trainer.train import check_adapter, train_adapter


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_changes_the_adapter_and_not_the_base(tiny_cfg, tiny_base, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base_file = tiny_base / "model.safetensors"
    before = _sha(base_file)
    reports = []
    result = train_adapter(tiny_cfg, rows(), rows(prefix="v")[:3], tmp_path / "ft-1-v1", on_progress=reports.append,
                           progress_every_s=0)
    out = tmp_path / "ft-1-v1"
    assert not result.stopped and result.steps == result.total_steps > 0
    assert result.eval_loss is not None and result.tokens > 0 and result.tokens_per_s > 0
    assert result.n_phrasing == 4 and result.n_train == 12

    # The artifact: a vLLM-servable adapter, its settings and its loss curve.
    config = check_adapter(out)
    assert config["bias"] == "none" and not config.get("modules_to_save") and config["r"] in LORA_RANKS
    assert json.loads((out / "train_config.json").read_text())["train"]["rank"] == tiny_cfg.rank
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "checkpoints").exists()

    # LoRA weights moved (lora_B starts at zero); the base model did not, on disk or as peft loads it.
    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    assert _sha(base_file) == before
    original = load_file(base_file)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32), out)
    base_now = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                for k, v in model.state_dict().items() if "lora_" not in k}
    for name, tensor in original.items():
        assert torch.equal(base_now[name], tensor), name

    # Progress reports carry what the job row shows.
    assert reports and reports[-1].loss is not None and reports[-1].tokens_per_s
    assert reports[-1].step == reports[-1].total


def test_a_stopped_job_resumes_from_its_checkpoint(tiny_cfg, tmp_path):
    out = tmp_path / "ft-2-v1"
    asked = []

    def stop_after_three():  # asked once per step: a cancel arriving during step 3
        asked.append(1)
        return len(asked) >= 3

    first = train_adapter(tiny_cfg, rows(), [], out, should_stop=stop_after_three)
    assert first.stopped and first.steps == 3 < first.total_steps
    assert (out / "checkpoints" / "checkpoint-3").is_dir()
    assert not (out / "adapter_model.safetensors").exists()

    later = []
    second = train_adapter(tiny_cfg, rows(), [], out, on_progress=lambda p: later.append(p.step),
                           progress_every_s=0)
    assert second.resumed_from == "checkpoint-3" and not second.stopped
    assert second.steps == second.total_steps == first.total_steps
    assert min(later) == 4  # it went on from step 4; nothing was trained twice
    logged = [h["step"] for h in second.history if "loss" in h]
    assert logged == list(range(1, second.total_steps + 1))
    check_adapter(out)

    # A finished directory is not trained again.
    again = train_adapter(tiny_cfg, rows(), [], out)
    assert again.steps == second.steps and again.resumed_from == "checkpoint-3"


def test_refuses_adapters_vllm_would_refuse(tiny_base, tmp_path):
    from fakes.tiny_model import make_lora_adapter

    bad = make_lora_adapter(tiny_base, tmp_path / "bad", seed=1, bias="all", modules_to_save=["lm_head"])
    with pytest.raises(ValueError, match="bias.*modules_to_save"):
        check_adapter(bad)


def test_a_half_written_checkpoint_is_skipped(tmp_path):
    from trainer.train import last_checkpoint

    good, partial = tmp_path / "checkpoint-4", tmp_path / "checkpoint-8"
    for path in (good, partial):
        path.mkdir()
        (path / "adapter_model.safetensors").write_bytes(b"x")
    (good / "trainer_state.json").write_text("{}")  # written last: checkpoint-8 was cut short
    assert last_checkpoint(tmp_path) == str(good)
    assert not partial.exists()
    assert last_checkpoint(tmp_path / "none") is None


@pytest.mark.parametrize("keep_best", [True, False])
def test_the_kept_adapter_is_the_best_epochs_or_the_last(tiny_cfg, tmp_path, keep_best):
    from dataclasses import replace

    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    seen = []  # (eval loss, LoRA weights) at each epoch's evaluation

    class Snapshot(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
            seen.append((metrics["eval_loss"], weights))

    # Validation answers nothing like the training ones, at a rate that overfits: validation loss rises
    # after the first epochs, so the best epoch is not the last.
    cfg = replace(tiny_cfg, epochs=4, lr=3e-2, keep_best=keep_best)
    val = rows([("Is there a mobile app?", "Not yet; the web app works on phones."),
                ("Do you support SSO?", "Only on Enterprise, with SAML.")], prefix="v")
    result = train_adapter(cfg, rows(), val, tmp_path / "out", callbacks=[Snapshot()])
    losses = [loss for loss, _ in seen]
    assert len(losses) == 4
    best = losses.index(min(losses))
    assert best != 3, f"validation loss should rise by the end: {losses}"  # otherwise this test shows nothing

    kept = best if keep_best else 3
    saved = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert saved.keys() == seen[kept][1].keys()
    assert all(torch.equal(saved[k], seen[kept][1][k]) for k in saved)
    assert result.eval_loss == pytest.approx(losses[kept])


def test_the_eta_comes_from_the_steps_after_the_first(tmp_path):
    """The first step carries the warm-up: an ETA from it read "about 57 min left" for a 10-minute training."""
    import time

    from transformers import TrainerControl, TrainerState, TrainingArguments

    from trainer.train import progress_callback

    reports = []
    callback = progress_callback(reports.append, None, every_s=0)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state, control = TrainerState(max_steps=10), TrainerControl()
    callback.on_train_begin(args, state, control)
    for step, seconds in enumerate([0.5, 0.05, 0.05, 0.05], start=1):
        time.sleep(seconds)
        state.global_step = step
        callback.on_step_end(args, state, control)
    assert reports[0].eta_s is None  # nothing measured yet but the warm-up step
    # 6 steps left at ~0.05 s a step, not at the 0.16 s average the warm-up step would give
    assert 0.2 <= reports[-1].eta_s <= 0.6
