"""Benchmark: vLLM (the CPU build, as `ft serve --vllm` runs it) against the embedded server (`ft serve`),
same adapter, same questions, same run; and train/serve parity across the two engines.

Takes the newest model version of a store that `ft train` filled (--data-dir, FT_DATA_DIR of that run):
its adapter, its base model and its validation questions, held out of the retrieval index as in
bench/grounded.py, each asked as the bot asks (system prompt, the nearest approved pairs, greedy).

1. Parity: the evaluation's answers to those prompts (trainer.evaluate.generate: fp32, padded batches,
   the adapter merged: what the deployment smoke test compares with) against each server's answer,
   asked one at a time. Counted: identical answers, answers the smoke test accepts (serving.smoke.agrees),
   the first word where they differ, and key facts stated (core.facts), so a difference that changes
   what the customer reads shows. The base model's answers against the adapter's evaluation answers are
   the negative control: the rule must still tell a wrong model apart.
2. One answer at a time: p50/p95 over those prompts, base model and adapter.
3. Throughput: --requests requests, --concurrency at once, each exactly --max-tokens tokens (ignore_eos),
   base model and adapter: generated tokens/s.

The servers run one after the other, never together. Run it alone on the machine.
    .venv/bin/python bench/vllm_serving.py --data-dir .ftbot [--requests 24] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_throughput import free_port, pct, scenario, wait_up

ADAPTER = "bench-adapter"


def first_difference(a: str, b: str) -> int | None:
    """The index of the first word where a and b differ; None when they are the same words."""
    x, y = a.split(), b.split()
    for i, (p, q) in enumerate(zip(x, y)):
        if p != q:
            return i
    return None if len(x) == len(y) else min(len(x), len(y))


def load(data_dir: Path, tmp: Path, k: int):
    """(version, prompts, validation rows) from a copy of the store, validation held out of the index."""
    from sqlmodel import select

    from core.prompt import prompt_messages
    from core.states import ExampleStatus
    from ftbot import wiring
    from ftbot.settings import Settings
    from storage import open_store
    from storage.examples import set_status
    from storage.models import ModelVersion, SnapshotExample

    settings = Settings(data_dir=data_dir)
    db = tmp / "ftbot.db"
    if settings.database_url:
        raise SystemExit("this bench copies a SQLite store; give the --data-dir of a SQLite run")
    shutil.copy(data_dir / "ftbot.db", db)
    store = open_store(f"sqlite:///{db}")
    with store.session() as s:
        version = s.exec(select(ModelVersion).order_by(ModelVersion.id.desc())).first()
        if version is None:
            raise SystemExit(f"no model version in {data_dir}: run `ft train --inline` there first")
        val = list(s.exec(select(SnapshotExample).where(SnapshotExample.snapshot_id == version.snapshot_id,
                                                        SnapshotExample.side == "validation")))
        set_status(s, [r.example_id for r in val], ExampleStatus.REJECTED, "bench")  # out of the index
        s.expunge(version)
    retriever = wiring.retrieval_index(store)
    retriever.sync()
    prompts = []
    for row in val:
        hits = retriever.search(row.question, k)
        prompts.append(prompt_messages(settings.system_prompt, row.question, [(h.question, h.answer) for h in hits]))
    store.close()
    return version, prompts, val


def evaluation_answers(base: str, adapter: str, prompts: list, max_tokens: int) -> tuple[list[str], list[str]]:
    """(adapter's, base model's) answers exactly as the trainer's evaluation generates them."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.evaluate import generate

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    base_answers = generate(model, tokenizer, prompts, max_new_tokens=max_tokens)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload().eval()
    return generate(merged, tokenizer, prompts, max_new_tokens=max_tokens), base_answers


