"""LoRA/QLoRA supervised fine-tuning with TRL's SFTTrainer: one code path for CPU and GPU.

Reads top to bottom: settings for this machine → data → model → trainer → train (resuming from
the newest checkpoint in out_dir/checkpoints) → adapter + train_config.json + loss.png.
The adapter is checked to be one vLLM serves: bias "none", no modules_to_save, an allowed rank.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from core.contract import CHECKPOINT_RULES, JobProgress, TrainSummary, adapter_problems
from core.machine import peft_wraps_quietly
from trainer.checkpoint import METRIC as ANSWERS_METRIC
from trainer.checkpoint import scores
from trainer.config import DeviceSetup, TrainConfig, device_setup, fit_checkpointing
from trainer.context import Contexts

log = logging.getLogger("ftbot.trainer")

ProgressFn = Callable[[JobProgress], None]
StopFn = Callable[[], bool]
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
RESULT_FILE = "train_result.json"
CONFIG_FILE = "train_config.json"


class TrainingStopped(Exception):
    """should_stop() asked training to end; a checkpoint was saved, a later run resumes from it."""


class TrainResult(TrainSummary):
    """One training run: the summary a version records (core.contract.TrainSummary), and what only the trainer
    and its tests read."""

    adapter_dir: str
    long_examples: list[dict[str, Any]] = []  # left out as longer than max_length
    history: list[dict[str, Any]] = []  # the Trainer's log, step by step


def progress_callback(on_progress: ProgressFn | None, should_stop: StopFn | None, every_s: float):
    """A TrainerCallback that reports a JobProgress (step, total, loss, eval_loss, tokens/s, ETA) at most every
    `every_s` seconds, and stops (saving a checkpoint to resume from) when should_stop() says so."""
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def __init__(self, on_progress: ProgressFn | None, should_stop: StopFn | None, every_s: float):
            self.on_progress, self.should_stop, self.every_s = on_progress, should_stop, every_s
            self.last_report = 0.0
            self.start = self.start_step = None
            self.warm = None  # (time, step) at the end of the first step: the ETA leaves that step's warm-up out
            self.tokens = 0
            self.loss = self.eval_loss = None
            self.stopped = False

        def on_train_begin(self, args, state, control, **kw):
            self.start, self.start_step = time.monotonic(), state.global_step

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs:
                self.loss = float(logs["loss"])
            if "num_tokens" in logs:
                self.tokens = int(logs["num_tokens"])  # TRL: tokens seen in this run (no padding)
            if "eval_loss" in logs:
                self.eval_loss = float(logs["eval_loss"])
                self.report(state, force=True)

        def on_step_end(self, args, state, control, **kw):
            if self.warm is None:
                self.warm = (time.monotonic(), state.global_step)
            if self.should_stop and self.should_stop():
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True  # the checkpoint a restarted job resumes from
            self.report(state, force=state.global_step >= state.max_steps)

        def on_epoch_end(self, args, state, control, **kw):
            if self.stopped:  # no evaluation (and no second save) on the way out
                control.should_evaluate = False
                control.should_save = False

        def report(self, state, force: bool = False) -> None:
            now = time.monotonic()
            if self.on_progress is None or (not force and now - self.last_report < self.every_s):
                return
            self.last_report = now
            elapsed = max(now - (self.start or now), 1e-6)
            # From the step time measured after the first step, whose one-off warm-up (allocations, the first
            # batches) made the first ETA read "about 57 min left" for a 10-minute training; none before then.
            warm_at, warm_step = self.warm or (now, state.global_step)
            measured = state.global_step - warm_step
            eta = (state.max_steps - state.global_step) * (now - warm_at) / measured if measured > 0 else None
            self.on_progress(JobProgress(step=state.global_step, total=state.max_steps, loss=self.loss,
                                         eval_loss=self.eval_loss, tokens_per_s=round(self.tokens / elapsed, 1),
                                         eta_s=round(eta, 1) if eta is not None else None))

    return _Callback(on_progress, should_stop, every_s)


def check_adapter(adapter_dir: Path) -> dict[str, Any]:
    """The adapter_config.json, verified to be one vLLM serves (core.contract); ValueError says what is wrong."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    problems = adapter_problems(config)
    if not (Path(adapter_dir) / "adapter_model.safetensors").is_file():
        problems.append("no adapter_model.safetensors")
    if problems:
        raise ValueError(f"adapter in {adapter_dir} would be refused by vLLM: {'; '.join(problems)}")
    return config


