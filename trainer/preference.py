"""The preference stage after SFT: the SFT adapter learns from the team's corrections of its drafts.

A record is a question as the bot asked it (its prompt: system prompt, retrieved pairs, question), the draft the team
rejected and the answer it sent instead (storage.preferences). TRL's DPOTrainer trains on them, and reads top to
bottom here: this machine's settings (trainer.config.device_setup, the SFT path's) → the records as TRL's
conversational preference rows → the base model (trainer.train.load_model) → the SFT adapter as a trainable PeftModel
→ DPOTrainer with ref_model=None: TRL copies the adapter into a frozen "ref" adapter, so the reference is the SFT
policy itself and no second model is loaded → an anchored loss (TrainConfig.preference_loss: DPO plus the chosen
answer's NLL, or APO-zero; plain DPO can lower both answers' likelihood on lightly edited pairs) → the "default"
adapter alone, checked to be one vLLM serves, with preference_config.json (the stage's settings) and
train_config.json beside it. Whether it goes forward is trainer.gate's decision, not this module's.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict

from core.machine import peft_wraps_quietly
from core.prompt import prompt_messages
from core.states import JobPhase
from trainer.config import DeviceSetup, TrainConfig, device_setup
from trainer.data import field_of
from trainer.train import (
    ADAPTER_FILES,
    CONFIG_FILE,
    ProgressFn,
    StopFn,
    check_adapter,
    last_checkpoint,
    load_model,
    progress_callback,
)

log = logging.getLogger("ftbot.trainer")

RESULT_FILE = "preference_result.json"
SETTINGS_FILE = "preference_config.json"


class NothingToPrefer(ValueError):
    """No record left to train on: none has a chosen and a rejected text that differ, or all are too long."""


class PreferenceResult(BaseModel):
    """One run of the stage: what PreferenceStage.train shows (summary()), and what benches and tests read."""

    model_config = ConfigDict(extra="ignore")

    adapter_dir: str
    sft_adapter: str
    stopped: bool = False  # should_stop() ended it: a checkpoint to resume from, no adapter
    records: int = 0  # records given
    used: int = 0  # of them, trained on
    left_out: int = 0  # nothing to prefer (no chosen, no rejected, or both the same) or longer than max_length
    steps: int = 0
    total_steps: int = 0
    epochs_done: float = 0.0
    train_loss: float | None = None  # last logged loss (the weighted sum of the loss's terms)
    margin: float | None = None  # last logged rewards/margins: chosen's reward above rejected's (β · log-ratios)
    accuracy: float | None = None  # last logged rewards/accuracies: share of pairs whose chosen answer leads
    tokens: int = 0
    wall_s: float = 0.0
    resumed_from: str | None = None
    history: list[dict[str, Any]] = []  # the Trainer's log, step by step

    def summary(self) -> dict[str, Any]:
        """What a version records of the run (core.contract.PreferenceStage.train)."""
        return self.model_dump(include={"used", "left_out", "steps", "total_steps", "epochs_done", "train_loss",
                                        "margin", "accuracy", "tokens", "wall_s", "resumed_from"})


@dataclass(frozen=True)
class PreferenceRows:
    rows: list[dict[str, Any]]  # TRL's conversational preference format: prompt, chosen, rejected (message lists)
    left_out: int


def preference_rows(records: Sequence[Any], system_prompt: str, tokenizer: Any | None = None,
                    max_length: int | None = None) -> PreferenceRows:
    """TRL's conversational preference rows: the prompt as the bot asked (the record's own; a record without one is
    asked as SFT teaches, core.prompt.prompt_messages with the system prompt), the sent text chosen, the draft rejected.
    Left out: records with nothing to prefer, and (given a tokenizer) those longer than max_length in the base model's
    chat template, rather than cut: TRL would cut the answers' ends."""
    rows, left_out = [], 0
    for record in records:
        chosen, rejected = (str(field_of(record, side) or "").strip() for side in ("chosen", "rejected"))
        if not chosen or not rejected or chosen == rejected:
            left_out += 1
            continue
        prompt = [{"role": m["role"], "content": m["content"]} for m in (field_of(record, "prompt") or [])]
        row = {"prompt": prompt or prompt_messages(system_prompt, str(field_of(record, "question"))),
               "chosen": [{"role": "assistant", "content": chosen}],
               "rejected": [{"role": "assistant", "content": rejected}]}
        if tokenizer is not None and max_length and max(
                len(tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True, return_dict=False))
                for side in ("chosen", "rejected")) > max_length:
            left_out += 1
            continue
        rows.append(row)
    return PreferenceRows(rows, left_out)


def dpo_config(cfg: TrainConfig, setup: DeviceSetup, checkpoints: Path):
    from trl import DPOConfig

    settings = cfg.preference_settings()
    micro = setup.micro_batch if setup.micro_batch and cfg.batch_size % setup.micro_batch == 0 else cfg.batch_size
    return DPOConfig(
        output_dir=str(checkpoints),
        loss_type=settings["loss_type"],
        loss_weights=settings["loss_weights"],
        beta=cfg.preference_beta,
        learning_rate=cfg.preference_lr,
        num_train_epochs=cfg.preference_epochs,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=micro,  # pairs per pass (each pass runs chosen and rejected, and the reference)
        gradient_accumulation_steps=cfg.grad_accum * cfg.batch_size // micro,
        max_length=cfg.max_length,  # nothing is cut: longer records were left out (preference_rows)
        bf16=setup.bf16,
        fp16=False,
        activation_checkpointing=setup.gradient_checkpointing,
        use_cpu=setup.device == "cpu",
        save_strategy="epoch",
        save_total_limit=1,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
    )