async def measure_server(name: str, argv: list[str], env: dict, prompts: list, adapter: str,
                         args: argparse.Namespace) -> dict:
    from ftbot import wiring
    from ftbot.settings import Settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(Path(env["FT_DATA_DIR"]) / f"{name}.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen([*argv, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    client = wiring.model_client(Settings(model_server_url=url, answer_timeout_s=600))
    try:
        await wait_up(url, proc, timeout_s=300)
        up_s = time.perf_counter() - started
        base = await client.base_model()
        t0 = time.perf_counter()
        await client.load_adapter(ADAPTER, adapter)
        load_s = time.perf_counter() - t0
        for model in (base, ADAPTER):  # warm-up
            await client.chat(model, prompts[0], max_tokens=8, temperature=0.0)
        out: dict = {"start_s": round(up_s, 1), "load_adapter_s": round(load_s, 3), "answers": {}}
        for label, model in (("base", base), ("adapter", ADAPTER)):
            answers, seconds = [], []
            for messages in prompts:
                t0 = time.perf_counter()
                answers.append(await client.chat(model, messages, max_tokens=args.max_answer_tokens, temperature=0.0))
                seconds.append(time.perf_counter() - t0)
            out["answers"][label] = answers
            out[f"{label}_one_p50_s"] = round(pct(seconds, 0.5), 2)
            out[f"{label}_one_p95_s"] = round(pct(seconds, 0.95), 2)
            out[f"{label}_one_mean_s"] = round(statistics.mean(seconds), 2)
            burst = await scenario(url, [model], args.requests, args.concurrency, args.max_tokens, proc.pid)
            out[f"{label}_tokens_per_s"] = burst["tokens_per_s"]
            out[f"{label}_burst_p95_s"] = round(burst["p95_ms"] / 1000, 2)
        return out
    finally:
        await client.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def parity(served: list[str], expected: list[str], questions: list[str], references: list[str]) -> dict:
    from core.facts import carries_key_fact
    from serving.smoke import agrees

    diffs = [first_difference(s, e) for s, e in zip(served, expected)]
    facts_served = sum(bool(carries_key_fact(a, r, q)) for a, r, q in zip(served, references, questions))
    facts_expected = sum(bool(carries_key_fact(a, r, q)) for a, r, q in zip(expected, references, questions))
    return {"identical": sum(d is None for d in diffs),
            "smoke_accepts": sum(agrees(s, e) for s, e in zip(served, expected)),
            "first_difference_words": sorted(d for d in diffs if d is not None),
            "key_fact_served": facts_served, "key_fact_evaluation": facts_expected, "n": len(served)}


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ftvllm-bench-"))
    try:
        version, prompts, val = load(args.data_dir, tmp, args.k)
        questions, references = [r.question for r in val], [r.answer for r in val]
        print(f"version {version.name}: adapter {version.adapter_path}, {len(prompts)} validation questions")
        expected, base_expected = evaluation_answers(version.base_model, version.adapter_path, prompts,
                                                     args.max_answer_tokens)
        ft = str(Path(sys.executable).with_name("ft"))
        env = {**os.environ, "FT_DATA_DIR": str(tmp), "FT_DATABASE_URL": f"sqlite:///{tmp / 'none.db'}",
               "FT_LOG_LEVEL": "WARNING"}
        results = {
            "embedded": await measure_server("embedded", [ft, "serve", "--model", version.base_model,
                                                          "--max-lora-rank", "16"], env, prompts,
                                             version.adapter_path, args),
            "vllm": await measure_server("vllm", [ft, "serve", "--vllm", "--model", version.base_model],
                                         env, prompts, version.adapter_path, args),
        }
        report = {"version": version.name, "n": len(prompts)}
        for engine, out in results.items():
            report[engine] = {k: v for k, v in out.items() if k != "answers"}
            report[engine]["parity_adapter"] = parity(out["answers"]["adapter"], expected, questions, references)
            report[engine]["parity_base"] = parity(out["answers"]["base"], base_expected, questions, references)
            report[engine]["control_base_vs_adapter_evaluation"] = parity(out["answers"]["base"], expected,
                                                                          questions, references)
        print(json.dumps(report, indent=2))
        e, v = report["embedded"], report["vllm"]
        print("\n| | embedded | vLLM (CPU) | vLLM / embedded |\n| --- | --- | --- | --- |")
        for key in ("start_s", "load_adapter_s", "base_one_p50_s", "base_one_p95_s", "adapter_one_p50_s",
                    "adapter_one_p95_s", "base_tokens_per_s", "adapter_tokens_per_s"):
            ratio = f"{v[key] / e[key]:.2f}x" if e[key] else ""
            print(f"| {key} | {e[key]} | {v[key]} | {ratio} |")
        for engine in ("embedded", "vllm"):
            for what in ("parity_adapter", "parity_base", "control_base_vs_adapter_evaluation"):
                p = report[engine][what]
                print(f"{engine} {what}: identical {p['identical']}/{p['n']}, "
                      f"smoke accepts {p['smoke_accepts']}/{p['n']}, "
                      f"first difference at words {p['first_difference_words']}, key fact {p['key_fact_served']} "
                      f"(evaluation {p['key_fact_evaluation']})")
        if args.save:
            args.save.write_text(json.dumps({"report": report, "answers": {k: r["answers"] for k, r in results.items()},
                                             "evaluation": {"adapter": expected, "base": base_expected}}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".ftbot", help="FT_DATA_DIR of an `ft train` run")
    parser.add_argument("--k", type=int, default=3, help="retrieved pairs in front of each question")
    parser.add_argument("--max-answer-tokens", type=int, default=96, help="as the evaluation (max_new_tokens)")
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per throughput request")
    parser.add_argument("--save", type=Path, help="write the report and every answer as JSON here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
