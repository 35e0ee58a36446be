"""Benchmark: grounded answers on the Quillmate export, asked the way `ft ask` and the bot ask.

Takes the store and adapter a `bench/train_quality.py` run left (default tag rag-e3-lr2e-3: trained
with retrieval), holds the validation examples out of the index (they are rejected in a copy of
the store, so a question never finds its own reference), starts `ft serve` with SmolLM2 and the
adapter, and answers every validation question four ways:

    adapter + retrieval (what the bot gives) · adapter alone · base + retrieval · base alone

scored by key fact (core.facts: the reference's numbers, codes or names stated). Also: questions
the store cannot answer must get "I don't know" (questions not in trainer/unknown.jsonl), and the
latency of the whole answer (retrieval + generation) with its p95 (goal < 2 s), beside the model
server's time alone; then the baseline in the same run: the same answers from a server without prompt
lookup decoding (`ft serve --prompt-lookup 0`), their latency, and how many came out identical.

    .venv/bin/python bench/grounded.py [--tag rag-e3-lr2e-3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_throughput import free_port, pct, wait_up
from bench.train_quality import MODELS, RESULTS
from bench.trust import hold_out_validation
from core.contract import DEFAULT_SYSTEM_PROMPT, RETRIEVAL

OFF_STORE = [  # product questions nobody in the Quillmate export answered (and not in trainer/unknown.jsonl)
    "Do you have a kiosk mode for shared office tablets?",
    "Can I send invoices by fax?",
    "Is there a Quillmate plugin for Microsoft Word?",
    "Can I pay my subscription in Japanese yen?",
    "Do you offer a discount for students?",
    "Can I get my invoices printed and posted by you?",
]


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ftgrounded-"))
    try:
        await measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def measure(args: argparse.Namespace, tmp: Path) -> None:
    from sqlmodel import select

    from core.facts import carries_key_fact
    from core.prompt import DONT_KNOW, prompt_messages
    from core.states import ExampleStatus
    from ftbot import wiring
    from ftbot.settings import Settings
    from storage import open_store
    from storage.models import DatasetSnapshot, Example
    from trainer.base_model import prepare_base_model

    out = RESULTS / args.tag
    adapter = out / "adapter"
    if not (adapter / "adapter_model.safetensors").is_file():
        raise SystemExit(f"no adapter in {adapter}: run bench/train_quality.py --tag {args.tag} first")
    shutil.copy(out / "quillmate.db", tmp / "ftbot.db")
    store = open_store(f"sqlite:///{tmp / 'ftbot.db'}")
    with store.session() as s:
        snap = s.exec(select(DatasetSnapshot).order_by(DatasetSnapshot.id.desc())).first()
        val = hold_out_validation(s, snap.id)
        n_index = len(list(s.exec(select(Example.id).where(Example.status == ExampleStatus.APPROVED))))
    retriever = wiring.retrieval_index(store)
    retriever.sync()
    system = DEFAULT_SYSTEM_PROMPT
    base_dir = prepare_base_model(args.models_dir)

    async def serve(*extra: str):
        """(client, base model name, process) of a fresh `ft serve` with the adapter loaded."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([str(Path(sys.executable).with_name("ft")), "serve", "--model", str(base_dir),
                                 "--port", str(port), *extra],
                                env={**os.environ, "FT_DATA_DIR": str(tmp / "serve"), "FT_LOG_LEVEL": "WARNING"},
                                stdout=subprocess.DEVNULL)
        client = wiring.model_client(Settings(model_server_url=url, answer_timeout_s=120))
        await wait_up(url, proc)
        base = await client.base_model()
        await client.load_adapter("quillmate-rag", str(adapter))
        await client.chat(base, prompt_messages(system, "hi"), max_tokens=4)  # warm-up
        return client, base, proc

    async def stop(client, proc) -> None:
        await client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    async def answer(client, model: str, question: str, retrieval: bool) -> tuple[str, float, float]:
        """(answer, seconds in all, seconds on the model server)"""
        t0 = time.perf_counter()
        context = None
        if retrieval:
            hits = await asyncio.to_thread(retriever.search, question, args.k)
            context = [(h.question, h.answer) for h in hits]
        t1 = time.perf_counter()
        text = await client.chat(model, prompt_messages(system, question, context), max_tokens=args.max_tokens)
        t2 = time.perf_counter()
        return text, t2 - t0, t2 - t1

    questions = [row for row in val if carries_key_fact("", row.answer, row.question) is not None]
    client, base, proc = await serve()
    try:
        ways = {"adapter + retrieval": ("quillmate-rag", True), "adapter alone": ("quillmate-rag", False),
                "base + retrieval": (base, True), "base alone": (base, False)}
        hits = {w: 0 for w in ways}
        times, server_times, given = [], [], {}
        for row in questions:
            for way, (model, retrieval) in ways.items():
                text, seconds, on_server = await answer(client, model, row.question, retrieval)
                hits[way] += bool(carries_key_fact(text, row.answer, row.question))
                if way == "adapter + retrieval":
                    times.append(seconds)
                    server_times.append(on_server)
                    given[row.question] = text
                    if args.verbose:
                        print(f"Q: {row.question[:100]}\n  ref: {row.answer[:120]}\n  got: {text[:160]}")
        total = len(questions)
        print(f"\nQuillmate validation questions with a key fact: {total} (index: {n_index} approved train pairs, "
              f"validation held out)")
        for way in ways:
            print(f"  {way:<22} key fact {hits[way]:>3}/{total} = {hits[way] / total:.0%}")
        honest = 0
        for question in OFF_STORE:
            text, seconds, on_server = await answer(client, "quillmate-rag", question, True)
            times.append(seconds)
            server_times.append(on_server)
            given[question] = text
            said = "don't know" in text.lower() or "do not know" in text.lower()
            honest += said
            if args.verbose or not said:
                print(f"  off-store: {question} → {text[:140]}")
        print(f"  questions the store cannot answer: {honest}/{len(OFF_STORE)} answered \"I don't know\" "
              f"(the taught sentence: {DONT_KNOW[:40]}…)")
        print(f"  answer latency (retrieval + generation, adapter + retrieval): p50 {pct(times, .5):.2f} s, "
              f"p95 {pct(times, .95):.2f} s (goal < 2 s); model server alone p50 {pct(server_times, .5):.2f} s, "
              f"p95 {pct(server_times, .95):.2f} s")
    finally:
        await stop(client, proc)

    if not args.no_baseline:
        # The baseline, same run: the same answers from a server decoding one token per pass (no prompt lookup).
        client, _, proc = await serve("--prompt-lookup", "0")
        try:
            plain_times, same = [], 0
            for question, text in given.items():
                plain, seconds, _ = await answer(client, "quillmate-rag", question, True)
                plain_times.append(seconds)
                same += plain == text
            print(f"  baseline, plain greedy decoding (ft serve --prompt-lookup 0): "
                  f"p50 {pct(plain_times, .5):.2f} s, "
                  f"p95 {pct(plain_times, .95):.2f} s; with prompt lookup {pct(plain_times, .5) / pct(times, .5):.2f}x "
                  f"faster at p50, {pct(plain_times, .95) / pct(times, .95):.2f}x at p95; identical answers "
                  f"{same}/{len(given)}")
        finally:
            await stop(client, proc)

    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", default="rag-e3-lr2e-3")
    parser.add_argument("--max-tokens", type=int, default=256, help="as the bot asks (serving.client default)")
    parser.add_argument("--models-dir", type=Path, default=MODELS)
    parser.add_argument("--k", type=int, default=RETRIEVAL.k,
                        help="pairs retrieved in front of a question (default: as trained and as the bot asks)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-greedy latency baseline")
    parser.add_argument("--verbose", "-v", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
