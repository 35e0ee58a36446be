"""Benchmark (issue 29): which training change moved the answers, each asked as bench/trust.py asks one training.

One data dir (~/.cache/ftbot-bench/trust-variants), one snapshot, one seed; each variant trains in a child process
of its own (trainer.train.train_adapter with the job's retrieved pairs; its peak RSS is that process's), then one
`ft serve` answers for every variant as `ft ask` does (serving.answering.answer in this process, the index loaded
once: the same retrieval, reuse and grounding check). The variants (VARIANTS): the CPU defaults before
9e76fb3/eb8f957/d81c7ea (the whole batch of 8 in one pass, TRL's output head at every position, no gradient
checkpointing), each of those changes alone on top of them, today's defaults, today's without early stopping, and
today's with checkpoint_by=answers. It prints one markdown table: right / wrong / don't know on the held-out
questions (the snapshot's validation side and the written paraphrases), wrong on the written ones alone (no
checkpoint rule ever saw them), off-store refusals, the forgetting probe, the kept checkpoint's eval loss and epoch,
training minutes and peak RSS; results and answers stay in the work dir, so an interrupted run goes on where it
stopped. --smoke runs the same path on the tiny test model and a few questions (minutes), to check the plumbing, not
to measure.

    .venv/bin/python bench/trust_variants.py [old,new,...] [--dry-run | --smoke] [--retrain]
    .venv/bin/python bench/trust.py --variants [old,new,...] [--dry-run | --smoke] [--retrain]   (the same)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.trust import hold_out_validation, offstore_questions, served, written_questions, written_records

VARIANTS_WORK = Path.home() / ".cache" / "ftbot-bench" / "trust-variants"
# The CPU device settings before 9e76fb3 (TRL's head at every position), eb8f957 and d81c7ea (the batch in parts of
# 2, accumulated; gradient checkpointing on CPU): git show 1adb36d:trainer/config.py, device_setup.
# checkpoint_free_tokens 0: the variants' checkpointing stays as written, whatever the data (trainer.config
# fit_checkpointing, which "new" applies: one conversation a pass, not checkpointed, where it fits 512 tokens).
OLD_CPU = {"fused_loss": "trl", "micro_batch": 0, "gradient_checkpointing": False, "checkpoint_free_tokens": 0}
# name: (what it is, TrainConfig changes, DeviceSetup changes on top of today's CPU setup)
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "old": ("the CPU defaults before the memory changes: the batch of 8 in one pass, TRL's head at every position, "
            "no gradient checkpointing", {}, OLD_CPU),
    "old+gathered": ("old, the output head at the answer tokens only (trainer.loss; the same loss, less memory)",
                     {}, {**OLD_CPU, "fused_loss": "gathered"}),
    "old+two-per-pass": ("old, 2 conversations per pass accumulated into the step of 8 (the length-grouped sampler "
                         "then forms other batches)", {}, {**OLD_CPU, "micro_batch": 2}),
    "old+checkpointing": ("old, gradient checkpointing on", {}, {**OLD_CPU, "gradient_checkpointing": True}),
    "new": ("today's defaults", {}, {}),
    "new-early-stopping": ("today's defaults without early stopping: the whole 3-epoch schedule, the lowest eval loss "
                           "kept (early stopping predates the memory changes: 215c69d)", {"early_stopping_patience": 0},
                           {}),
    # On a CPU without bf16 units (core.machine.cpu_has_bf16) torch multiplies bf16 on a fallback path several
    # times slower than fp32: the 2026-12-07 AVX2 EPYC had not finished one epoch in 21 min (new: 2 in 18.7).
    "new+bf16": ("today's defaults, the base model's weights held in bf16 (the LoRA weights stay fp32; "
                 "bench/train_throughput.py ours:dtype=bfloat16 on an AVX512-BF16 CPU: 1.5x the tokens/s, eval "
                 "loss +0.6 %)", {}, {"dtype": "bfloat16"}),
    "new+answers": ("today's defaults, checkpoint kept and training stopped by answers (checkpoint_by=answers)",
                    {"checkpoint_by": "answers"}, {}),
}
# --smoke: the tiny test model (fakes.tiny_model), long enough conversations for its byte-level tokenizer, one short
# epoch, a few questions: checks the whole path in minutes; its numbers mean nothing.
SMOKE = {"rank": 8, "alpha": 16, "epochs": 1.0, "max_length": 2048, "replay": False, "max_new_tokens": 16,
         "checkpoint_max_new_tokens": 8}
SMOKE_TRAIN, SMOKE_ASKED = 24, 4  # training pairs; questions of each kind asked


def variant_setup(name: str, cfg):
    """(TrainConfig, DeviceSetup) of a variant: today's CPU setup (device_setup) with the variant's changes; the CPU
    even where CUDA is, because the defaults compared are the CPU's."""
    from dataclasses import replace

    from trainer.config import device_setup

    _, train_changes, setup_changes = VARIANTS[name]
    cfg = replace(cfg, **train_changes)
    setup = replace(device_setup(cfg, cuda=False), **setup_changes)
    if setup_changes:
        setup.reason = [*setup.reason, f"bench variant {name}: {setup_changes}"]
    return cfg, setup


