"""Benchmark: `ft import-slack` on a generated export of 10,000 labelled threads.

Target: under 10 s on the 2-core CPU. Baseline in the same run: just reading and parsing the
export's JSON (the floor any importer pays). Usage: python bench/import_slack.py [--threads N] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.slack.export import load_export
from bot.slack.importer import import_slack_export
from bot.slack.threads import Rules
from fakes.slack_export import ExportBuilder
from storage import open_store


def generate(n_threads: int, path: Path) -> Path:
    rng = random.Random(7)
    b = ExportBuilder().channel("support", "CSUP").user("ULEAD", "Lead")
    agents = [f"UAGENT{i}" for i in range(8)]
    customers = [f"UCUST{i:03d}" for i in range(300)]
    for uid in agents + customers:
        b.user(uid, uid.title())
    for i in range(n_threads):
        asker = rng.choice(customers)
        agent = rng.choice(agents)
        replies = []
        if rng.random() < 0.3:
            replies.append((asker, f"more detail for ticket {i}: order #{10000 + i}, "
                                   f"call me on +44 20 7946 {i % 10000:04d}"))
        replies.append((agent, f"<@{asker}> For case {i}: the *answer* is {rng.randint(1, 99)} days, see "
                               f"<https://help.example/a/{i}|article {i}>.", [rng.choice(["ULEAD", agent])]))
        replies.append((asker, "thanks!"))
        b.thread("support", asker,
                 f"Question {i}: how long does thing {rng.randint(1, 500)} take? mail x{i}@example.com", replies)
        b.clock -= 40  # keep days busy: ~3,000 messages a day file
    return b.write_dir(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--postgres", default="", help="also import into this PostgreSQL URL (a scratch database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = generate(args.threads, Path(tmp) / "export")
        files = list(export.rglob("*.json"))
        t0 = time.perf_counter()
        n_messages = sum(len(json.loads(f.read_bytes())) for f in files if f.parent != export)
        parse_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_export(export)
        load_s = time.perf_counter() - t0
        print(f"export: {args.threads} threads, {n_messages} messages, {len(files)} files")
        print(f"baseline  json parse only      {parse_s:6.2f} s")
        print(f"          load_export          {load_s:6.2f} s")
        targets = [("sqlite", f"sqlite:///{tmp}/bench.db")] + ([("postgres", args.postgres)] if args.postgres else [])
        rules = Rules(curators=frozenset({"ULEAD"}))
        for name, url in targets:
            store = open_store(url)
            t0 = time.perf_counter()
            summary = import_slack_export(store, export, label_emoji="white_check_mark", rules=rules)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = import_slack_export(store, export, label_emoji="white_check_mark", rules=rules)
            second = time.perf_counter() - t0
            store.close()
            assert summary.imported == args.threads and again.imported == 0, (summary, again)
            print(f"{name:9} import (first)       {first:6.2f} s  = {first / parse_s:4.1f}x the JSON parse; "
                  f"{args.threads / first:,.0f} threads/s  {'OK' if first < 10 else 'OVER'} (target < 10 s)")
            print(f"{name:9} import (again, no-op) {second:6.2f} s")


if __name__ == "__main__":
    main()
