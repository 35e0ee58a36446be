"""Benchmark: draft mode as a support team lives it, on the embedded model server on this CPU.

1. From a customer's message to its draft card: `ft serve` (SmolLM2-135M) and `ft bot` run as their own
   processes (real HTTP, real Bolt, SQLite), the store holds the Quillmate export's approved pairs (the demo
   export when ../shared is absent), #support runs in draft mode (`ft channels set`), and customers' questions
   (the export's own, and off-store ones from bench/offstore_questions.jsonl) arrive one at a time as signed
   `message` events. Timed from the event's delivery to the card's chat.postMessage at the fake Slack Web API.
   Baseline in the same run: the same questions answered as the bot answers them (retrieval, the model server,
   the grounding check: serving.answering), called directly, with no Slack, queue or database write around it.
2. Ack time under a burst: N customer questions delivered at once (concurrency C); every event must be
   acknowledged well inside Slack's 3 s while the drafts are worked off behind. Baseline: GET /healthz.

    .venv/bin/python bench/draft_latency.py [--questions 24] [--burst 100] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp

from bench.serve_throughput import free_port, pct
from fakes.fake_slack import FakeSlack
from fakes.signed import SECRET, SlackSender

QUILLMATE = ROOT.parent / "shared" / "data" / "quillmate-slack-export"
DEMO = ROOT / "demo" / "slack-export"
OFFSTORE = ROOT / "bench" / "offstore_questions.jsonl"
FT = str(Path(sys.executable).with_name("ft"))
SUPPORT, DRAFTS = "CBENCHSUP", "CBENCHDRAFTS"


class TimedSlack(FakeSlack):
    """The fake Slack Web API, noting when each message was posted."""

    def __init__(self) -> None:
        super().__init__()
        self.posted_at: list[tuple[float, dict]] = []

    async def api_chat_postMessage(self, p: dict) -> dict:
        self.posted_at.append((time.perf_counter(), p))
        return await super().api_chat_postMessage(p)


def questions(n: int, rng: random.Random) -> list[str]:
    """Half the export's own thread roots (on-store), half off-store product questions."""
    from bot.slack.export import load_export

    export_dir = QUILLMATE if QUILLMATE.exists() else DEMO
    export = load_export(export_dir, None)
    roots = [m["text"] for msgs in export.messages.values() for m in msgs
             if m.get("reply_count") and not m.get("bot_id") and 20 < len(m.get("text", "")) < 300]
    off = [json.loads(line)["question"] for line in OFFSTORE.read_text().splitlines() if line.strip()]
    return rng.sample(roots, min(len(roots), n - n // 2)) + rng.sample(off, n // 2)


async def wait_http(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        try:
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


async def run(n_questions: int, burst: int, concurrency: int) -> None:
    rng = random.Random(7)
    asked = questions(n_questions, rng)
    slack = TimedSlack().channel(SUPPORT, "support").channel(DRAFTS, "support-drafts")
    slack.user("UAGENT", "Agent").user("ULEAD", "Lead")
    for i in range(max(n_questions, burst)):
        slack.user(f"UCUS{i:04d}", f"Customer {i}")
    await slack.start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FT_DATA_DIR": tmp, "FT_SLACK_API_URL": slack.api_url, "FT_CURATORS": "ULEAD",
               "FT_ADMINS": "ULEAD", "FT_AGENTS": "UAGENT", "SLACK_BOT_TOKEN": "xoxb-bench",
               "SLACK_SIGNING_SECRET": SECRET, "FT_LOG_LEVEL": "WARNING", "FT_ANSWER_TIMEOUT_S": "600"}
        export_dir = QUILLMATE if QUILLMATE.exists() else DEMO
        curators = "U0AG10XZMXH,U0AG1DZTDZ2" if export_dir == QUILLMATE else "U0HLLEAD01"
        imported = subprocess.run([FT, "import-slack", str(export_dir), "--json"], env={**env, "FT_CURATORS": curators},
                                  capture_output=True, text=True, check=True)
        subprocess.run([FT, "index", "rebuild"], env=env, capture_output=True, check=True)
        subprocess.run([FT, "channels", "set", SUPPORT, "draft", "--drafts", DRAFTS], env=env, check=True,
                       capture_output=True)
        model_port, bot_port = free_port(), free_port()
        env["FT_MODEL_SERVER_URL"] = f"http://127.0.0.1:{model_port}"
        from trainer.base_model import prepare_base_model

        base = prepare_base_model(Path.home() / ".cache" / "ftbot-bench" / "models")  # converted once, kept
        server = subprocess.Popen([FT, "serve", "--model", str(base), "--port", str(model_port)], env=env,
                                  stdout=subprocess.DEVNULL)
        bot = subprocess.Popen([FT, "bot", "--port", str(bot_port)], env=env)
        bot_url = f"http://127.0.0.1:{bot_port}"
        try:
            async with aiohttp.ClientSession() as http:
                await wait_http(http, f"http://127.0.0.1:{model_port}/health", server, 300)
                await wait_http(http, bot_url + "/healthz", bot, 120)
                sender = SlackSender(bot_url + "/slack/events")
                # Warm-up: the first question loads the embedder and compiles kernels in both processes.
                await ask_one(sender, slack, "How do I reset my password?", "UCUS9999")

                floor = await answered_directly(env, asked)
                card_s = [await ask_one(sender, slack, q, f"UCUS{i:04d}") for i, q in enumerate(asked)]

                async def health() -> float:
                    t0 = time.perf_counter()
                    async with http.get(bot_url + "/healthz") as resp:
                        assert resp.status == 200
                    return time.perf_counter() - t0

                sem = asyncio.Semaphore(concurrency)

                async def limited(make):
                    async with sem:
                        return await make()

                base = await asyncio.gather(*(limited(health) for _ in range(burst)))

                async def deliver(i: int) -> float:
                    ts = slack.post(SUPPORT, f"UCUS{i:04d}", f"burst question {i}: {asked[i % len(asked)]}")
                    t0 = time.perf_counter()
                    status, _ = await sender.event(_message(ts, f"UCUS{i:04d}", f"burst question {i}"))
                    assert status == 200, status
                    return time.perf_counter() - t0

                acks = await asyncio.gather(*(limited(lambda i=i: deliver(i)) for i in range(burst)))
                await sender.close()
        finally:
            for proc in (bot, server):
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    await slack.stop()
    summary = json.loads(imported.stdout)
    print(f"store: {export_dir.name} ({summary.get('approved')} approved pairs); {len(asked)} questions "
          f"({len(asked) - len(asked) // 2} on-store, {len(asked) // 2} off-store), asked one at a time")
    ms = 1000.0
    print(f"baseline: answered directly   p50 {pct(floor, .5) * ms:7.0f} ms  p95 {pct(floor, .95) * ms:7.0f} ms")
    print(f"message → draft card          p50 {pct(card_s, .5) * ms:7.0f} ms  p95 {pct(card_s, .95) * ms:7.0f} ms  "
          f"({pct(card_s, .5) / max(pct(floor, .5), 1e-9):.2f}x baseline p50, "
          f"{pct(card_s, .95) / max(pct(floor, .95), 1e-9):.2f}x p95)")
    print(f"burst of {burst} questions (concurrency {concurrency}):")
    print(f"baseline GET /healthz         p50 {pct(base, .5) * ms:7.1f} ms  p99 {pct(base, .99) * ms:7.1f} ms")
    print(f"message event ack             p50 {pct(acks, .5) * ms:7.1f} ms  p99 {pct(acks, .99) * ms:7.1f} ms  "
          f"{'OK' if pct(acks, .99) < 3.0 else 'OVER'} (Slack retries after 3 s)")


def _message(ts: str, user: str, text: str) -> dict:
    return {"type": "message", "channel_type": "channel", "channel": SUPPORT, "user": user, "text": text, "ts": ts,
            "event_ts": ts}


async def answered_directly(env: dict, asked: list[str]) -> list[float]:
    """Seconds to answer each question as the bot does (serving.answering), without Slack around it."""
    from ftbot import wiring
    from ftbot.settings import Settings
    from serving import answering

    settings = Settings(data_dir=env["FT_DATA_DIR"], model_server_url=env["FT_MODEL_SERVER_URL"],
                        answer_timeout_s=600)
    store = wiring.store(settings)
    index = wiring.retrieval_index(store)
    index.sync()
    client = wiring.model_client(settings)
    base = await client.base_model()
    seconds = []
    for q in asked:
        t0 = time.perf_counter()
        hits = await asyncio.to_thread(index.search, q, channel=SUPPORT)
        await answering.answer(client, base, q, hits, system_prompt=settings.system_prompt,
                               max_tokens=settings.answer_max_tokens, grounding=wiring.grounding(settings))
        seconds.append(time.perf_counter() - t0)
    await client.close()
    store.close()
    return seconds


async def ask_one(sender: SlackSender, slack: TimedSlack, question: str, user: str) -> float:
    """Seconds from delivering the question to its draft card."""
    ts = slack.post(SUPPORT, user, question)
    before = len(slack.posted_at)
    t0 = time.perf_counter()
    status, _ = await sender.event(_message(ts, user, question))
    assert status == 200, status
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for at, p in slack.posted_at[before:]:
            if p.get("channel") == DRAFTS:
                return at - t0
        await asyncio.sleep(0.01)
    raise SystemExit(f"no draft card for {question!r} within 10 min")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.questions, args.burst, args.concurrency))