def prepare_variants(work: Path, smoke: bool) -> dict:
    """One data dir for every variant: the export imported and approved, one snapshot, its index, the retrieved
    pairs a job would train with; then the validation side rejected, so the index the questions are asked against
    holds the train side only. Returns the job every variant trains on (pickled for the child processes)."""
    import pickle
    from dataclasses import replace

    from sqlmodel import select

    from bench.train_quality import quillmate_rows
    from ftbot import wiring
    from storage import open_store
    from storage.models import DatasetSnapshot
    from trainer.config import TrainConfig

    job_file = work / "job.pickle"
    if job_file.is_file():
        return pickle.loads(job_file.read_bytes())
    work.mkdir(parents=True, exist_ok=True)
    if smoke:
        from fakes.tiny_model import build_tiny_model

        base = str(build_tiny_model(work / "tiny-base"))
        cfg = TrainConfig(base_model=base, **SMOKE)
    else:
        from bench.train_quality import MODELS
        from trainer.base_model import prepare_base_model

        cfg = TrainConfig(base_model=str(prepare_base_model(MODELS)))
    train, val, contexts, _ = quillmate_rows(work / "ftbot.db", cfg=cfg)
    store = open_store(f"sqlite:///{work / 'ftbot.db'}")
    with store.session() as s:
        snapshot = s.exec(select(DatasetSnapshot).order_by(DatasetSnapshot.id.desc())).first()
        hold_out_validation(s, snapshot.id)
    wiring.sync_index(store)  # the rejected validation pairs leave the index
    store.close()
    if smoke:
        train = train[:SMOKE_TRAIN]
        contexts = replace(contexts, train={r["source_key"]: contexts.train[r["source_key"]] for r in train})
    job = {"cfg": cfg, "train": train, "val": val, "contexts": contexts, "smoke": smoke}
    job_file.write_bytes(pickle.dumps(job))
    print(f"{len(train)} train / {len(val)} validation pairs; snapshot {snapshot.id}; work dir {work}", flush=True)
    return job


def train_variant(name: str, job: dict, out: Path) -> dict:
    """One variant, in this (child) process: train, and report what it cost."""
    import resource

    from trainer.train import train_adapter

    cfg, setup = variant_setup(name, job["cfg"])
    started, cpu = time.monotonic(), time.process_time()
    # a checkpoint an interrupted run left is resumed from (the figures then cover the resumed part)
    result = train_adapter(cfg, job["train"], job["val"], out, contexts=job["contexts"], setup=setup)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"variant": name, "adapter": str(out), "train_min": round((time.monotonic() - started) / 60, 1),
            "cpu_min": round((time.process_time() - cpu) / 60, 1), "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),
            "steps": result.steps, "total_steps": result.total_steps, "epochs_done": result.epochs_done,
            "eval_loss": result.eval_loss, "kept_step": result.kept_step, "tokens_per_s": result.tokens_per_s,
            "checkpoints": [c.to_json() for c in result.checkpoints], "config": cfg.as_dict(),
            "setup": {k: getattr(setup, k) for k in ("micro_batch", "fused_loss", "gradient_checkpointing",
                                                     "group_by_length", "dtype", "threads")}}


def asked_questions(job: dict) -> dict:
    """What every model is asked: held-out questions (the snapshot's validation side, then the written paraphrases),
    off-store questions and the forgetting probe."""
    from trainer.evaluate import load_probe

    held = [(r["question"], r["answer"], False) for r in job["val"]] + [(q, a, True) for q, a in written_questions()]
    off, probe = offstore_questions(), load_probe()
    if job["smoke"]:
        held, off, probe = held[:SMOKE_ASKED] + held[-SMOKE_ASKED:], off[:SMOKE_ASKED], probe[:SMOKE_ASKED]
    return {"held_out": held, "offstore": off, "probe": probe}


