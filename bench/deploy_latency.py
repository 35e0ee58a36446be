"""Benchmark: from an admin's Approve click to the first answer from the new version, and the bot's own
overhead per answer, with SmolLM2-135M-Instruct on this CPU.

Real parts: `ft serve` in its own process (SmolLM2, the embedded server), the Bolt app over signed
HTTP (in this process), the fake Slack Web API, SQLite. The two versions' adapters are random
rank-16 all-linear LoRAs (their weights do not change the cost); their evaluation samples are
generated here as the trainer's evaluation does (merged adapter, greedy), so the smoke test does
its real work.

1. Approve → answer: the signed Approve click → deploy (load, smoke test, pointer flip) → the
   approval message says so → a signed @mention → the answer naming the new version is posted.
   Goal: under 3 s without the smoke test; the smoke test's share is reported beside it.
2. Overhead: the same questions asked directly of the server (the baseline) and through the bot
   (signed @mention → answer posted in Slack); overhead = bot − direct, per question. Goal: p95 < 50 ms.

Run it alone (2 cores). Usage: python bench/deploy_latency.py [--questions 20] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve_throughput import QUESTIONS, free_port, make_adapters, pct, wait_up
from bench.train_quality import MODELS
from core.contract import DEFAULT_SYSTEM_PROMPT

SYSTEM = DEFAULT_SYSTEM_PROMPT


def samples_for(model_dir: Path, adapter: Path, max_tokens: int) -> list[dict]:
    """The evaluation's sample answers for this adapter, as trainer.evaluate makes them."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.prompt import prompt_messages
    from trainer.evaluate import generate

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()
    questions = QUESTIONS[:3]
    answers = generate(model, tokenizer, [prompt_messages(SYSTEM, q) for q in questions], max_new_tokens=max_tokens)
    return [{"question": q, "reference": "", "base": "", "deployed": None, "new": a}
            for q, a in zip(questions, answers)]


