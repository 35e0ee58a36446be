"""Benchmark: a question in Slack's agent view, as the asker sees it (DIRECTION §2), against today's whole answer.

`ft bot` runs as its own process (wired by ftbot.wiring, real HTTP, real Bolt, SQLite holding the Quillmate
export's approved pairs, or the demo export when ../shared is absent), the fake Slack Web API notes when each call
arrives. Each question is sent as a signed agent-view message (a thread in the app's DM) and timed from the event's
delivery to:
  status       the thread's status (assistant.threads.setStatus)       target p95 ≤ 0.5 s
  first words  the first streamed text (chat.startStream)               target p50 ≤ 1.5 s
  whole        the answer complete (chat.stopStream with its blocks, or the message posted or updated in place)
Side by side, the same question as today's whole-message answer: a customer's @mention in a channel in mention
mode, which posts only checked text (chat.postMessage).

Model: the embedded server (`ft serve`, SmolLM2-135M) by default; --stub: a local stub that streams a scripted
answer at a steady pace (the Slack side alone, without the model's cost).

    .venv/bin/python bench/agent_latency.py [--questions 20] [--stub]
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

from bench.draft_latency import DEMO, FT, QUILLMATE, questions, wait_http
from bench.serve_throughput import free_port, pct
from fakes.fake_slack import FakeSlack
from fakes.signed import SECRET, SlackSender

SUPPORT, DM, THREAD = "CBENCHSUP", "DBENCHAGENT", "1700000000.000100"
FINAL = ("chat.stopStream", "chat.postMessage", "chat.update")
TARGETS = {"status": (0.95, 0.5), "first words": (0.50, 1.5)}  # quantile, seconds


def paced_stub(prefill_s: float, piece_s: float):
    """tests/model_stub.py, answering as a model would pace it: `prefill_s` before the first piece, `piece_s`
    per piece; a whole (unstreamed) answer takes as long as the streamed one."""
    from tests.model_stub import ModelStub

    class PacedStub(ModelStub):
        async def _chat(self, request):
            body = await request.json()
            if not body.get("stream"):
                await asyncio.sleep(len(self.answer) / self.chunk_chars * self.chunk_delay_s)
            return await super()._chat(request)

    stub = PacedStub()
    stub.delay_s, stub.chunk_delay_s = prefill_s, piece_s
    stub.answer = ("Quillmate keeps every document's history for 30 days on the free plan. You can restore an "
                   "earlier version from the document's menu: History, then Restore.")
    return stub


def since(slack: FakeSlack, start: int, method: str, where=lambda p: True) -> list[tuple[float, dict]]:
    return [(at, p) for at, m, p in slack.timed_calls[start:] if m == method and where(p)]


async def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"no answer within {timeout:.0f} s")
        await asyncio.sleep(0.005)


async def ask_agent(sender: SlackSender, slack: FakeSlack, question: str, i: int, timeout: float) -> dict:
    """Seconds from the agent-view message to its status, first words and whole answer."""
    thread = f"{1700000000 + i}.000100"
    ts = slack.post(DM, "UCUSASK", question, thread_ts=thread)
    start = len(slack.timed_calls)
    t0 = time.perf_counter()
    status, _ = await sender.event({"type": "message", "channel_type": "im", "channel": DM, "user": "UCUSASK",
                                    "text": question, "ts": ts, "event_ts": ts, "thread_ts": thread})
    assert status == 200, status

    def done() -> list:
        return [at for m in FINAL for at, p in since(slack, start, m)
                if m != "chat.stopStream" or p.get("blocks")]

    await wait_until(done, timeout)
    statuses = since(slack, start, "assistant.threads.setStatus", lambda p: p.get("status"))
    words = since(slack, start, "chat.startStream") or since(slack, start, "chat.postMessage")
    return {"status": statuses[0][0] - t0 if statuses else float("nan"), "first words": words[0][0] - t0,
            "whole": min(done()) - t0, "streamed": bool(since(slack, start, "chat.startStream")),
            "declined": bool(since(slack, start, "chat.update"))}


async def ask_mention(sender: SlackSender, slack: FakeSlack, question: str, timeout: float) -> float:
    """Today's whole answer: a customer's @mention in a channel in mention mode; seconds to its message."""
    root = slack.post(SUPPORT, "UCUSASK", f"<@UFTBOT> {question}")
    start = len(slack.timed_calls)
    t0 = time.perf_counter()
    status, _ = await sender.event({"type": "app_mention", "channel": SUPPORT, "user": "UCUSASK", "ts": root,
                                    "event_ts": root, "text": f"<@UFTBOT> {question}"})
    assert status == 200, status
    posted = lambda: since(slack, start, "chat.postMessage", lambda p: p.get("thread_ts") == root)  # noqa: E731
    await wait_until(posted, timeout)
    return posted()[0][0] - t0


def start_model(env: dict, port: int, stub: bool):
    """(stub or None, process or None): the stub runs in this process; `ft serve` as its own."""
    if stub:
        return paced_stub(prefill_s=0.3, piece_s=0.04), None
    from trainer.base_model import prepare_base_model

    base = prepare_base_model(Path.home() / ".cache" / "ftbot-bench" / "models")  # converted once, kept
    return None, subprocess.Popen([FT, "serve", "--model", str(base), "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL)


async def run(n_questions: int, stub_mode: bool) -> None:
    asked = questions(n_questions, random.Random(11))
    slack = FakeSlack().channel(SUPPORT, "support").channel(DM, "ftbot", "dm").user("UCUSASK", "Customer")
    await slack.start()
    timeout = 60.0 if stub_mode else 600.0
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FT_DATA_DIR": tmp, "FT_SLACK_API_URL": slack.api_url, "FT_CURATORS": "ULEAD",
               "FT_ADMINS": "ULEAD", "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
               "FT_LOG_LEVEL": "WARNING", "FT_ANSWER_TIMEOUT_S": str(timeout)}
        export_dir = QUILLMATE if QUILLMATE.exists() else DEMO
        curators = "U0AG10XZMXH,U0AG1DZTDZ2" if export_dir == QUILLMATE else "U0HLLEAD01"
        imported = subprocess.run([FT, "import-slack", str(export_dir), "--json"], env={**env, "FT_CURATORS": curators},
                                  capture_output=True, text=True, check=True)
        subprocess.run([FT, "index", "rebuild"], env=env, capture_output=True, check=True)
        model_port, bot_port = free_port(), free_port()
        stub, server = start_model(env, model_port, stub_mode)
        if stub is not None:
            await stub.start()
            env["FT_MODEL_SERVER_URL"] = stub.url
        else:
            env["FT_MODEL_SERVER_URL"] = f"http://127.0.0.1:{model_port}"
        bot = subprocess.Popen([FT, "bot", "--port", str(bot_port)], env=env)
        bot_url = f"http://127.0.0.1:{bot_port}"
        try:
            async with aiohttp.ClientSession() as http:
                if server is not None:
                    await wait_http(http, f"http://127.0.0.1:{model_port}/health", server, 300)
                await wait_http(http, bot_url + "/healthz", bot, 120)
            sender = SlackSender(bot_url + "/slack/events")
            # Warm-up: the first question loads the embedder (and, on the real server, compiles kernels).
            await ask_agent(sender, slack, "How do I reset my password?", 9999, timeout)
            await ask_mention(sender, slack, "How do I reset my password?", timeout)
            agent, whole_today = [], []
            for i, question in enumerate(asked):
                agent.append(await ask_agent(sender, slack, question, i, timeout))
                whole_today.append(await ask_mention(sender, slack, question, timeout))
            await sender.close()
        finally:
            bot.terminate()
            bot.wait(20)
            if server is not None:
                server.terminate()
                server.wait(20)
            if stub is not None:
                await stub.stop()
    await slack.stop()
    report(agent, whole_today, json.loads(imported.stdout), export_dir, stub_mode)


def report(agent: list[dict], whole_today: list[float], imported: dict, export_dir: Path, stub_mode: bool) -> None:
    ms = 1000.0
    model = "stub model server (0.3 s to the first piece, 40 ms a piece)" if stub_mode else "ft serve"
    print(f"store: {export_dir.name} ({imported.get('approved')} approved pairs); model: {model}; "
          f"{len(agent)} questions, one at a time; {sum(a['streamed'] for a in agent)} streamed, "
          f"{sum(a['declined'] for a in agent)} declined after streaming (replaced in place)")
    rows = [(f"agent view: {key}", [a[key] for a in agent]) for key in ("status", "first words", "whole")]
    rows.append(("today: @mention, whole message", whole_today))
    for name, values in rows:
        line = f"{name:34s} p50 {pct(values, .5) * ms:7.0f} ms  p95 {pct(values, .95) * ms:7.0f} ms"
        key = name.removeprefix("agent view: ")
        if key in TARGETS:
            q, limit = TARGETS[key]
            got = pct(values, q)
            line += f"  target p{round(q * 100)} ≤ {limit:.1f} s: {'OK' if got <= limit else 'MISSED'}"
        print(line)
    first, today = pct([a["first words"] for a in agent], .5), pct(whole_today, .5)
    print(f"first words come {today / max(first, 1e-9):.1f}x sooner than today's whole answer (p50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--stub", action="store_true", help="a streaming stub instead of `ft serve`")
    args = parser.parse_args()
    asyncio.run(run(max(args.questions, 2), args.stub))


if __name__ == "__main__":
    main()
