"""The preference stage through real TRL (DPOTrainer) and peft on the tiny model: only the LoRA weights train, the
reference (TRL's frozen "ref" copy of the SFT adapter) stays the SFT adapter, and the result is an adapter vLLM
serves."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.contract import JobProgress
from core.prompt import prompt_messages
from core.states import JobPhase
from fakes.tiny_model import make_lora_adapter
from tests.trainer.conftest import tiny_config
from trainer.preference import SETTINGS_FILE, preference_rows, train_preference
from trainer.train import check_adapter

RECORDS = [
    {"prompt": [], "question": "How long does the free trial last?", "chosen": "The trial lasts 21 days.",
     "rejected": "The trial lasts 14 days."},
    {"prompt": [], "question": "Which plans do you offer?", "chosen": "Solo, Team and Enterprise.",
     "rejected": "Only one plan."},
    {"prompt": prompt_messages("Answer as support.", "What does error QM-E42 mean?"),
     "question": "What does error QM-E42 mean?", "chosen": "QM-E42 means the bank link expired: press Reconnect.",
     "rejected": "I don't know that error."},
    {"prompt": [], "question": "How do I reset my password?", "chosen": "Use the link on the sign-in page.",
     "rejected": "Write to support."},
    {"prompt": [], "question": "Where is Billing?", "chosen": "In Settings.", "rejected": "In Settings."},  # no signal
]


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sft_adapter(tiny_base, tmp_path):
    return make_lora_adapter(tiny_base, tmp_path / "ft-1-v1", seed=3)


def _capture():
    from transformers import TrainerCallback

    class Capture(TrainerCallback):
        """What the model holds when training ends: every LoRA weight, and which parameters were trainable."""

        def on_train_end(self, args, state, control, model=None, **kw):
            self.lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
            self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    return Capture()


def test_rows_are_asked_as_the_bot_asked_or_as_sft_teaches():
    found = preference_rows(RECORDS, "SYSTEM")
    assert len(found.rows) == 4 and found.left_out == 1  # chosen == rejected: nothing to prefer
    first, third = found.rows[0], found.rows[2]
    assert first["prompt"] == prompt_messages("SYSTEM", "How long does the free trial last?")
    assert third["prompt"] == RECORDS[2]["prompt"]  # the record's own prompt, retrieved pairs and all
    assert first["chosen"] == [{"role": "assistant", "content": "The trial lasts 21 days."}]
    assert first["rejected"] == [{"role": "assistant", "content": "The trial lasts 14 days."}]


def test_rows_longer_than_max_length_are_left_out_not_cut(tiny_base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    long = dict(RECORDS[0], chosen="The trial lasts 21 days. " * 40)
    found = preference_rows([long, RECORDS[1]], "SYSTEM", tokenizer, max_length=64)
    assert len(found.rows) == 1 and found.left_out == 1 and found.rows[0]["chosen"][0]["content"].startswith("Solo")


def test_the_stage_trains_only_lora_weights_and_keeps_the_reference_fixed(tiny_base, sft_adapter, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base_file = tiny_base / "model.safetensors"
    base_before, sft_before = _sha(base_file), _sha(sft_adapter / "adapter_model.safetensors")
    cfg = tiny_config(tiny_base, preference=True, preference_lr=5e-2, preference_epochs=2)
    capture, reports = _capture(), []
    out = tmp_path / "ft-1-v1-preference"
    result = train_preference(cfg, sft_adapter, RECORDS, out, on_progress=reports.append, progress_every_s=0,
                              callbacks=[capture])
    assert not result.stopped and result.used == 4 and result.left_out == 1 and result.records == 5
    assert result.steps == result.total_steps == 4  # 4 pairs, batch 2, 2 epochs
    assert result.train_loss is not None and result.margin is not None and result.wall_s > 0

    # Trainable: the "default" adapter's LoRA weights and nothing else, not the reference's, not the base's.
    assert capture.trainable and all(".default." in n and "lora_" in n for n in capture.trainable)
    sft = load_file(sft_adapter / "adapter_model.safetensors")
    ref = {n.replace(".ref.", "."): w for n, w in capture.lora.items() if ".ref." in n}
    trained = {n.replace(".default.", "."): w for n, w in capture.lora.items() if ".default." in n}
    assert set(ref) == set(trained) == set(sft)
    # The reference is still the SFT adapter, weight for weight; the policy moved away from it.
    for name, weights in sft.items():
        assert torch.equal(ref[name], weights), name
    assert any(not torch.equal(trained[n], sft[n]) for n in sft if "lora_B" in n)
    assert any(not torch.equal(trained[n], sft[n]) for n in sft if "lora_A" in n)

    # The artifact: the trained adapter alone (no "ref" copy), one vLLM serves, reloading to what was trained.
    config = check_adapter(out)
    assert config["bias"] == "none" and not config.get("modules_to_save") and config["r"] == 8
    assert not (out / "ref").exists() and not (out / "checkpoints").exists()
    saved = load_file(out / "adapter_model.safetensors")
    assert set(saved) == set(sft) and all(torch.equal(saved[n], trained[n]) for n in saved)
    settings = json.loads((out / SETTINGS_FILE).read_text())
    assert settings["preference"]["loss_type"] == ["sigmoid", "sft"] and settings["preference"]["lr"] == 5e-2
    assert settings["used"] == 4 and (out / "train_config.json").is_file()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32), out)
    assert reloaded.peft_config["default"].r == 8

    # Neither the base model nor the SFT adapter changed on disk.
    assert _sha(base_file) == base_before and _sha(sft_adapter / "adapter_model.safetensors") == sft_before

    # Progress in the stage's own phase; a finished directory is not trained again.
    assert reports and all(isinstance(r, JobProgress) and r.phase == JobPhase.PREFERENCE for r in reports)
    assert reports[-1].step == reports[-1].total == 4
    trained_sha = _sha(out / "adapter_model.safetensors")
    again = train_preference(cfg, sft_adapter, RECORDS, out)
    assert again.wall_s == result.wall_s and _sha(out / "adapter_model.safetensors") == trained_sha


def test_apo_zero_is_the_other_anchored_loss_and_a_stop_resumes(tiny_base, sft_adapter, tmp_path):
    cfg = tiny_config(tiny_base, preference=True, preference_loss="apo_zero", preference_lr=5e-2,
                      preference_epochs=2)
    out = tmp_path / "pref"
    asked = []
    first = train_preference(cfg, sft_adapter, RECORDS, out, should_stop=lambda: asked.append(1) or len(asked) >= 2)
    assert first.stopped and first.steps == 2 and not (out / "adapter_model.safetensors").exists()
    second = train_preference(cfg, sft_adapter, RECORDS, out)
    assert second.resumed_from == "checkpoint-2" and second.steps == second.total_steps == 4
    assert json.loads((out / SETTINGS_FILE).read_text())["preference"]["loss_type"] == ["apo_zero"]
    check_adapter(out)


def test_no_usable_record_is_an_error_not_an_empty_adapter(tiny_base, sft_adapter, tmp_path):
    with pytest.raises(ValueError, match="no preference record to train on: 1 left out"):
        train_preference(tiny_config(tiny_base), sft_adapter, RECORDS[-1:], tmp_path / "pref")
