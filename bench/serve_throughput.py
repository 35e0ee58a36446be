"""Benchmark: the embedded model server (`ft serve`) under 8 concurrent chat requests.

Three runs against one server process, in this order: the base model alone (the baseline), all
requests on one LoRA adapter, and requests alternating between two adapters. Each run reports
requests/s, generated tokens/s and p50/p95 latency; the adapter runs are also given relative to the
baseline measured in the same run. Every request generates exactly --max-tokens tokens (vLLM's
`ignore_eos`), so the runs do the same work whatever the adapters say.

Then, in this process after the server has stopped, the engine alone (serving.generation.Engine):
one adapter merged into the base weights (what `ft serve` does) against the same adapter on peft's
LoRA path beside the base (the baseline: two extra small matmuls per linear layer per token), on a
question with three retrieved answers in front (core.prompt), as the bot asks.

Uses the real SmolLM2-135M-Instruct prepared at .ftbot/models (`ft model prepare`); skips with a
message when it is not there, or when the machine is busy (1-minute load >= --max-load), since
other work on the machine would make the numbers meaningless. The adapters are random rank-16
all-linear LoRAs built here (weights do not change the cost of serving them).
Usage: python bench/serve_throughput.py [--requests 24] [--concurrency 8] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
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

DEFAULT_MODEL = ROOT / ".ftbot" / "models" / "SmolLM2-135M-Instruct"
QUESTIONS = [
    "How long does the free trial last?", "Can I export my invoices as PDF?", "How do I reset my password?",
    "Which plans do you offer?", "Where do I change the invoice address?", "Do you support SSO with Okta?",
    "Can I pay by bank transfer?", "How do I add a colleague to my team?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), to tell whether the server had the cores to itself."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def make_adapters(model_dir: Path, out: Path, n: int = 2, rank: int = 16) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    for seed in range(1, n + 1):
        model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * 0.01)
        path = out / f"bench-a{seed}"
        model.save_pretrained(path)
        paths.append(path)
        base = model.unload()  # the plain base again, for the next adapter
    return paths


async def one(http: aiohttp.ClientSession, url: str, model: str, question: str, max_tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    async with http.post(url + "/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens,
            "temperature": 0, "ignore_eos": True}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return time.perf_counter() - started, body["usage"]["completion_tokens"]


async def scenario(url: str, models: list[str], n: int, concurrency: int, max_tokens: int, pid: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    cpu_before = cpu_seconds(pid)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        async def request(i: int) -> tuple[float, int]:
            async with gate:
                return await one(http, url, models[i % len(models)], QUESTIONS[i % len(QUESTIONS)], max_tokens)

        started = time.perf_counter()
        results = await asyncio.gather(*(request(i) for i in range(n)))
        wall = time.perf_counter() - started
    latencies = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    cpu_after = cpu_seconds(pid)
    cores = None if cpu_before is None or cpu_after is None else round((cpu_after - cpu_before) / wall, 2)
    return {"server_cores_used": cores, "requests": n, "wall_s": round(wall, 2), "req_per_s": round(n / wall, 3),
            "tokens_per_s": round(tokens / wall, 1), "p50_ms": round(pct(latencies, 0.5) * 1000),
            "p95_ms": round(pct(latencies, 0.95) * 1000), "mean_ms": round(statistics.mean(latencies) * 1000)}


async def wait_up(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"ft serve exited with {proc.returncode}")
            try:
                async with http.get(url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise SystemExit("ft serve did not answer /health in time")


def merged_vs_lora_path(model_dir: Path, adapter: Path, max_tokens: int, n: int = 6) -> dict[str, float]:
    """Seconds per answer (p50 of n) with the adapter merged, and on peft's LoRA path."""
    from core.prompt import prompt_messages
    from serving.generation import Engine

    engine = Engine(model_dir)
    engine.load_adapter("a", str(adapter))
    context = [(q, "You can do that under Settings → Billing; it applies from the next invoice, and the "
                   "team can help if anything looks wrong.") for q in QUESTIONS[1:4]]
    messages = prompt_messages("You are a support assistant.", QUESTIONS[0], context)

    def timed() -> float:
        started = time.perf_counter()
        engine.generate("a", messages, max_tokens=max_tokens, temperature=0, ignore_eos=True)
        return time.perf_counter() - started

    timed()  # warm-up (and the merge)
    merged = statistics.median(timed() for _ in range(n))
    engine._unmerged()  # the adapter beside the base, as before merging: peft's LoRA layers on every token
    engine.peft.set_adapter("a")
    engine._merge = lambda name: engine.peft  # type: ignore[method-assign]
    timed()
    lora_path = statistics.median(timed() for _ in range(n))
    return {"merged_s": round(merged, 3), "lora_path_s": round(lora_path, 3),
            "prompt_tokens": len(engine.prompt_ids(messages))}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(args.model, Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FT_DATA_DIR": tmp, "FT_LOG_LEVEL": "WARNING"}  # an empty store: nothing re-registered
        proc = subprocess.Popen([str(Path(sys.executable).with_name("ft")), "serve", "--model", str(args.model),
                                 "--port", str(port), "--max-queue", str(args.requests)], env=env,
                                stdout=subprocess.DEVNULL)
        try:
            await wait_up(url, proc)
            async with aiohttp.ClientSession() as http:
                base = (await (await http.get(url + "/v1/models")).json())["data"][0]["id"]
                for path in adapters:
                    async with http.post(url + "/v1/load_lora_adapter",
                                         json={"lora_name": path.name, "lora_path": str(path)}) as resp:
                        assert resp.status == 200, await resp.text()
                for model in [base] + [p.name for p in adapters]:  # warm-up: first-call costs out of the numbers
                    await one(http, url, model, QUESTIONS[0], 4)
            runs = {}
            for label, models in (("base model (baseline)", [base]), ("1 adapter", [adapters[0].name]),
                                  ("2 adapters, alternating", [p.name for p in adapters])):
                runs[label] = await scenario(url, models, args.requests, args.concurrency, args.max_tokens, proc.pid)
                print(f"{label}: {runs[label]}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        engine = merged_vs_lora_path(args.model, adapters[0], args.max_tokens)  # the server is gone: the cores are free
    baseline = runs["base model (baseline)"]["tokens_per_s"]
    print(f"\nft serve, {args.model.name}, {args.concurrency} concurrent, {args.requests} requests per run, "
          f"{args.max_tokens} tokens each, {os.cpu_count()} CPUs (load before: {args.load_before:.2f}, "
          f"after: {os.getloadavg()[0]:.2f})")
    print(f"{'run':<26}{'req/s':>8}{'tok/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'vs base':>9}{'cores':>7}")
    for label, r in runs.items():
        print(f"{label:<26}{r['req_per_s']:>8.2f}{r['tokens_per_s']:>9.1f}{r['p50_ms']:>9}{r['p95_ms']:>9}"
              f"{r['tokens_per_s'] / baseline:>8.0%}{r['server_cores_used'] or 0:>7.2f}")
    print("(cores: CPU the server process used per second of the run; well below the torch thread count means "
          "other work shared the machine)")
    print(json.dumps(runs))
    print(f"\nengine alone, one adapter, {engine['prompt_tokens']}-token prompt with 3 retrieved answers, "
          f"{args.max_tokens} tokens: merged {engine['merged_s']:.2f} s, peft LoRA path (baseline) "
          f"{engine['lora_path_s']:.2f} s: {engine['lora_path_s'] / engine['merged_s']:.2f}x faster merged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--requests", type=int, default=24, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-load", type=float, default=1.5, help="skip when the 1-minute load is higher")
    parser.add_argument("--time-limit", type=float, default=170, help="give up after this many seconds")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        print(f"skipped: no model at {args.model}; prepare it with `ft model prepare` (or pass --model DIR)")
        return
    args.load_before = os.getloadavg()[0]
    if args.load_before >= args.max_load:
        print(f"skipped: the machine is busy (1-minute load {args.load_before:.2f} >= {args.max_load}); "
              "numbers taken now would measure the other work")
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup: stop the server process
    try:
        asyncio.run(asyncio.wait_for(run(args), timeout=args.time_limit))
    except asyncio.TimeoutError:
        print(f"aborted after {args.time_limit:.0f} s (1-minute load now {os.getloadavg()[0]:.2f}): the machine is "
              "busier than the load check saw; run it again when it is idle")
        sys.exit(1)


if __name__ == "__main__":
    main()
