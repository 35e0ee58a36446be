"""Benchmark: QLoRA (4-bit NF4 base, bitsandbytes) vs LoRA (fp32 base) on this machine, same data, same run.

Both train the job's LoRA (TrainConfig defaults: rank, all linear layers, batch size) on SmolLM2-135M-Instruct
with the Quillmate training conversations (every-phrasing pairs and replay pairs included, as a real job trains),
through trainer.train.build_trainer, i.e. whatever device_setup picks here; only `qlora` differs. The replay
answers are generated once beforehand by the fp32 base, so both variants train on exactly the same conversations.

Each variant runs in a subprocess of its own, one after the other (never together), so that its peak RSS
(VmHWM: weights, activations, optimizer, all of it) is its own; "RSS after loading" is the resident memory
once the model is loaded and wrapped, before training, and "peak RSS, loading" the peak up to then (bitsandbytes
quantises on the CPU as the weights load). RSS counts the pages of the mmapped safetensors file that were read
(clean, reclaimable): all of it once QLoRA has quantised it, only what was touched yet for LoRA; "anonymous"
leaves them out. tokens/s = TRL's `num_tokens` (prompt + answer tokens, no padding) between the first and the
last step, over the wall time between them (the first step's warm-up is left out). Loss: the first and the last
logged training loss. Run it alone (another process on the cores skews tokens/s).

    .venv/bin/python bench/qlora.py [--steps 10] [--models-dir /tmp/ftd/models]

--models-dir holds SmolLM2-135M-Instruct (`ft model prepare` prints where it is); it is converted there once
if missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_quality import MODELS, quillmate_rows
from bench.train_throughput import timing_callback
from trainer.config import TrainConfig

VARIANTS = ("lora", "qlora")


def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak resident memory so far (VmHWM), or another /proc/self/status field (VmRSS, RssAnon), MiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


def config(base: str, qlora: bool) -> TrainConfig:
    return TrainConfig(base_model=base, epochs=1, eval_each_epoch=False, early_stopping_patience=0, qlora=qlora)


def make_replay(base: str, work: Path) -> None:
    """The replay answers of the fp32 base into work/replay.json (both variants read them from there)."""
    from trainer.config import device_setup
    from trainer.replay import replay_pairs
    from trainer.train import load_model

    cfg = config(base, qlora=False)
    model, tokenizer = load_model(base, device_setup(cfg))
    replay_pairs(model, tokenizer, system_prompt=cfg.system_prompt, cache=work / "replay.json",
                 max_new_tokens=cfg.max_new_tokens)


def run_variant(variant: str, base: str, work: Path, steps: int) -> dict:
    """Train `steps` steps of one variant in this process; what it measured."""
    import torch
    from transformers import TrainerCallback

    from trainer.train import build_trainer

    class Losses(TrainerCallback):
        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    out = work / variant
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "replay.json", out / "replay.json")  # the same replay pairs for both
    train, _ = quillmate_rows(out / "quillmate.db")
    cfg = config(base, qlora=variant == "qlora")
    timing, losses = timing_callback(), Losses()
    trainer, data, setup = build_trainer(cfg, train, [], out, callbacks=[timing, losses])
    trainer.args.max_steps = steps
    trainer.args.save_strategy = "no"
    four_bit = sum(type(m).__name__ == "Params4bit" for m in trainer.model.parameters())
    loaded, resident, anonymous = rss_mb(), rss_mb("VmRSS"), rss_mb("RssAnon")
    t0 = time.monotonic()
    trainer.train()
    tokens_per_s, span, points = timing.tokens_per_s()
    return {"variant": variant, "tokens_per_s": round(tokens_per_s, 1), "timed_steps": points - 1,
            "timed_s": round(span, 1), "train_s": round(time.monotonic() - t0, 1),
            "first_loss": losses.losses[0], "last_loss": losses.losses[-1],
            "rss_after_load_mb": round(resident), "anon_after_load_mb": round(anonymous),
            "rss_loaded_mb": round(loaded), "rss_peak_mb": round(rss_mb()),
            "four_bit_weights": four_bit, "dtype": setup.dtype, "compute_dtype": setup.compute_dtype,
            "threads": setup.threads, "batch_size": cfg.batch_size, "n_train": len(data.train),
            "torch_threads": torch.get_num_threads()}


def subprocess_run(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{' '.join(args[:2])} failed (exit {proc.returncode})")
    return proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=10, help="training steps per variant (the first is not timed)")
    p.add_argument("--models-dir", type=Path, default=MODELS)
    p.add_argument("--variant", choices=("replay", *VARIANTS), help=argparse.SUPPRESS)  # a child process
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.variant == "replay":
        make_replay(args.base, args.work)
        return
    if args.variant:
        print("RESULT " + json.dumps(run_variant(args.variant, args.base, args.work, args.steps)), flush=True)
        return

    from trainer.base_model import prepare_base_model

    base = str(prepare_base_model(args.models_dir))
    work = Path(tempfile.mkdtemp(prefix="ftbot-qlora-"))
    load = os.getloadavg()[0]
    started = time.monotonic()
    subprocess_run(["--variant", "replay", "--work", str(work), "--base", base])
    results = {}
    for variant in VARIANTS:  # one after the other, each in a fresh process
        out = subprocess_run(["--variant", variant, "--work", str(work), "--base", base, "--steps", str(args.steps)])
        results[variant] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        print(f"{variant}: {results[variant]}", flush=True)
    lora, qlora = results["lora"], results["qlora"]

    print(f"\nSmolLM2-135M-Instruct, {lora['n_train']} conversations, batch {lora['batch_size']}, "
          f"{lora['threads']} threads, {args.steps} steps each ({lora['timed_steps']} timed); "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after; {time.monotonic() - started:.0f} s")
    print(f"QLoRA: {qlora['four_bit_weights']} NF4 weight tensors, layers computing in {qlora['compute_dtype']}; "
          f"LoRA: {lora['dtype']}")
    rows = [("trained tokens/s", "tokens_per_s", "{:.1f}"), ("RSS after loading (MiB)", "rss_after_load_mb", "{:.0f}"),
            ("  of it anonymous (MiB)", "anon_after_load_mb", "{:.0f}"),
            ("peak RSS, loading (MiB)", "rss_loaded_mb", "{:.0f}"),
            ("peak RSS, training (MiB)", "rss_peak_mb", "{:.0f}"), ("first loss", "first_loss", "{:.3f}"),
            ("last loss", "last_loss", "{:.3f}")]
    print(f"\n| {'':<26} | {'LoRA':>9} | {'QLoRA':>9} | {'QLoRA/LoRA':>10} |")
    print(f"| {'-' * 26} | {'-' * 9}:| {'-' * 9}:| {'-' * 10}:|")
    for label, key, fmt in rows:
        print(f"| {label:<26} | {fmt.format(lora[key]):>9} | {fmt.format(qlora[key]):>9} | "
              f"{qlora[key] / lora[key]:>10.2f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