async def ask_models(env: dict, models: dict[str, str | None], questions: dict, max_new_tokens: int) -> dict:
    """Each model (name: adapter path; None: the base model) asked every question as `ft ask` asks it (retrieval,
    reuse, the grounding check: serving.answering.answer), and the probe without retrieval as the evaluation asks
    it. Retrieval is the same for every model: searched once."""
    from core.prompt import prompt_messages
    from ftbot import wiring
    from ftbot.settings import Settings
    from serving.answering import answer
    from serving.client import AdapterAlreadyLoaded
    from trainer.evaluate import probe_hit

    settings = Settings(data_dir=env["FT_DATA_DIR"], model_server_url=env["FT_MODEL_SERVER_URL"])
    store = wiring.store(settings)
    retriever = wiring.retrieval_index(store)
    retriever.sync()
    client = wiring.model_client(settings, timeout_s=600)
    held, off = questions["held_out"], questions["offstore"]
    hits = {q: retriever.search(q) for q in [q for q, _, _ in held] + off}
    out = {}
    try:
        for name, adapter in models.items():
            model = await client.base_model() if adapter is None else adapter_name(name)
            if adapter is not None:
                try:
                    await client.load_adapter(model, adapter)
                except AdapterAlreadyLoaded:
                    pass
            started = time.monotonic()
            rows = {"validation": [], "offstore": [], "probe": []}
            for kind, items in (("validation", held), ("offstore", [(q, None, False) for q in off])):
                for question, reference, written in items:
                    reply = await answer(client, model, question, hits[question], system_prompt=settings.system_prompt,
                                         max_tokens=settings.answer_max_tokens, grounding=wiring.grounding(settings),
                                         reuse=wiring.reuse(settings))
                    rows[kind].append({
                        "question": question, "reference": reference, "written": written, "answer": reply.text,
                        "model_answer": reply.model_answer, "reused": reply.reused is not None,
                        "grounding": reply.grounding.to_json() if reply.grounding else None,
                        "context": [{"question": h.question, "answer": h.answer, "score": round(h.score, 3)}
                                    for h in hits[question]]})
            for p in questions["probe"]:
                said = await client.complete(model, prompt_messages(settings.system_prompt, p["question"]),
                                             max_tokens=max_new_tokens, temperature=0.0)
                rows["probe"].append({"question": p["question"], "answer": said, "hit": probe_hit(said, p["key"])})
            rows["ask_min"] = round((time.monotonic() - started) / 60, 1)
            out[name] = rows
            print(f"asked {name}: {len(held)} held-out, {len(off)} off-store, {len(questions['probe'])} probe "
                  f"questions in {rows['ask_min']} min", flush=True)
    finally:
        await client.close()
        store.close()
    return out


def adapter_name(variant: str) -> str:
    """A name both servers take (core.contract.ADAPTER_NAME: no '+')."""
    return "trust-" + re.sub(r"[^A-Za-z0-9_-]", "_", variant)


def run_variants(names: list[str], *, smoke: bool, retrain: bool, work: Path = VARIANTS_WORK) -> None:
    """Prepare once, then for the base model and each variant: train (a child process), ask, record; a variant
    trained and asked before is read back. Prints the table."""
    if smoke:
        work = work.with_name(work.name + "-smoke")
    if retrain:
        shutil.rmtree(work, ignore_errors=True)
    job = prepare_variants(work, smoke)
    questions = asked_questions(job)
    env = {**os.environ, "FT_DATA_DIR": str(work), "FT_LOG_LEVEL": "WARNING"}
    results: dict[str, dict] = {}
    with served(env, job["cfg"].base_model) as env:
        for name in ["base", *names]:
            record = work / f"{name}.json"
            if record.is_file():
                results[name] = json.loads(record.read_text())
                continue
            trained = {"variant": name} if name == "base" else _train_in_child(name, work)
            asked = asyncio.run(ask_models(env, {name: trained.get("adapter")}, questions, job["cfg"].max_new_tokens))
            results[name] = {**trained, "asked": asked[name]}
            record.write_text(json.dumps(results[name], indent=1))
            print(variants_table(results), flush=True)
    print("\n" + variants_table(results))
    print(f"\nrecords: {work}/<variant>.json")


def _train_in_child(name: str, work: Path) -> dict:
    out = work / "adapters" / name
    replay = work / "replay.json"  # the base model's replay answers: the same for every variant, generated once
    out.mkdir(parents=True, exist_ok=True)
    if replay.is_file():
        shutil.copyfile(replay, out / "replay.json")
    result_file = work / f"{name}.train.json"
    if result_file.is_file():  # trained before; only the asking was left
        return json.loads(result_file.read_text())
    print(f"training {name}: {VARIANTS[name][0]}", flush=True)
    subprocess.run([sys.executable, __file__, "--train-variant", name, "--job", str(work / "job.pickle"),
                    "--out", str(result_file)], check=True)
    if (out / "replay.json").is_file() and not replay.is_file():
        shutil.copyfile(out / "replay.json", replay)
    return json.loads(result_file.read_text())


