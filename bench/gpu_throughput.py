"""LoRA training on CUDA: ours (trainer.train.build_trainer with device_setup's choices) vs TRL's default SFTConfig.

The same base model (a Llama built from a config, random bf16 weights: the speed of a step does not depend on what the
weights know), the same LoRA (rank 16, all linear layers), the same conversations in the same chat template (about
500 tokens, the answer about 50 of them, as a job's retrieval-shaped conversations are), each trainer in a process
of its own so that its peak GPU memory is its own.

    python bench/gpu_throughput.py                       # ~1.2B Llama: hidden 2048, 16 layers, vocab 128256 (tied)
    python bench/gpu_throughput.py --tiny --steps 6      # dry run of the whole script on CPU, a tiny config

Reported per trainer:
- trained tokens/s: the non-padding tokens of the measured steps over their wall time (CUDA synchronised at every
  step's start and end; the first --warmup steps left out, and so are checkpoint saves and evaluation);
- peak GPU memory: torch.cuda.max_memory_allocated and max_memory_reserved of the whole run;
- MFU: tokens/s x 4 x (parameters, the output head counted once even when tied) / 989 TFLOP/s (H100/H200 SXM bf16
  dense). LoRA training multiplies each token by every weight twice forward-and-backward-to-the-inputs (2N + 2N; the
  frozen weights get no weight gradients); attention scores, recomputation and LoRA's own small products are not
  counted, so a trainer that recomputes (gradient checkpointing) or skips the head where no loss is gets no credit
  or debit for it: the number is throughput in the unit of the hardware's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PEAK_FLOPS = 989e12  # H100/H200 SXM, bf16 dense (NVIDIA's datasheet); the lent H200 multiplied 769-798e12 measured
WORDS = ("invoice bank reconnect export trial plan settings billing address password sign team solo enterprise "
         "feed hours order refund customer account report tax vat currency receipt upload mobile app sync error "
         "code page link choose open press monthly yearly annual discount seat user admin role permission").split()


def build_base(path: Path, tiny: bool) -> dict:
    """A Llama from a config (random weights, bf16) with the tests' ChatML tokenizer; returns the config's sizes."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from fakes.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    sizes = (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=4096) if tiny else
             dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=128256))  # Llama-3.2-1B's shape
    config = LlamaConfig(**sizes, max_position_embeddings=2048, tie_word_embeddings=True, dtype="bfloat16",
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.convert_tokens_to_ids("<pad>"), bos_token_id=None)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    del model
    return {**sizes, "params": params}


def conversations(n: int, tokenizer, seed: int = 0) -> list[dict[str, str]]:
    """n (question, answer) rows: a ~430-token question (a retrieved-context-like paragraph, then the question) and
    a ~50-token answer."""
    rng = random.Random(seed)

    def text(tokens: int) -> str:
        words: list[str] = []
        while len(tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]) < tokens:
            words += rng.choices(WORDS, k=8)
        return " ".join(words)

    return [{"source_key": f"k{i}", "question": text(430) + " ?", "answer": text(50) + "."} for i in range(n)]