def train_preference(cfg: TrainConfig, sft_adapter_dir: str | Path, records: Sequence[Any], out_dir: str | Path, *,
                     on_progress: ProgressFn | None = None, should_stop: StopFn | None = None, resume: bool = True,
                     progress_every_s: float = 3.0, callbacks: Sequence[Any] = ()) -> PreferenceResult:
    """Train the SFT adapter in sft_adapter_dir further on the preference records, into out_dir (an adapter of its own;
    the SFT adapter is not touched). A finished out_dir is returned as it is; a checkpoint in out_dir/checkpoints is
    resumed from; should_stop() ends it early with a checkpoint (the result then has stopped=True and no adapter).
    Progress is reported in the PREFERENCE phase."""
    out_dir, sft_adapter_dir = Path(out_dir), Path(sft_adapter_dir)
    done = out_dir / RESULT_FILE
    if resume and done.is_file() and all((out_dir / f).is_file() for f in ADAPTER_FILES):
        log.info("preference adapter in %s is already trained; reusing it", out_dir)
        return PreferenceResult.model_validate_json(done.read_text())
    if not resume:
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)

    import torch

    threads = torch.get_num_threads()
    try:
        # 1. This machine's settings: the SFT path's, one process (the stage is short; trainer.launch is for SFT).
        setup = device_setup(cfg)
        if setup.device == "cpu":
            torch.set_num_threads(setup.threads)
        torch.manual_seed(cfg.seed)

        # 2. The base model and the SFT adapter on it, trainable; then the records in its chat template.
        model, tokenizer = load_model(cfg.base_model, setup)
        from peft import PeftModel

        with peft_wraps_quietly():
            model = PeftModel.from_pretrained(model, str(sft_adapter_dir), is_trainable=True)
        data = preference_rows(records, cfg.system_prompt, tokenizer, cfg.max_length)
        if not data.rows:
            raise NothingToPrefer(f"no preference record to train on: {data.left_out} left out (nothing to prefer, "
                                  f"or longer than {cfg.max_length} tokens)")

        # 3. The trainer: the reference is TRL's frozen copy of the SFT adapter ("ref"), not a second model.
        out_dir.mkdir(parents=True, exist_ok=True)
        progress = progress_callback(_in_phase(on_progress), should_stop, progress_every_s)
        trainer = _trainer(cfg, setup, model, tokenizer, data.rows, out_dir / "checkpoints", [progress, *callbacks])

        # 4. Train, resuming when an earlier run left a checkpoint.
        last = last_checkpoint(out_dir / "checkpoints")
        started = time.monotonic()
        trainer.train(resume_from_checkpoint=last)
        state, logged = trainer.state, [h for h in trainer.state.log_history if "loss" in h]
        result = PreferenceResult(
            adapter_dir=str(out_dir), sft_adapter=str(sft_adapter_dir), stopped=progress.stopped,
            records=len(records), used=len(data.rows), left_out=data.left_out, steps=state.global_step,
            total_steps=state.max_steps, epochs_done=round(state.epoch or 0.0, 3), train_loss=progress.loss,
            margin=logged[-1].get("rewards/margins") if logged else None,
            accuracy=logged[-1].get("rewards/accuracies") if logged else None, tokens=progress.tokens,
            wall_s=round(time.monotonic() - started, 1), resumed_from=Path(last).name if last else None,
            history=list(state.log_history))
        if progress.stopped:
            return result

        # 5. The artifact: the trained "default" adapter alone (not TRL's "ref" copy), in fp32 like any LoRA adapter.
        _save(trainer.model, out_dir, setup)
        check_adapter(out_dir)
        cfg.save(out_dir / CONFIG_FILE, setup)
        (out_dir / SETTINGS_FILE).write_text(json.dumps(
            {"preference": cfg.preference_settings(), "sft_adapter": str(sft_adapter_dir.resolve()),
             "records": len(records), "used": len(data.rows)}, indent=2) + "\n", encoding="utf-8")
        done.write_text(result.model_dump_json(indent=2))
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
        return result
    finally:
        torch.set_num_threads(threads)


def _trainer(cfg: TrainConfig, setup: DeviceSetup, model: Any, tokenizer: Any, rows: list[dict[str, Any]],
             checkpoints: Path, callbacks: list[Any]) -> Any:
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOTrainer

    trainer = DPOTrainer(model=model, ref_model=None, args=dpo_config(cfg, setup, checkpoints),
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # progress goes to on_progress and the log, not stdout
    if "ref" not in trainer.model.peft_config:  # TRL falls back to the base model as reference on some peft versions
        raise RuntimeError("DPOTrainer made no frozen 'ref' copy of the SFT adapter: the reference would not be SFT")
    if setup.qlora:  # as trainer.train: LoRA weights train in the compute dtype (TRL casts a 4-bit model's to bf16)
        import torch

        compute = getattr(torch, setup.compute_dtype)
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.data = param.data.to(compute)
    return trainer


def _save(model: Any, out_dir: Path, setup: DeviceSetup) -> None:
    if setup.qlora:
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.data = param.data.float()
    model.save_pretrained(str(out_dir), selected_adapters=["default"])


def _in_phase(on_progress: ProgressFn | None) -> ProgressFn | None:
    """on_progress, its reports marked as the preference stage's (the approvals message shows that phase)."""
    if on_progress is None:
        return None
    return lambda progress: on_progress(progress.model_copy(update={"phase": JobPhase.PREFERENCE}))
