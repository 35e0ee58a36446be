"""Benchmark: a burst of 1,000 signed `reaction_added` deliveries (10 % of them Slack retries).

Target: acknowledged with p99 under 100 ms, and exactly one example per labelled message.
`ft bot` runs as its own process (real HTTP, real Bolt, SQLite); the fake Slack Web API and the
sender run here. Baseline in the same run: GET /healthz on the same server (the HTTP floor).
Usage: python bench/bot_burst.py [--events 1000] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp

from fakes.fake_slack import FakeSlack
from fakes.signed import SECRET, SlackSender


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def timed(coro) -> float:
    t0 = time.perf_counter()
    status, _ = await coro
    assert status == 200, status
    return time.perf_counter() - t0


async def run(n_events: int, concurrency: int) -> None:
    slack = FakeSlack().channel("CSUP", "support").user("UAGENT", "Agent").user("UCUR", "Cora")
    n_unique = n_events - n_events // 10
    answers = []
    for i in range(n_unique):
        slack.user(f"UC{i:04d}", f"Customer {i}")
        root = slack.post("CSUP", f"UC{i:04d}", f"question {i}: how long does thing {i} take?")
        answers.append(slack.post("CSUP", "UAGENT", f"Thing {i} takes {i % 30 + 1} days.", thread_ts=root))
    await slack.start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FT_DATA_DIR": tmp, "FT_SLACK_API_URL": slack.api_url, "FT_CURATORS": "UCUR",
               "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "FT_LOG_LEVEL": "WARNING"}
        ft = str(Path(sys.executable).parent / "ft")
        proc = subprocess.Popen([ft, "bot", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    try:
                        async with http.get(url + "/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                sender = SlackSender(url + "/slack/events")
                sem = asyncio.Semaphore(concurrency)

                async def health() -> tuple[int, str]:
                    async with http.get(url + "/healthz") as resp:
                        return resp.status, await resp.text()

                async def limited(make):
                    async with sem:
                        return await timed(make())

                base = await asyncio.gather(*(limited(health) for _ in range(n_events)))
                rng = random.Random(1)
                deliveries = []
                for i, ts in enumerate(answers):
                    deliveries.append((f"Ev{i:06d}", ts, None))
                for i in rng.sample(range(n_unique), n_events - n_unique):
                    deliveries.append((f"Ev{i:06d}", answers[i], 1))  # the same event_id again
                rng.shuffle(deliveries)

                def event(ts: str) -> dict:
                    return {"type": "reaction_added", "user": "UCUR", "reaction": "white_check_mark",
                            "item": {"type": "message", "channel": "CSUP", "ts": ts}, "event_ts": f"{time.time():.6f}"}

                t0 = time.perf_counter()
                acks = await asyncio.gather(*(
                    limited(lambda e=e, ts=ts, r=r: sender.event(event(ts), event_id=e, retry=r))
                    for e, ts, r in deliveries))
                burst_s = time.perf_counter() - t0
                await slack.wait_for(lambda: len(slack.calls_to("reactions.add")) >= n_unique, timeout=300)
                done_s = time.perf_counter() - t0
                await sender.close()
        finally:
            proc.terminate()
            proc.wait(10)
        import sqlite3

        rows = sqlite3.connect(f"{tmp}/ftbot.db").execute(
            "select count(*), count(distinct source_key) from example").fetchone()
    await slack.stop()
    print(f"{n_events} deliveries ({n_events - n_unique} retries), concurrency {concurrency}")
    print(f"baseline GET /healthz   p50 {pct(base, .5):6.1f} ms  p99 {pct(base, .99):6.1f} ms")
    print(f"reaction_added ack      p50 {pct(acks, .5):6.1f} ms  p99 {pct(acks, .99):6.1f} ms  "
          f"({pct(acks, .99) / max(pct(base, .99), 1e-9):.1f}x baseline p99)  "
          f"{'OK' if pct(acks, .99) < 100 else 'OVER'} (target p99 < 100 ms)")
    print(f"burst sent in {burst_s:.1f} s; all labels stored and acknowledged after {done_s:.1f} s "
          f"({n_unique / done_s:.0f} labels/s); mean ack {statistics.mean(acks) * 1000:.1f} ms")
    print(f"examples stored: {rows[0]} (distinct messages {rows[1]}, labelled messages {n_unique}) "
          f"{'OK' if rows[0] == rows[1] == n_unique else 'WRONG'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.concurrency))