def lora_config(cfg: TrainConfig):  # peft.LoraConfig
    from peft import LoraConfig

    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.target_modules,
                      bias="none", modules_to_save=None, task_type="CAUSAL_LM")


def load_model(base_model: str, setup: DeviceSetup):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, setup.dtype)}
    if setup.qlora:
        from transformers import BitsAndBytesConfig

        from trainer.launch import fsdp_enabled

        # bitsandbytes quantises the weights as they load onto the device: NF4 on CUDA and on CPU alike.
        quant: dict[str, Any] = {}
        if fsdp_enabled():  # FSDP + QLoRA (trainer.launch): 4-bit weights stored in a float dtype FSDP can shard,
            # the compute dtype, and the model loaded in it; FSDP places the shards (no device_map)
            quant["bnb_4bit_quant_storage"] = kwargs["dtype"] = getattr(torch, setup.compute_dtype)
        else:
            kwargs["device_map"] = {"": torch.cuda.current_device() if setup.device == "cuda" else "cpu"}
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, setup.compute_dtype), **quant)
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    if setup.qlora:
        # bitsandbytes (0.50) repacks a 4-bit layer for its CPU inference kernel the first time it runs in eval mode
        # without gradients (replay answers, evaluation), on CPUs with AVX512-BF16, and the repacked layer then
        # multiplies outside autograd in training too: gradients would stop at every base layer. Keep the training
        # layout (the flag is only read on CPU).
        for module in model.modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # never add a token: a resized embedding is not a LoRA adapter
    return model, tokenizer


def sft_config(cfg: TrainConfig, setup: DeviceSetup, checkpoints: Path, has_eval: bool):
    from trl import SFTConfig

    from trainer.launch import fsdp_enabled

    micro = setup.micro_batch if setup.micro_batch and cfg.batch_size % setup.micro_batch == 0 else cfg.batch_size
    every_steps = cfg.save_every_steps > 0
    strategy = "steps" if every_steps else "epoch"
    return SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=micro,
        per_device_eval_batch_size=cfg.batch_size,  # no activations kept for a backward pass: the whole batch
        gradient_accumulation_steps=cfg.grad_accum * cfg.batch_size // micro,
        max_length=cfg.max_length,  # nothing is cut: longer examples were left out (trainer.data)
        packing=False,
        completion_only_loss=cfg.loss_on == "answer",  # prompt-completion data: loss on the answer only
        bf16=setup.bf16,
        fp16=False,
        activation_checkpointing=setup.gradient_checkpointing,  # device_setup: on (CPU too: memory, trainer.config)
        # Several processes (trainer.launch): LoRA leaves no parameter unused; FSDP + QLoRA checkpoints reentrantly
        # as PEFT's recipe does.
        ddp_find_unused_parameters=False,
        gradient_checkpointing_kwargs={"use_reentrant": True} if fsdp_enabled() else None,
        use_cpu=setup.device == "cpu",
        train_sampling_strategy="group_by_length" if setup.group_by_length else "random",
        eval_strategy=strategy if has_eval else "no",
        save_strategy=strategy,
        eval_steps=cfg.save_every_steps if every_steps and has_eval else None,
        save_steps=cfg.save_every_steps if every_steps else 500,
        save_total_limit=max(1, cfg.checkpoints_kept),
        load_best_model_at_end=has_eval and cfg.keep_best,
        # the kept checkpoint and early stopping: validation loss, or the answers' rule (trainer.checkpoint)
        metric_for_best_model=ANSWERS_METRIC if cfg.checkpoint_by == "answers" else "eval_loss",
        greater_is_better=cfg.checkpoint_by == "answers",
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
    )