async def run(args: argparse.Namespace) -> None:
    from bot.approvals import render as approval
    from bot.approvals.announcer import Announcer
    from bot.server import serve_http
    from core.prompt import prompt_messages
    from core.states import JobStatus
    from fakes.fake_slack import FakeSlack
    from fakes.signed import SECRET, SlackSender
    from ftbot import wiring
    from ftbot.settings import Settings
    from serving.client import ModelClient
    from storage.jobs import enqueue
    from storage.models import ModelVersion
    from storage.queue import claim, finish
    from trainer.base_model import prepare_base_model

    model_dir = prepare_base_model(args.models_dir)
    tmp = Path(tempfile.mkdtemp(prefix="ftbench-"))
    adapters = make_adapters(model_dir, tmp)
    store = wiring.store(Settings(data_dir=tmp))  # tmp/ftbot.db
    names = []
    for i, path in enumerate(adapters, 1):
        with store.session() as s:
            job = enqueue(s, {}, "UCUR")
        with store.session() as s:
            claim(s, "bench", 600, job_id=job.id)
            version = ModelVersion(name=f"ft-{job.id}-v{i}", job_id=job.id, base_model=str(model_dir),
                                   adapter_path=str(path),
                                   metrics={"samples": samples_for(model_dir, path, args.max_tokens),
                                            "config": {"max_new_tokens": args.max_tokens}})
            s.add(version)
            s.flush()
            finish(s, job.id, "bench", JobStatus.SUCCEEDED, version_id=version.id)
            names.append(version.name)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("ft")), "serve", "--model", str(model_dir), "--port",
                             str(port)],
                            env={**os.environ, "FT_DATA_DIR": str(tmp / "serve"), "FT_LOG_LEVEL": "WARNING"},
                            stdout=subprocess.DEVNULL)
    slack = FakeSlack().channel("CSUP", "support").channel("CAPPROVE", "ft-approvals").user("UADMIN", "Ada") \
        .user("UASK", "Mia")
    await slack.start()
    settings = Settings(data_dir=tmp, admins={"UADMIN"}, curators=set(), approvals_channel="CAPPROVE",
                        model_server_url=url, answer_timeout_s=120, system_prompt=SYSTEM, retrieval=False,
                        # as long as the evaluation's answers: the same work both ways
                        answer_max_tokens=args.max_tokens,
                        slack_bot_token="xoxb-bench", slack_signing_secret=SECRET, slack_api_url=slack.api_url)
    client = wiring.model_client(settings)
    chat_times: list[float] = []  # each chat call's time as the bot made it: the model server's share

    class TimedClient(ModelClient):
        async def chat(self, *a, **kw):
            t0 = time.perf_counter()
            try:
                return await super().chat(*a, **kw)
            finally:
                chat_times.append(time.perf_counter() - t0)

    bot_client = TimedClient(settings.model_server_url, timeout_s=settings.answer_timeout_s)
    app, deps, metrics = wiring.bot(settings, store=store, model=bot_client, announce_every_s=3600)
    runner, bot_url = await serve_http(app, deps, metrics)
    send = SlackSender(f"{bot_url}/slack/events", response_url=slack.response_url)
    ts_counter = iter(range(1, 10_000))

    async def mention(question: str) -> tuple[float, str]:
        """Signed @mention → the answer posted in its thread: (seconds, the context line naming the version)."""
        ts = f"{time.time():.0f}.{next(ts_counter):06d}"
        before = len(slack.calls_to("chat.postMessage"))
        started = time.perf_counter()
        await send.event({"type": "app_mention", "user": "UASK", "text": f"<@UFTBOT> {question}", "ts": ts,
                          "channel": "CSUP", "event_ts": ts})
        while True:
            posts = [p for p in slack.calls_to("chat.postMessage")[before:] if p.get("thread_ts") == ts]
            if posts:
                elapsed = time.perf_counter() - started
                return elapsed, " ".join(e["text"] for b in posts[0]["blocks"] if b["type"] == "context"
                                         for e in b["elements"])
            await asyncio.sleep(0.001)

    try:
        await wait_up(url, proc)
        base = await client.base_model()
        await client.chat(base, prompt_messages(SYSTEM, "hi"), max_tokens=4)  # warm-up
        announcer = Announcer(deps, app.client)
        await announcer.tick()

        # 1. Approve → first answer, for each of the two versions.
        print(f"SmolLM2 ({model_dir.name}), ft serve on CPU, max_tokens {args.max_tokens}")
        for name in names:
            message = next(m for m in slack.messages["CAPPROVE"] if name in (m.get("text") or ""))
            started = time.perf_counter()
            await send.action("UADMIN", approval.APPROVE, name, channel="CAPPROVE",
                              message={"ts": message["ts"], "blocks": message["blocks"], "text": message["text"]})
            while "Approved by" not in (slack.find("CAPPROVE", message["ts"]).get("text") or "") and \
                    "failed" not in (slack.find("CAPPROVE", message["ts"]).get("text") or ""):
                await asyncio.sleep(0.002)
            deployed_at = time.perf_counter() - started
            line = slack.find("CAPPROVE", message["ts"])["text"]
            assert "Approved by" in line, line
            load_s, smoke_s = (float(x) for x in re.search(r"load ([\d.]+) s, smoke test ([\d.]+) s", line).groups())
            answer_s, context = await mention(QUESTIONS[3])
            total = time.perf_counter() - started
            assert name in context, context
            print(f"{name}: click → deployed {deployed_at:.2f} s (load {load_s:.2f} s, smoke test {smoke_s:.2f} s) "
                  f"→ answered by {name} {total:.2f} s after the click; without the smoke test {total - smoke_s:.2f} s "
                  f"(goal < 3 s); the smoke test is {smoke_s / total:.0%} of it")

        # 2. The bot's overhead per answer over the model server's own time (one warm-up question first).
        deployed = names[-1]
        await mention("warm-up question")
        overheads, direct_times, bot_times = [], [], []
        for i in range(args.questions):
            question = QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" (#{i})")
            t0 = time.perf_counter()
            await client.chat(deployed, prompt_messages(SYSTEM, question), max_tokens=args.max_tokens)
            direct = time.perf_counter() - t0
            via_bot, _ = await mention(question)
            direct_times.append(direct)
            bot_times.append(via_bot)
            overheads.append(via_bot - chat_times[-1])  # everything but the model server's answer
        print("overheads (ms):", sorted(round(o * 1000) for o in overheads))
        print(f"\n{args.questions} questions: model server directly p50 {pct(direct_times, .5) * 1000:.0f} ms; "
              f"through the bot p50 {pct(bot_times, .5) * 1000:.0f} ms")
        print("(overhead: signed event sent → answer posted to Slack, minus the bot's own chat call to the server)")
        print(f"bot overhead per answer: p50 {pct(overheads, .5) * 1000:.1f} ms, "
              f"p95 {pct(overheads, .95) * 1000:.1f} ms, "
              f"mean {statistics.mean(overheads) * 1000:.1f} ms (goal p95 < 50 ms); "
              f"{statistics.mean(bot_times) / statistics.mean(direct_times):.3f}x the direct time")
    finally:
        await send.close()
        await bot_client.close()
        await runner.cleanup()
        await slack.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=48, help="the evaluation's max_new_tokens (smoke test)")
    parser.add_argument("--models-dir", type=Path, default=MODELS)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
