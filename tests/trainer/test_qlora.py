"""Real 4-bit NF4 QLoRA training for a few steps (bitsandbytes; on CPU as on CUDA) on the tiny model built in the
test."""

import hashlib
import importlib.util
import json
from dataclasses import replace

import pytest

from core.contract import LORA_RANKS
from tests.trainer.conftest import rows
from trainer.train import check_adapter, train_adapter

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None,
                                reason="bitsandbytes is not installed (the qlora extra): no 4-bit training to test")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# A CPU with bf16 units computes the 4-bit layers in bf16, one without in fp32 (trainer.config.device_setup).
@pytest.mark.parametrize("bf16_units", [True, False], ids=["bf16-cpu", "fp32-cpu"])
def test_qlora_trains_a_float_adapter_on_a_4bit_base(tiny_cfg, tiny_base, tmp_path, monkeypatch, bf16_units):
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, TrainerCallback

    import trainer.config

    monkeypatch.setattr(trainer.config, "cpu_has_bf16", lambda: bf16_units)

    class Watch(TrainerCallback):  # what the trainer really trained, step by step
        def __init__(self):
            self.types, self.trainable, self.packed_steps, self.evaluated_before = {}, set(), [], []
            self.evaluated = False

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.types = {name: type(m) for name, m in model.named_modules() if name.endswith("base_layer")}
            self.trainable = {p.dtype for p in model.parameters() if p.requires_grad}

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            # bitsandbytes repacks 4-bit weights for CPU inference after an eval-mode pass; repacked layers would
            # train without autograd through them. Every step must see the training layout.
            if any(getattr(getattr(m.weight, "quant_state", None), "packing_format_for_cpu", False)
                   for m in model.modules() if isinstance(m, Linear4bit)):
                self.packed_steps.append(state.global_step + 1)
            self.evaluated_before.append(self.evaluated)

        def on_evaluate(self, args, state, control, **kwargs):
            self.evaluated = True

    base_file = tiny_base / "model.safetensors"
    before = _sha(base_file)
    watch = Watch()
    out = tmp_path / "ft-q-v1"
    result = train_adapter(replace(tiny_cfg, qlora=True), rows(), rows(prefix="v")[:3], out, callbacks=[watch])
    assert not result.stopped and result.steps == result.total_steps > 0 and result.eval_loss is not None
    device = json.loads((out / "train_config.json").read_text())["device"]
    compute = getattr(torch, device["compute_dtype"])
    assert device["qlora"] is True
    if device["device"] == "cpu":
        assert compute == (torch.bfloat16 if bf16_units else torch.float32)

    # It really was 4-bit: every LoRA-wrapped base layer (all linear layers but the head) is NF4, and stayed
    # trainable through the evaluation after epoch 1; the LoRA weights trained in the compute dtype.
    assert len(watch.types) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
    assert all(issubclass(t, Linear4bit) for t in watch.types.values()), watch.types
    assert any(watch.evaluated_before) and watch.packed_steps == []
    assert watch.trainable == {compute}

    # An ordinary PEFT adapter that vLLM serves: fp32 LoRA weights only (as plain LoRA saves them), and they moved
    # (lora_B starts at zero).
    config = check_adapter(out)
    assert config["bias"] == "none" and not config.get("modules_to_save") and config["r"] in LORA_RANKS
    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)
    assert {v.dtype for v in weights.values()} == {torch.float32}
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)

    # The base model on disk is untouched; the adapter loads onto the plain fp32 base and changes its logits.
    assert _sha(base_file) == before
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    plain = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    with torch.no_grad():
        base_logits = plain(ids).logits
        logits = PeftModel.from_pretrained(plain, out).eval()(ids).logits
    assert torch.isfinite(logits).all() and not torch.allclose(logits, base_logits)


def test_a_stopped_qlora_job_resumes_from_its_checkpoint(tiny_cfg, tmp_path):
    out, asked = tmp_path / "ft-q-v2", []
    cfg = replace(tiny_cfg, qlora=True)
    first = train_adapter(cfg, rows(), [], out, should_stop=lambda: asked.append(1) or len(asked) >= 3)
    assert first.stopped and first.steps == 3 < first.total_steps
    second = train_adapter(cfg, rows(), [], out)
    assert second.resumed_from == "checkpoint-3" and second.steps == second.total_steps == first.total_steps
    assert [h["step"] for h in second.history if "loss" in h] == list(range(1, second.total_steps + 1))
    check_adapter(out)