def kept_eval_loss(state: Any, keep_best: bool, checkpoint_by: str = "eval_loss") -> float | None:
    """The validation loss of the adapter train_adapter saves: Trainer loads the best checkpoint back
    only with keep_best (load_best_model_at_end); otherwise the model is the last step's."""
    if keep_best and state.best_metric is not None:
        if checkpoint_by == "eval_loss":
            return state.best_metric
        kept = [h["eval_loss"] for h in state.log_history
                if "eval_loss" in h and h.get("step") == state.best_global_step]
        if kept:
            return kept[-1]
    losses = [h["eval_loss"] for h in state.log_history if "eval_loss" in h]
    return losses[-1] if losses else None


def kept_step(state: Any, keep_best: bool) -> int:
    """The step of the adapter train_adapter saves (see kept_eval_loss)."""
    return state.best_global_step if keep_best and state.best_global_step is not None else state.global_step


def last_checkpoint(checkpoints: Path) -> str | None:
    """The newest complete checkpoint: Trainer writes trainer_state.json last, so a job killed while saving
    leaves a checkpoint without it. Such a half-written one is removed and the one before it is used."""
    found = sorted((p for p in Path(checkpoints).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for path in found:
        if (path / "trainer_state.json").is_file() and any(path.glob("adapter_model.*")):
            return str(path)
        log.warning("removing %s: it was not completely written (the job stopped while saving)", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def checkpoint_callbacks(cfg: TrainConfig, val_rows: Sequence[Any], contexts: Contexts | None) -> list[Any]:
    """What judges each evaluation: the answers' score (cfg.checkpoint_by == "answers"), then early stopping, which
    reads the number the score adds."""
    from transformers import EarlyStoppingCallback

    found = []
    if cfg.checkpoint_by == "answers":
        from trainer.checkpoint import answers_callback

        if contexts is None or not cfg.retrieval:
            raise ValueError("checkpoint_by='answers' scores answers as the bot sends them, with retrieval and its "
                             "grounding check: it needs retrieval on (FT_RETRIEVAL) and the job's retrieved pairs")
        found.append(answers_callback(cfg, val_rows, contexts))
    if cfg.early_stopping_patience > 0:
        found.append(EarlyStoppingCallback(cfg.early_stopping_patience, cfg.early_stopping_threshold))
    return found


def build_trainer(cfg: TrainConfig, train_rows: Sequence[Any], val_rows: Sequence[Any], out_dir: Path, *,
                  callbacks: Sequence[Any] = (), contexts: Contexts | None = None, setup: DeviceSetup | None = None
                  ) -> tuple[Any, Any, DeviceSetup]:
    """(SFTTrainer, BuiltData, DeviceSetup): this machine's settings (device_setup(cfg) unless a bench gives its
    own), the data in the base model's own chat template, the LoRA model. train_adapter runs it; tests inspect its
    tokenized labels."""
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from trainer.data import build_data
    from trainer.replay import replay_pairs, replay_questions

    if not cfg.base_model:
        raise ValueError("TrainConfig.base_model is empty (trainer.base_model.resolve_base_model)")
    setup = setup or device_setup(cfg)
    if setup.device == "cpu":
        torch.set_num_threads(setup.threads)  # train_adapter puts the caller's setting back afterwards
    torch.manual_seed(cfg.seed)

    model, tokenizer = load_model(cfg.base_model, setup)
    replay = []
    if cfg.replay:
        replay = replay_pairs(model, tokenizer, system_prompt=cfg.system_prompt, cache=Path(out_dir) / "replay.json",
                              max_new_tokens=cfg.max_new_tokens,
                              questions=replay_questions()[:cfg.replay_max] if cfg.replay_max else None)
    data = build_data(train_rows, val_rows, tokenizer, system_prompt=cfg.system_prompt, max_length=cfg.max_length,
                      every_phrasing=cfg.every_phrasing, replay=list(replay) * max(1, cfg.replay_weight),
                      contexts=contexts if cfg.retrieval else None, seed=cfg.seed,
                      unknown_with_context=cfg.unknown_with_context, refuse_without_fact=cfg.refuse_without_fact)
    if not data.train:
        raise ValueError("no training examples left (all too long, or none approved)")
    setup = fit_checkpointing(setup, cfg.batch_size, data.longest)  # short data trains faster without it
    log.info("training on %s (%s): %s", setup.device, setup.dtype, "; ".join(setup.reason) or "defaults")
    has_eval = bool(data.validation) and cfg.eval_each_epoch
    callbacks = [*callbacks, *(checkpoint_callbacks(cfg, val_rows, contexts) if has_eval else [])]
    with peft_wraps_quietly():  # SFTTrainer wraps the model with peft
        trainer = SFTTrainer(
            model=model,
            args=sft_config(cfg, setup, Path(out_dir) / "checkpoints", has_eval),
            train_dataset=Dataset.from_list(data.train),
            eval_dataset=Dataset.from_list(data.validation) if has_eval else None,
            processing_class=tokenizer,
            peft_config=lora_config(cfg),
            callbacks=callbacks,
        )
    trainer.remove_callback(PrinterCallback)  # progress goes to on_progress and the log, not stdout
    if getattr(trainer.accelerator.state, "fsdp_plugin", None) is not None:  # FSDP + QLoRA (trainer.launch)
        if has_eval and cfg.checkpoint_by == "answers":  # generation would need each rank's shards gathered
            raise ValueError("checkpoint_by='answers' is not supported with FSDP + QLoRA (several processes); "
                             "use checkpoint_by='eval_loss' there")
        from peft.utils.other import fsdp_auto_wrap_policy

        trainer.accelerator.state.fsdp_plugin.auto_wrap_policy = fsdp_auto_wrap_policy(trainer.model)
    if setup.fused_loss == "gathered":
        from trainer.loss import gather_labelled

        # the output head at the answer tokens only: TRL's head scores every position off CUDA (trainer.loss)
        if not gather_labelled(trainer.model):
            setup.fused_loss = "trl"
    if setup.qlora:
        # TRL casts a 4-bit model's LoRA weights to bf16; they train in the compute dtype instead: bf16 on CUDA and on
        # CPUs with bf16 units, fp32 on CPUs without (bf16 there is >10x slower). Without autocast (CPU) the LoRA
        # activations take this dtype too: bf16 vs fp32 LoRA weights, SmolLM2 8x400 tokens, peak RSS 9.5 vs 13.1 GB.
        # (A resumed run goes on in fp32: peft upcasts the checkpoint's adapter as it loads it.)
        compute = getattr(torch, setup.compute_dtype)
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.data = param.data.to(compute)
    return trainer, data, setup


def train_adapter(cfg: TrainConfig, train_rows: Sequence[Any], val_rows: Sequence[Any], out_dir: Path, *,
                  on_progress: ProgressFn | None = None, should_stop: StopFn | None = None, resume: bool = True,
                  progress_every_s: float = 3.0, callbacks: Sequence[Any] = (),
                  contexts: Contexts | None = None, setup: DeviceSetup | None = None) -> TrainResult:
    """Train a LoRA adapter on the snapshot rows into out_dir (adapter + train_config.json + loss.png).

    A finished out_dir is returned as it is; a checkpoint in out_dir/checkpoints is resumed from
    (resume=False starts over). should_stop() ends training early with a checkpoint: the result
    then has stopped=True and no adapter. contexts: the pairs retrieval puts in front of each training,
    validation and unknown question (trainer.context), taught in the retrieval prompt shape when cfg.retrieval.
    setup: this machine's settings when a bench gives its own (device_setup(cfg) otherwise).
    """
    out_dir = Path(out_dir)
    done = out_dir / RESULT_FILE
    if resume and done.is_file() and all((out_dir / f).is_file() for f in ADAPTER_FILES):
        log.info("adapter in %s is already trained; reusing it", out_dir)
        return TrainResult.model_validate_json(done.read_text())
    if not resume:
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)

    import torch

    from trainer.plot import plot_losses

    threads = torch.get_num_threads()
    try:
        checkpoints = out_dir / "checkpoints"
        # 1-3. Machine, data, model and trainer.
        out_dir.mkdir(parents=True, exist_ok=True)
        progress = progress_callback(on_progress, should_stop, progress_every_s)
        trainer, data, setup = build_trainer(cfg, train_rows, val_rows, out_dir, callbacks=[progress, *callbacks],
                                             contexts=contexts, setup=setup)
        has_eval = trainer.eval_dataset is not None

        # 4. Train, resuming when an earlier run left a checkpoint.
        last = last_checkpoint(checkpoints)
        if last:
            log.info("resuming from %s", last)
        started = time.monotonic()
        trainer.train(resume_from_checkpoint=last)
        wall = time.monotonic() - started
        state = trainer.state
        history = list(state.log_history)
        result = TrainResult(
            adapter_dir=str(out_dir), stopped=progress.stopped, steps=state.global_step, total_steps=state.max_steps,
            epochs_done=round(state.epoch or 0.0, 3), train_loss=progress.loss,
            eval_loss=kept_eval_loss(state, cfg.keep_best, cfg.checkpoint_by) if has_eval else None,
            tokens=progress.tokens,
            tokens_per_s=round(progress.tokens / wall, 1) if wall else 0.0, wall_s=round(wall, 1),
            resumed_from=Path(last).name if last else None, n_train=len(data.train), n_phrasing=data.n_phrasing,
            n_replay=data.n_replay, n_context=data.n_context, n_unknown=data.n_unknown,
            n_validation=len(data.validation),
            long_examples=data.long_examples, history=history, checkpoint_by=cfg.checkpoint_by,
            kept_step=kept_step(state, cfg.keep_best) if has_eval else None, checkpoints=scores(history))
        if progress.stopped:
            log.info("stopped at step %s of %s; checkpoint kept for resuming", state.global_step, state.max_steps)
            return result

        # 5. The artifact: adapter (best eval loss), its settings, the loss curve. Written once: by rank 0 when
        # several processes trained (trainer.launch).
        if trainer.is_fsdp_enabled:  # every rank hands its shards to rank 0, which writes the whole adapter
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
            trainer.save_model(str(out_dir))
        elif trainer.is_world_process_zero():
            # saved in fp32 like a plain LoRA adapter: bf16 is exact in it, and the best epoch's adapter, reloaded
            # through peft by Trainer, is fp32 already
            if setup.qlora:
                for name, param in trainer.model.named_parameters():
                    if "lora_" in name:
                        param.data = param.data.float()
            trainer.model.save_pretrained(str(out_dir))
        if not trainer.is_world_process_zero():
            return result
        check_adapter(out_dir)
        # the rule that chose this checkpoint, saved with it
        rule = CHECKPOINT_RULES[cfg.checkpoint_by] if has_eval and cfg.keep_best else "the last step"
        cfg.save(out_dir / CONFIG_FILE, setup, checkpoint={
            "by": cfg.checkpoint_by, "rule": rule, "kept_step": result.kept_step,
            "scores": [c.to_json() for c in result.checkpoints]})
        plot = plot_losses(history, out_dir / "loss.png", title=out_dir.name)
        result.loss_plot = str(plot) if plot else None
        done.write_text(json.dumps(result.to_json(), indent=2))
        shutil.rmtree(checkpoints, ignore_errors=True)  # optimizer states: not needed once the adapter is saved
        if on_progress:  # done: early stopping may end before max_steps, so the bar ends full at the last step
            on_progress(JobProgress(step=state.global_step, total=state.global_step, loss=result.train_loss,
                                    eval_loss=result.eval_loss, tokens_per_s=result.tokens_per_s, eta_s=0))
        return result
    finally:
        torch.set_num_threads(threads)  # the process's own setting, as the caller had it