class StepTimer:
    """A TrainerCallback timing every optimizer step (CUDA synchronised) and its non-padding tokens."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer.sync()
                timer.t0, timer.seen0 = time.perf_counter(), state.num_input_tokens_seen

            def on_step_end(self, args, state, control, **kw):
                timer.sync()
                timer.steps.append((time.perf_counter() - timer.t0, state.num_input_tokens_seen - timer.seen0))

        self.callback = _Callback()
        self.steps: list[tuple[float, int]] = []
        self.t0, self.seen0 = 0.0, 0

    @staticmethod
    def sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def run(kind: str, base: Path, out: Path, steps: int, batch: int, warmup: int, n_rows: int) -> dict:
    """One trainer, in this process: 'ours' or 'trl'. Returns its measurements."""
    import torch
    from transformers import AutoTokenizer

    from trainer.config import TrainConfig
    from trainer.data import build_data
    from trainer.train import build_trainer, lora_config

    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = conversations(n_rows, tokenizer)
    epochs = max(1, -(-steps * batch // n_rows))
    cfg = TrainConfig(base_model=str(base), retrieval=False, replay=False, every_phrasing=False, eval_each_epoch=False,
                      early_stopping_patience=0, keep_best=False, epochs=epochs, batch_size=batch, max_length=1024,
                      lr=2e-4)
    timer = StepTimer()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if kind == "ours":
        trainer, data, setup = build_trainer(cfg, rows, [], out, callbacks=[timer.callback])
        setup_text = {**{k: v for k, v in vars(setup).items() if k != "reason"},
                      "base_dtype": str(trainer.model.get_input_embeddings().weight.dtype),
                      "use_liger_kernel": getattr(trainer.args, "use_liger_kernel", None),
                      "padding_free": getattr(trainer.args, "padding_free", None)}
    else:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        data = build_data(rows, [], tokenizer, system_prompt=cfg.system_prompt, max_length=cfg.max_length,
                          every_phrasing=False)
        args = SFTConfig(output_dir=str(out), num_train_epochs=epochs, report_to="none", save_strategy="no",
                         use_cpu=not cuda, include_num_input_tokens_seen="non_padding")  # TRL's defaults otherwise
        trainer = SFTTrainer(model=str(base), args=args, train_dataset=Dataset.from_list(data.train),
                             processing_class=tokenizer, peft_config=lora_config(cfg), callbacks=[timer.callback])
        setup_text = {"bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
                      "padding_free": args.padding_free,
                      "per_device_train_batch_size": args.per_device_train_batch_size,
                      "loss_type": getattr(args, "loss_type", None), "use_liger_kernel": args.use_liger_kernel,
                      "base_dtype": str(trainer.model.get_input_embeddings().weight.dtype)}
    trainer.args.include_num_input_tokens_seen = "non_padding"
    trainer.args.max_steps = steps
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    measured = timer.steps[warmup:]
    seconds, tokens = sum(s for s, _ in measured), sum(t for _, t in measured)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"kind": kind, "setup": setup_text, "steps": len(timer.steps), "measured_steps": len(measured),
            "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "step_s_median": round(sorted(s for s, _ in measured)[len(measured) // 2], 4) if measured else None,
            "wall_s": round(wall, 1), "loss_first_last": [losses[0], losses[-1]] if losses else None,
            "conversation_tokens": data.train_tokens // max(1, len(data.train)),
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny config (a dry run, CPU is enough)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="conversations a step (TRL's default and ours)")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_throughput"))
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--run", choices=("ours", "trl"), help=argparse.SUPPRESS)  # one trainer, in a child process
    args = parser.parse_args()
    base = args.work / "base"
    if args.run:
        result = run(args.run, base, args.work / args.run, args.steps, args.batch, args.warmup, args.rows)
        print("RESULT " + json.dumps(result), flush=True)
        return

    args.work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    sizes = build_base(base, args.tiny)
    print(f"base: {json.dumps(sizes)} built in {time.perf_counter() - t:.1f} s", flush=True)
    results = []
    for kind in ("ours", "trl"):
        cmd = [sys.executable, __file__, "--run", kind, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--batch", str(args.batch), "--rows", str(args.rows), "--work", str(args.work)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            print(f"{kind} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}", flush=True)
            results.append({"kind": kind, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]})
            continue
        result = json.loads(line[len("RESULT "):])
        if result["tokens_per_s"]:
            result["mfu"] = round(result["tokens_per_s"] * 4 * sizes["params"] / PEAK_FLOPS, 4)
        results.append(result)
        print(json.dumps(result), flush=True)
    ok = {r["kind"]: r for r in results if "error" not in r}
    if len(ok) == 2 and ok["trl"]["tokens_per_s"]:
        print(f"ours / TRL default: {ok['ours']['tokens_per_s'] / ok['trl']['tokens_per_s']:.2f}x tokens/s; peak "
              f"allocated {ok['ours']['peak_allocated_gib']} vs {ok['trl']['peak_allocated_gib']} GiB", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"base": sizes, "results": results}, indent=2))


if __name__ == "__main__":
    main()
