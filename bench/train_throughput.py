"""Benchmark: trained tokens/s of our CPU configuration vs TRL's default SFTConfig, same data, same run.

Both train the same LoRA (TrainConfig rank/alpha, all linear layers) on SmolLM2-135M-Instruct with
the Quillmate training conversations (every-phrasing pairs included, as a real job trains):

- ours: trainer.train.build_trainer, i.e. fp32, no gradient checkpointing, torch threads = physical
  cores, length-grouped batches;
- TRL default: SFTConfig(output_dir, max_steps, report_to="none"), plus logging every step and no
  checkpoint saving for the measurement, and use_cpu=True without CUDA (else SFTConfig refuses to
  start: "Your setup doesn't support bf16/gpu"), nothing else — bf16
  autocast and gradient checkpointing on, random batches — with the model given as a path, as
  TRL's docs do.

tokens/s = TRL's `num_tokens` (prompt + answer tokens, no padding) between the first and the last
step, over the wall time between them (the first step's warm-up is left out). Run it alone.

    .venv/bin/python bench/train_throughput.py [--ours-steps 12] [--default-steps 6]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_quality import MODELS, quillmate_rows  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402


def timing_callback():  # noqa: ANN201
    from transformers import TrainerCallback

    class Timing(TrainerCallback):
        def __init__(self) -> None:
            self.points: list[tuple[float, int]] = []

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001, ANN003
            if logs and "num_tokens" in logs and "loss" in logs:
                self.points.append((time.monotonic(), int(logs["num_tokens"])))

        def tokens_per_s(self) -> tuple[float, float, int]:
            (t0, n0), (t1, n1) = self.points[0], self.points[-1]
            return (n1 - n0) / (t1 - t0), t1 - t0, len(self.points)

    return Timing()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ours-steps", type=int, default=12)
    p.add_argument("--default-steps", type=int, default=6)
    p.add_argument("--models-dir", type=Path, default=MODELS)
    p.add_argument("--batch-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[TrainConfig().batch_size],
                   help="ours at these batch sizes, e.g. 4,8,16 (the first is compared with TRL's default)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from trainer.base_model import prepare_base_model
    from trainer.train import build_trainer, lora_config

    tmp = Path(tempfile.mkdtemp(prefix="ftbot-throughput-"))
    train, val = quillmate_rows(tmp / "quillmate.db")
    base = str(prepare_base_model(args.models_dir))
    # Ours: the trainer a job builds, capped at a number of steps (optionally at several batch sizes).
    ours = None
    for batch_size in args.batch_sizes:
        cfg = TrainConfig(base_model=base, epochs=1, eval_each_epoch=False, early_stopping_patience=0,
                          batch_size=batch_size)
        timing = timing_callback()
        trainer, data, setup = build_trainer(cfg, train, [], tmp / "ours", callbacks=[timing])
        trainer.args.max_steps = args.ours_steps
        trainer.args.save_strategy = "no"
        t0 = time.monotonic()
        trainer.train()
        measured = timing.tokens_per_s()
        ours = ours or measured
        print(f"ours       : {measured[0]:7.1f} tokens/s over {measured[2] - 1} steps ({measured[1]:.0f} s; batch "
              f"{cfg.batch_size}, {setup.dtype}, checkpointing {setup.gradient_checkpointing}, {setup.threads} "
              f"threads, length-grouped; total {time.monotonic() - t0:.0f} s)", flush=True)
        del trainer
    if not args.default_steps:
        return

    # TRL's defaults, same LoRA, same conversations.
    timing = timing_callback()
    # On a machine without CUDA, SFTConfig() itself raises "Your setup doesn't support bf16/gpu. You need
    # to assign use_cpu": use_cpu=True is the one change that lets TRL's defaults run at all.
    defaults = SFTConfig(output_dir=str(tmp / "default"), max_steps=args.default_steps, report_to="none",
                         logging_steps=1, save_strategy="no", disable_tqdm=True,
                         use_cpu=not torch.cuda.is_available())
    trainer = SFTTrainer(model=base, args=defaults, train_dataset=Dataset.from_list(data.train),
                         peft_config=lora_config(cfg), callbacks=[timing])
    t0 = time.monotonic()
    trainer.train()
    default = timing.tokens_per_s()
    print(f"TRL default: {default[0]:7.1f} tokens/s over {default[2] - 1} steps ({default[1]:.0f} s; batch "
          f"{defaults.per_device_train_batch_size}, bf16={defaults.bf16}, checkpointing "
          f"{defaults.activation_checkpointing}, {torch.get_num_threads()} threads; total {time.monotonic() - t0:.0f} s)")
    print(f"speed-up: {ours[0] / default[0]:.1f}x")


if __name__ == "__main__":
    main()