def outcome_counts(asked: dict) -> dict:
    """Right / wrong / don't know of what was sent (trainer.evaluate.outcomes at the bot's thresholds: the decision
    `ft ask` made), over all held-out questions and over the written ones; off-store refusals; the probe's share."""
    from ftbot import wiring
    from ftbot.settings import Settings
    from trainer.evaluate import outcomes

    spec = wiring.grounding(Settings())

    def judged(rows: list[dict], off: list[dict]):
        hits = lambda rs: [[(h["question"], h["answer"], h["score"]) for h in r["context"]] for r in rs]  # noqa: E731
        return outcomes([r["question"] for r in rows], [r["reference"] for r in rows],
                        [r["model_answer"] for r in rows], hits(rows), [r["question"] for r in off],
                        [r["model_answer"] for r in off], hits(off), spec)

    probe = asked["probe"]
    return {"all": judged(asked["validation"], asked["offstore"]),
            "written": judged([r for r in asked["validation"] if r["written"]], []),
            "probe": sum(p["hit"] for p in probe) / len(probe) if probe else None}


def variants_table(results: dict) -> str:
    """The markdown table of the variants, one row each (the base model first)."""
    def share(k: int, n: int) -> str:
        return f"{k}/{n} ({k / n:.0%})" if n else "–"

    lines = ["| variant | right | wrong | don't know | wrong, written only | off-store refused | probe | eval loss "
             "(kept step) | epochs | train min (CPU min) | peak RSS GB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        c = outcome_counts(r["asked"])
        a, w = c["all"], c["written"]
        probe = f"{c['probe']:.0%}" if c["probe"] is not None else "–"
        loss = f"{r['eval_loss']:.4f} ({r['kept_step']})" if r.get("eval_loss") is not None else "–"
        lines.append(f"| {name} | {share(a.right, a.n)} | {share(a.wrong, a.n)} | {share(a.dont_know, a.n)} | "
                     f"{share(w.wrong, w.n)} | {a.offstore_refused}/{a.n_offstore} | {probe} | {loss} | "
                     f"{r.get('epochs_done', '–')} | {r.get('train_min', '–')} ({r.get('cpu_min', '–')}) | "
                     f"{r.get('peak_rss_gb', '–')} |")
    return "\n".join(lines)


def dry_run(names: list[str], smoke: bool) -> None:
    """What --variants would train and ask, without training or asking."""
    from trainer.config import TrainConfig

    cfg = TrainConfig(**SMOKE) if smoke else TrainConfig()
    for name in names:
        vcfg, setup = variant_setup(name, cfg)
        changed = {k: v for k, v in vcfg.as_dict().items() if v != cfg.as_dict()[k]}
        print(f"{name:20} {VARIANTS[name][0]}\n{'':20} TrainConfig changes {changed or 'none'}; CPU setup: "
              f"{setup.dtype}, micro_batch {setup.micro_batch}, head {setup.fused_loss}, gradient checkpointing "
              f"{setup.gradient_checkpointing}, "
              f"early stopping patience {vcfg.early_stopping_patience}, checkpoint_by {vcfg.checkpoint_by}")
    written, off = written_records(), offstore_questions()
    print(f"asked of the base model and each variant: the snapshot's validation side (~25 at val 15 %), {len(written)} "
          f"written paraphrases of {len({r['fact'] for r in written})} facts, {len(off)} off-store questions, the "
          f"probe; work dir {VARIANTS_WORK.with_name(VARIANTS_WORK.name + '-smoke') if smoke else VARIANTS_WORK}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="?", default=",".join(VARIANTS),
                   help=f"comma-separated (default all: {', '.join(VARIANTS)})")
    p.add_argument("--retrain", action="store_true", help="start again from a fresh work dir")
    p.add_argument("--dry-run", action="store_true", help="show what would be trained and asked")
    p.add_argument("--smoke", action="store_true", help="the tiny test model and a few questions, to check the path "
                                                        "(minutes; the numbers mean nothing)")
    p.add_argument("--train-variant", help=argparse.SUPPRESS)
    p.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.train_variant:  # a child process of run_variants
        import pickle

        job = pickle.loads(args.job.read_bytes())
        out = args.job.parent / "adapters" / args.train_variant
        args.out.write_text(json.dumps(train_variant(args.train_variant, job, out)))
        return
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        p.error(f"unknown variant(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(VARIANTS)}")
    if args.dry_run:
        dry_run(names, args.smoke)
    else:
        run_variants(names, smoke=args.smoke, retrain=args.retrain)


if __name__ == "__main__":
    main()
