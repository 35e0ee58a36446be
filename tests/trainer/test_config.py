"""Training settings: a flat list of defaults, validated, chosen from the device, saved as JSON."""

import json
import subprocess
import sys

import pytest

from core.contract import LORA_RANKS
from core.machine import cpu_has_bf16, physical_cores
from trainer.config import TrainConfig, device_setup, fit_checkpointing


def test_import_stays_light():
    code = ("import sys, trainer.config, trainer.data, core.facts, trainer.job, trainer.evaluate, "
            "trainer.train, trainer.base_model, trainer.plot; "
            "print(sorted(m for m in ('torch','transformers','peft','trl','datasets','matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ranks_are_the_ones_vllm_serves():
    assert TrainConfig().rank in LORA_RANKS
    with pytest.raises(ValueError, match="rank=12"):
        TrainConfig(rank=12)
    assert TrainConfig().with_overrides({"rank": 64, "epochs": 2, "lr": 2e-4, "qlora": True}).rank == 64
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig().with_overrides({"temperature": 1})


def test_cpu_setup_is_fp32_checkpointed_on_physical_cores_with_the_head_at_the_labels():
    setup = device_setup(TrainConfig(), cuda=False)
    assert (setup.device, setup.dtype, setup.bf16, setup.gradient_checkpointing, setup.qlora, setup.compute_dtype) == \
        ("cpu", "float32", False, True, False, "float32")
    assert setup.threads == physical_cores() >= 1 and setup.group_by_length
    assert setup.fused_loss == "gathered" and setup.micro_batch == 2


@pytest.mark.parametrize("longest, micro, checkpointed", [
    (600, 2, True),  # a pass of one is over 512 tokens: checkpointed, 2 at a time, as device_setup said
    (512, 1, False), (393, 1, False),  # `make demo`'s data: one at a time, no second forward pass
    (256, 2, False), (100, 2, False),  # two fit; never more than MICRO_BATCH_CPU
])
def test_short_passes_train_without_gradient_checkpointing_on_cpu(longest, micro, checkpointed):
    setup = fit_checkpointing(device_setup(TrainConfig(), cuda=False), 8, longest)
    assert (setup.micro_batch, setup.gradient_checkpointing) == (micro, checkpointed)
    assert setup.micro_batch * longest <= 512 or checkpointed
    assert ("no gradient checkpointing" in setup.reason[-1]) == (not checkpointed)


def test_gpu_setups_and_odd_batches_keep_what_device_setup_chose(tiny_base):
    cuda = device_setup(TrainConfig(base_model=str(tiny_base)), cuda=True, gpu_free_bytes=80 * 2**30)
    assert fit_checkpointing(cuda, 8, 50) == cuda  # no budget on CUDA: memory is the GPU's, checkpointing stays
    odd = fit_checkpointing(device_setup(TrainConfig(), cuda=False), 3, 200)
    assert (odd.micro_batch, odd.gradient_checkpointing) == (1, False)  # 2 does not divide a batch of 3


@pytest.mark.parametrize("bf16_units", [True, False])
def test_cpu_runs_qlora_when_asked_in_bf16_only_on_a_cpu_with_bf16_units(bf16_units):
    setup = device_setup(TrainConfig(qlora=True), cuda=False, cpu_bf16=bf16_units)
    assert (setup.device, setup.dtype, setup.bf16, setup.gradient_checkpointing, setup.qlora) == \
        ("cpu", "float32", False, True, True)  # the same CPU setup, with a 4-bit base
    assert setup.compute_dtype == ("bfloat16" if bf16_units else "float32")
    assert device_setup(TrainConfig(qlora=True), cuda=False).compute_dtype == \
        ("bfloat16" if cpu_has_bf16() else "float32")  # this machine's own flags


def test_cuda_setup_is_bf16_and_picks_qlora_when_the_model_does_not_fit(tiny_base):
    cfg = TrainConfig(base_model=str(tiny_base))
    roomy = device_setup(cfg, cuda=True, gpu_free_bytes=80 * 2**30)
    assert (roomy.dtype, roomy.bf16, roomy.gradient_checkpointing, roomy.qlora) == ("bfloat16", True, True, False)
    assert roomy.fused_loss == "trl"  # TRL's Triton head scores the labelled positions alone on CUDA
    assert roomy.compute_dtype == "bfloat16"
    assert device_setup(cfg, cuda=True, gpu_free_bytes=1000).qlora  # tiny model, tinier GPU
    asked = device_setup(TrainConfig(qlora=True), cuda=True, gpu_free_bytes=80 * 2**30)
    assert asked.qlora and asked.compute_dtype == "bfloat16"


def test_saved_next_to_the_adapter_and_read_back(tmp_path):
    cfg = TrainConfig(rank=32, epochs=2, qlora=True)
    path = cfg.save(tmp_path / "train_config.json", device_setup(cfg, cuda=False, cpu_bf16=True))
    data = json.loads(path.read_text())
    assert data["train"]["rank"] == 32 and data["device"]["dtype"] == "float32"
    assert data["train"]["qlora"] and data["device"]["qlora"] and data["device"]["compute_dtype"] == "bfloat16"
    assert TrainConfig.load(path) == cfg


def test_the_grounding_spec_is_saved_whole_and_older_files_with_two_thresholds_still_load(tmp_path):
    from core.contract import GROUNDING, GroundingSpec

    cfg = TrainConfig(grounding=GroundingSpec(min_score=0.6, max_gap=0.1))
    path = cfg.save(tmp_path / "train_config.json")
    assert json.loads(path.read_text())["train"]["grounding"] == {"min_score": 0.6, "max_gap": 0.1}
    assert TrainConfig.load(path) == cfg
    older = {k: v for k, v in TrainConfig().as_dict().items() if k != "grounding"}
    path.write_text(json.dumps({"train": {**older, "answer_min_score": 0.55, "answer_max_gap": 0.2}}))
    assert TrainConfig.load(path).grounding == GroundingSpec(min_score=0.55, max_gap=0.2)
    path.write_text(json.dumps({"train": older}))
    assert TrainConfig.load(path).grounding == GROUNDING


def test_the_checkpoint_rule_is_checked_and_saved_with_the_reuse_spec(tmp_path):
    from core.contract import REUSE, ReuseSpec

    assert TrainConfig().checkpoint_by == "eval_loss"  # the default changes only from a measurement (issue 29)
    with pytest.raises(ValueError, match="checkpoint_by='accuracy': one of eval_loss, answers"):
        TrainConfig(checkpoint_by="accuracy")
    cfg = TrainConfig(checkpoint_by="answers", reuse=ReuseSpec(min_score=0.7))
    path = cfg.save(tmp_path / "train_config.json", checkpoint={"by": "answers", "kept_step": 4})
    data = json.loads(path.read_text())
    assert data["train"]["reuse"] == {"min_score": 0.7} and data["checkpoint"]["kept_step"] == 4
    assert TrainConfig.load(path) == cfg
    path.write_text(json.dumps({"train": {k: v for k, v in cfg.as_dict().items() if k != "reuse"}}))
    assert TrainConfig.load(path).reuse == REUSE  # written before the field
    # A job's own `checkpoint_by=answers` (/ft train) goes over the worker's default.
    from storage.jobs import check_params

    assert TrainConfig().with_overrides(check_params({"checkpoint_by": "answers"})).checkpoint_by == "answers"


def test_a_cpu_step_accumulates_small_batches_into_the_configured_batch(tmp_path):
    """Activations, not weights, fill a CPU training's memory: two conversations at a time, the step still one of
    batch_size conversations (the optimisation is the same on every machine)."""
    from trainer.train import sft_config

    cfg = TrainConfig(batch_size=8)
    args = sft_config(cfg, device_setup(cfg, cuda=False), tmp_path, has_eval=True)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 4)
    assert args.per_device_eval_batch_size == 8
    odd = TrainConfig(batch_size=5, grad_accum=2)
    args = sft_config(odd, device_setup(odd, cuda=False), tmp_path, has_eval=True)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (5, 2)


def test_the_preference_stage_settings_are_checked_and_given_as_trl_takes_them():
    cfg = TrainConfig()
    assert not cfg.preference and cfg.preference_min_records >= 1  # off until measured to gain (issue 26)
    settings = TrainConfig(preference_sft_weight=0.5).preference_settings()
    assert settings["loss_type"] == ["sigmoid", "sft"] and settings["loss_weights"] == [1.0, 0.5]
    assert TrainConfig(preference_loss="apo_zero").preference_settings()["loss_weights"] == [1.0]
    with pytest.raises(ValueError, match="preference_loss='sigmoid'"):
        TrainConfig(preference_loss="sigmoid")  # plain DPO: not anchored
    with pytest.raises(ValueError, match="bad preference settings"):
        TrainConfig(preference_min_records=0)
    saved = json.loads(TrainConfig(preference=True).to_json())["train"]
    assert saved["preference"] is True and saved["preference_loss"] == "sigmoid+sft"  # saved with every adapter
