"""Benchmark: our training configuration against TRL's default SFTConfig, same conversations, one run.

Both sides train the same LoRA (TrainConfig rank/alpha/dropout, all linear layers) of SmolLM2-135M-Instruct on
the conversations a real job trains on the Quillmate export (trainer.data.build_data, through the trainer's own
path: retrieved pairs in front of each question, every-phrasing pairs, replay, unknown questions), for the same
number of steps at the same learning rate, schedule, batch size and seed, then take the validation loss on the
same held-out conversations. What differs is the engine:

- ours: trainer.train.build_trainer as a job builds it (device_setup: precision, gradient checkpointing unless the
  passes are short, threads, length-grouped batches, the output head at the answer tokens only, trainer.loss);
- TRL default: SFTConfig(output_dir, report_to="none") with only the optimisation settings above copied in
  (so the losses compare), logging every step, no checkpoints, and use_cpu=True without CUDA (else SFTConfig
  refuses to start); the model given as a path, as TRL's docs do. So: bf16 autocast, gradient checkpointing,
  random batches padded to the longest, TRL's fused head at every position.

Each side trains in a child process of its own, so its peak RSS (ru_maxrss: model, data, training and the
evaluation) is its own. tokens/s = TRL's `num_tokens` (prompt + answer tokens, no padding) between the end of the
first step and the last, over the wall time between them (the first step's warm-up left out). Extra sides vary
our settings (DeviceSetup or TrainConfig fields), e.g. `ours:fused_loss=trl:micro_batch=8` (TRL's head at every
position, the whole batch at once: ours before issue 21) or `ours:bf16=true`.
Targets (issue 21): ours >= 3x TRL's tokens/s, peak RSS <= 3 GB, eval loss within 2 %.
Run it alone: on 2 shared cores a second torch process makes both crawl, so compare ratios from one run.

    .venv/bin/python bench/train_throughput.py [--steps 6] [--limit 0] [--sides trl,ours,ours:fused_loss=trl]
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_quality import MODELS, quillmate_rows
from trainer.config import TrainConfig

CACHE = Path.home() / ".cache" / "ftbot-bench" / "throughput"  # the replay answers, generated once


def timing_callback():
    from transformers import TrainerCallback

    class Timing(TrainerCallback):
        def __init__(self) -> None:
            self.points: list[tuple[float, int]] = []

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs and "loss" in logs:
                self.points.append((time.monotonic(), int(logs["num_tokens"])))

        def tokens_per_s(self) -> float:
            (t0, n0), (t1, n1) = self.points[0], self.points[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    return Timing()


def bench_config(base: str) -> TrainConfig:
    """Our defaults, evaluated by the bench itself (no early stopping, no best-epoch reload)."""
    return TrainConfig(base_model=base, epochs=1, early_stopping_patience=0, keep_best=False)


def parse_value(text: str):
    return {"true": True, "false": False}.get(text.lower(), int(text) if text.isdigit() else text)


def run_side(side: str, job: dict) -> dict:
    """One side in this (child) process: train job["steps"] steps, evaluate, report."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from core.machine import peft_wraps_quietly
    from trainer.config import device_setup
    from trainer.train import build_trainer, lora_config

    cfg = bench_config(job["base"])
    timing = timing_callback()
    data_file = Path(job["work"]) / "conversations.json"
    if side.startswith("ours"):
        changes = dict(change.split("=") for change in side.split(":")[1:])
        train_fields = {f.name for f in fields(TrainConfig)}
        cfg = replace(cfg, **{k: parse_value(v) for k, v in changes.items() if k in train_fields})
        setup = device_setup(cfg)
        setup = replace(setup, **{k: parse_value(v) for k, v in changes.items() if k not in train_fields})
        trainer, data, setup = build_trainer(cfg, job["train"], job["val"], Path(job["work"]) / "ours",
                                             callbacks=[timing], contexts=job["contexts"], setup=setup)
        trainer.args.save_strategy = trainer.args.eval_strategy = "no"  # the bench evaluates once, below
        validation = data.validation[:job["limit"] or None]
        data_file.write_text(json.dumps({"train": data.train, "validation": validation}))
        described = (f"batch {cfg.batch_size} ({trainer.args.per_device_train_batch_size} at a time), "
                     f"{'bf16 autocast' if setup.bf16 else setup.dtype}, checkpointing "
                     f"{setup.gradient_checkpointing}, {setup.threads} threads, "
                     f"{'length-grouped' if setup.group_by_length else 'random'} batches, head: {setup.fused_loss}")
    else:  # TRL's defaults, with our optimisation settings so that the losses compare
        data = json.loads(data_file.read_text())
        validation = data["validation"]
        args = SFTConfig(output_dir=str(Path(job["work"]) / "trl"), report_to="none", logging_steps=1,
                         save_strategy="no", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                         learning_rate=cfg.lr, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio,
                         per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
                         max_length=cfg.max_length, num_train_epochs=cfg.epochs, seed=cfg.seed, data_seed=cfg.seed)
        with peft_wraps_quietly():
            trainer = SFTTrainer(model=job["base"], args=args, train_dataset=Dataset.from_list(data["train"]),
                                 peft_config=lora_config(cfg), callbacks=[timing])
        described = (f"batch {args.per_device_train_batch_size}, {'bf16 autocast' if args.bf16 else 'fp32'}, "
                     f"checkpointing {args.activation_checkpointing}, {torch.get_num_threads()} threads, random "
                     f"batches, head: TRL's at every position")
    trainer.args.max_steps = job["steps"]
    started = time.monotonic()
    trainer.train()
    train_s = time.monotonic() - started
    metrics = trainer.evaluate(Dataset.from_list(validation))
    return {"side": side, "tokens_per_s": round(timing.tokens_per_s(), 1), "train_s": round(train_s, 1),
            "steps": trainer.state.global_step, "eval_loss": round(metrics["eval_loss"], 4),
            "n_validation": len(validation), "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                  / 2**20, 2), "setup": described}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6, help="training steps per side (the first is warm-up)")
    p.add_argument("--limit", type=int, default=0, help="evaluate on at most this many conversations (0: all)")
    p.add_argument("--sides", default="ours,trl", help="comma-separated: ours[:setting=value...] and trl; the first "
                                                       "'ours' side builds the data the others train on")
    p.add_argument("--models-dir", type=Path, default=MODELS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        job = pickle.loads(args.job.read_bytes())
        args.out.write_text(json.dumps(run_side(args.child, job)))
        return

    from trainer.base_model import prepare_base_model

    sides = args.sides.split(",")
    if not sides[0].startswith("ours"):
        p.error("the first side must be an 'ours' side: it builds the conversations every side trains on")
    work = Path(tempfile.mkdtemp(prefix="ftbot-throughput-"))
    base = str(prepare_base_model(args.models_dir))
    train, val, contexts, _ = quillmate_rows(work / "quillmate.db", cfg=bench_config(base))
    CACHE.mkdir(parents=True, exist_ok=True)
    (work / "ours").mkdir()
    if (CACHE / "replay.json").is_file():  # the base model's replay answers: the same for every run
        (work / "ours" / "replay.json").write_bytes((CACHE / "replay.json").read_bytes())
    job_file = work / "job.pickle"
    job_file.write_bytes(pickle.dumps({"base": base, "train": train, "val": val, "contexts": contexts,
                                       "steps": args.steps, "limit": args.limit, "work": str(work)}))
    results = []
    for n, side in enumerate(sides):
        out = work / f"side-{n}.json"
        subprocess.run([sys.executable, __file__, "--child", side, "--job", str(job_file), "--out", str(out)],
                       check=True)
        results.append(json.loads(out.read_text()))
        r = results[-1]
        print(f"{side:24} {r['tokens_per_s']:7.1f} tokens/s  peak RSS {r['peak_rss_gb']:5.2f} GB  eval loss "
              f"{r['eval_loss']:.4f} ({r['n_validation']} conversations)  {r['steps']} steps in {r['train_s']:.0f} s"
              f"  [{r['setup']}]", flush=True)
        if (work / "ours" / "replay.json").is_file() and not (CACHE / "replay.json").is_file():
            (CACHE / "replay.json").write_bytes((work / "ours" / "replay.json").read_bytes())
    ours = results[0]
    for r in results[1:]:
        print(f"{sides[0]} vs {r['side']}: tokens/s {ours['tokens_per_s'] / max(r['tokens_per_s'], 1e-9):.2f}x, "
              f"peak RSS {ours['peak_rss_gb']:.2f} vs {r['peak_rss_gb']:.2f} GB, eval loss "
              f"{100 * (ours['eval_loss'] - r['eval_loss']) / r['eval_loss']:+.1f} %")
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
