"""Benchmark: answers a support team can trust, on the Quillmate export, through `ft` as a user runs it.

1. Train (once; --retrain to do it again): a data dir in ~/.cache/ftbot-bench/trust gets the export
   (`ft import-slack`, every unflagged candidate approved as a curator would), its index, one training
   job with the defaults (`ft train`, `ft worker --once`).
2. Serve and ask: the snapshot's validation examples are rejected, so the index holds the train side
   only (a held-out question never finds its own reference); `ft serve` with SmolLM2, `ft deploy` of the
   version, then `ft ask --json` for every validation question, every question of bench/trust_questions.jsonl
   (80 paraphrases of 38 Quillmate facts written for issue 29 from shared/data/quillmate-facts.md, never taken
   from the export: held out of the index as no example holds them, each with a reference stating the fact it
   asks) and every question of bench/offstore_questions.jsonl (43 product questions no approved answer covers,
   written before any tuning). Each answer is judged: right (it states the reference's key fact: core.facts),
   wrong (it states something else), or "I don't know" (the bot declined: core.grounding).
3. The trade-off: the grounding check is a pure function of the answer, its retrieved pairs and the
   thresholds, so it is replayed over the recorded answers for other thresholds: right and wrong as
   min_score and max_gap move, and the off-store refusal rate. Baselines in the same run: the model's
   answers sent unchecked, and the base model asked the same way.

--variants: which training change moved the answers (bench/trust_variants.py, which this runs).

    .venv/bin/python bench/trust.py [--retrain]
    .venv/bin/python bench/trust.py --variants [old,new,...] [--dry-run | --smoke]   (bench/trust_variants.py)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_throughput import free_port, pct
from bench.train_quality import CURATORS, EXPORT

WORK = Path.home() / ".cache" / "ftbot-bench" / "trust"
FT = str(Path(sys.executable).with_name("ft"))
OFFSTORE = ROOT / "bench" / "offstore_questions.jsonl"
WRITTEN = ROOT / "bench" / "trust_questions.jsonl"  # paraphrases written for issue 29, held out of the index


def written_questions() -> list[tuple[str, str]]:
    """(question, reference) of bench/trust_questions.jsonl."""
    return [(r["question"], r["reference"]) for r in written_records()]


def written_records() -> list[dict]:
    return [json.loads(line) for line in WRITTEN.read_text(encoding="utf-8").splitlines() if line.strip()]


def offstore_questions() -> list[str]:
    return [json.loads(line)["question"] for line in OFFSTORE.read_text().splitlines() if line.strip()]


def ft(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([FT, *args], env=env, capture_output=True, text=True, check=check)


def train(env: dict, work: Path = WORK) -> None:
    """A fresh data dir in `work` (env's FT_DATA_DIR) with the export imported and approved, its index, and one
    training job with the defaults, run by `ft worker --once`."""
    from sqlmodel import select

    from core.states import ExampleStatus
    from storage import open_store
    from storage.examples import set_status
    from storage.models import Example

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t = time.monotonic()
    print(ft("import-slack", str(EXPORT), env=env).stdout.strip().splitlines()[-1])
    store = open_store(f"sqlite:///{work / 'ftbot.db'}")
    with store.session() as s:
        ids = [e.id for e in s.exec(select(Example).where(Example.status == ExampleStatus.CANDIDATE)) if not e.flags]
        set_status(s, ids, ExampleStatus.APPROVED, sorted(CURATORS)[0])
    store.close()
    print(f"{len(ids)} pairs approved")
    ft("index", "rebuild", env=env)
    ft("train", env=env)
    worker = ft("worker", "--once", env=env, check=False)
    if worker.returncode:
        raise SystemExit(f"the worker failed:\n{worker.stderr[-3000:]}")
    print(f"trained in {(time.monotonic() - t) / 60:.1f} min")


def hold_out_validation(session, snapshot_id: int) -> list:
    """The snapshot's validation examples, rejected so that the index holds the train side only: a held-out
    question never finds its own reference."""
    from sqlmodel import select

    from core.states import ExampleStatus
    from storage.examples import set_status
    from storage.models import SnapshotExample

    val = list(session.exec(select(SnapshotExample).where(SnapshotExample.snapshot_id == snapshot_id,
                                                          SnapshotExample.side == "validation")))
    set_status(session, [r.example_id for r in val], ExampleStatus.REJECTED, "bench")
    return val


def serve_and_ask(env: dict, previous: dict | None = None) -> dict:
    """Everything asked through `ft ask`, then the bot's latency; with `previous` (an earlier run's record), the
    latency pass only."""
    from sqlmodel import select

    from storage import open_store
    from storage.models import ModelVersion

    store = open_store(f"sqlite:///{WORK / 'ftbot.db'}")
    with store.session() as s:
        version = s.exec(select(ModelVersion).order_by(ModelVersion.id.desc())).first()
        val = hold_out_validation(s, version.snapshot_id)
        name, base_model = version.name, version.base_model
        questions = [(r.question, r.answer) for r in val] + written_questions()
    store.close()
    with served(env, base_model) as env:
        deployed = json.loads(ft("deploy", name, "--json", env=env, check=False).stdout or "{}")
        print(f"deployed {name}: {deployed.get('message')}")
        offstore = offstore_questions()
        if previous is not None:
            previous["latency"] = asyncio.run(bot_latency(env, [q for q, _ in questions] + offstore, previous))
            return previous
        asked = {"version": name, "validation": [], "offstore": []}
        for kind, items in (("validation", questions), ("offstore", [(q, None) for q in offstore])):
            for question, reference in items:
                out = json.loads(ft("ask", question, "--json", env=env).stdout)
                out["reference"] = reference
                asked[kind].append(out)
        asked["base"] = [json.loads(ft("ask", q, "--json", "--model", "base", env=env).stdout) | {"reference": r}
                         for q, r in questions]
        asked["latency"] = asyncio.run(bot_latency(env, [q for q, _ in questions] + offstore, asked))
    return asked


@contextlib.contextmanager
def served(env: dict, base_model: str):
    """`ft serve` with the base model on a free port, up; yields env with FT_MODEL_SERVER_URL pointing at it."""
    port = free_port()
    env = {**env, "FT_MODEL_SERVER_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen([FT, "serve", "--model", base_model, "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if _up(port) or server.poll() is not None:
                break
            time.sleep(1)
        if server.poll() is not None:
            raise SystemExit(f"`ft serve --model {base_model}` exited with status {server.returncode}")
        yield env
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


async def bot_latency(env: dict, questions: list[str], asked: dict) -> dict:
    """Each question answered as the bot answers it, in one warm process (the index loaded once, as in `ft bot`):
    seconds from the question to the decision (retrieval + generation + grounding check)."""
    from ftbot import wiring
    from ftbot.settings import Settings
    from serving.answering import answer
    from storage.versions import deployed

    settings = Settings(data_dir=env["FT_DATA_DIR"], model_server_url=env["FT_MODEL_SERVER_URL"])
    store = wiring.store(settings)
    retriever = wiring.retrieval_index(store)
    retriever.sync()
    client = wiring.model_client(settings)
    from serving.client import AdapterAlreadyLoaded

    with store.session() as s:
        version = deployed(s)
        model, path = version.name, version.adapter_path
    try:  # a fresh server (--latency-only) has not loaded it
        await client.load_adapter(model, path)
    except AdapterAlreadyLoaded:
        pass
    seconds, same = [], 0
    given = {r["question"]: r["answer"] for r in asked["validation"] + asked["offstore"]}
    try:
        for question in questions:
            t = time.perf_counter()
            hits = await asyncio.to_thread(retriever.search, question)
            reply = await answer(client, model, question, hits, system_prompt=settings.system_prompt,
                                 max_tokens=settings.answer_max_tokens, grounding=wiring.grounding(settings))
            seconds.append(time.perf_counter() - t)
            same += reply.text == given.get(question)
    finally:
        await client.close()
        store.close()
    return {"seconds": seconds, "same_as_ft_ask": same, "n": len(questions)}


def _up(port: int) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
        return True
    except OSError:
        return False


# --- Variants (issue 29): which training change moved the answers ----------------------------------------------

def report(asked: dict) -> None:
    from core.contract import GroundingSpec
    from core.facts import carries_key_fact
    from trainer.evaluate import outcomes

    def columns(rows: list[dict]) -> tuple[list, list, list, list]:
        """(questions, references, model answers, retrieved (question, answer, score)) of recorded `ft ask` rows."""
        return ([r["question"] for r in rows], [r.get("reference") for r in rows], [r["model_answer"] for r in rows],
                [[(h["question"], h["answer"], h["score"]) for h in r["context"]] for r in rows])

    def unchecked(rows: list[dict]) -> str:
        facts = [f for f in (carries_key_fact(r["model_answer"], r["reference"], r["question"]) for r in rows)
                 if f is not None]
        return f"right {sum(facts)}/{len(facts)}  wrong {len(facts) - sum(facts)}/{len(facts)}"

    val, off = asked["validation"], asked["offstore"]
    q, refs, answers, hits = columns(val)
    off_q, _, off_answers, off_hits = columns(off)
    print(f"\n== {asked['version']}: {len(val)} validation questions (held out of the index), "
          f"{len(off)} off-store questions")
    print(f"model's answers sent unchecked:  {unchecked(val)}")
    print(f"base model, unchecked:           {unchecked(asked['base'])}")
    print("\nmin_score  max_gap   right   wrong   don't know   off-store refused")
    for min_score in (0.0, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        for max_gap in (1.0, 0.1, 0.05):
            o = outcomes(q, refs, answers, hits, off_q, off_answers, off_hits, GroundingSpec(min_score=min_score,
                                                                                               max_gap=max_gap))
            print(f"  {min_score:.2f}     {max_gap:.2f}    {o.right:2d}/{o.n} {o.right / o.n:4.0%}  "
                  f"{o.wrong:2d}/{o.n} {o.wrong / o.n:4.0%}  {o.dont_know:2d}/{o.n} {o.dont_know / o.n:4.0%}     "
                  f"{o.offstore_refused:2d}/{o.n_offstore} {o.offstore_refused / o.n_offstore:4.0%}")
    lat = asked["latency"]
    print(f"\nlatency as the bot answers (warm index; retrieval + generation + check), {lat['n']} questions: "
          f"p50 {pct(lat['seconds'], .5):.2f} s, p95 {pct(lat['seconds'], .95):.2f} s (goal < 2 s); "
          f"the same reply as `ft ask` for {lat['same_as_ft_ask']}/{lat['n']}")
    reasons: dict[str, int] = {}
    for r in val + off:
        reasons[r["grounding"]["reason"]] = reasons.get(r["grounding"]["reason"], 0) + 1
    print(f"decisions at the defaults: {reasons}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--retrain", action="store_true", help="train again even when a trained data dir is there")
    p.add_argument("--report-only", action="store_true", help="replay the recorded answers only")
    p.add_argument("--latency-only", action="store_true", help="measure the bot's latency again, keep the answers")
    p.add_argument("--variants", nargs="?", const="", metavar="NAMES",
                   help="train and ask these variants side by side (comma-separated; default all) and print their "
                        "table: bench/trust_variants.py")
    p.add_argument("--dry-run", action="store_true", help="with --variants: show what would be trained and asked")
    p.add_argument("--smoke", action="store_true", help="with --variants: the tiny test model and a few questions, "
                                                        "to check the path (minutes; the numbers mean nothing)")
    args = p.parse_args()
    if args.variants is not None:
        from bench.trust_variants import main as variants

        variants([*([args.variants] if args.variants else []), *(["--dry-run"] if args.dry_run else []),
                  *(["--smoke"] if args.smoke else []), *(["--retrain"] if args.retrain else [])])
        return
    if args.dry_run or args.smoke:
        p.error("--dry-run and --smoke go with --variants")
    env = {**os.environ, "FT_DATA_DIR": str(WORK), "FT_CURATORS": ",".join(sorted(CURATORS)),
           "FT_ADMINS": sorted(CURATORS)[0], "FT_LOG_LEVEL": "WARNING"}
    record = WORK / "asked.json"
    if args.latency_only:
        record.write_text(json.dumps(serve_and_ask(env, json.loads(record.read_text())), indent=1))
    elif not args.report_only:
        if args.retrain or not (WORK / "adapters").is_dir():
            train(env)
        record.write_text(json.dumps(serve_and_ask(env), indent=1))
    report(json.loads(record.read_text()))


if __name__ == "__main__":
    main()
