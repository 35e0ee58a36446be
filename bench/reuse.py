"""Benchmark: a correction teaches at once (core.reuse) — a replay of draft mode on the Quillmate export.

The export holds several customer threads per fact (/work/shared/data/quillmate-facts.md): paraphrases.

1. Fact identity. Each thread's accepted answer (and question) is matched to the facts file: every fact's numbers
   and codes (core.facts) and content words, weighted by how rare each is among the 40 facts (idf); the thread
   belongs to the fact scoring highest, preferring, among facts within 80 % of the best, one whose key items
   (core.facts.carries_key_fact) the answer states. Below MIN_LABEL_SCORE it belongs to none (the export's few
   threads about other things: a login e-mail, a logo). `--labels` prints every thread's fact, for audit.
2. Replay (what the issue describes). A scratch SQLite store, #support recorded as a public channel. For each fact
   in the order its first thread was asked, that question arrives as a draft and the team lead (a curator) answers
   it with the thread's accepted answer (storage.drafts.sent: the pair approved, as a lead's Send would store it).
   Then every other thread of each fact arrives: the real Retriever (serving.retrieval, the numpy MiniLM
   embedder) searches as the bot does in #support, and core.reuse decides. Counted: reused and the same fact
   (right), reused and another fact (wrong), not reused (the model writes). The off-store product questions
   (bench/offstore_questions.jsonl, which no approved answer covers) are asked too: any reuse there is wrong.
3. Dense store (a harder check on wrong reuse): every thread of the export approved; each is asked with its own
   pair left out (leave-one-out), so its nearest rows are its paraphrases and every neighbouring fact.

The threshold is swept over the same retrieved hits (the rule is a pure function of them). No model server: reuse is
decided before generation. Run it alone (2 cores). Usage: python bench/reuse.py [--labels]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads

import argparse
import json
import math
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_quality import quillmate_rows
from core.contract import RETRIEVAL, REUSE
from core.facts import carries_key_fact, codes, content_words, found_items, numbers
from core.reuse import cleaned, reusable

FACTS = ROOT.parent / "shared" / "data" / "quillmate-facts.md"
OFFSTORE = ROOT / "bench" / "offstore_questions.jsonl"
CHANNEL, LEAD, ASKER = "C0AG1F9FEED", "U0AG10XZMXH", "UCUSTOMER"  # #support, the team lead (a curator)
MIN_LABEL_SCORE = 8.0  # below it a thread states none of the facts (measured: the two off-fact threads score < 7.4)
NEAR_BEST = 0.8
THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70, 0.72, 0.74, 0.76, 0.80)
FACT_LINE = re.compile(r"^- \*\*(F\d\d) ([^*]+)\*\* — (.+)$")


@dataclass
class Thread:
    source_key: str
    question: str
    answer: str
    fact: str | None = None


@dataclass
class Asked:
    """One question asked and what the retriever returned for it, with each hit's fact."""

    question: str
    fact: str | None  # None: an off-store question (no approved answer covers it)
    hits: list = field(default_factory=list)
    hit_facts: list = field(default_factory=list)


# --- 1. fact identity -------------------------------------------------------------------------------------------

def read_facts(path: Path = FACTS) -> dict[str, str]:
    facts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := FACT_LINE.match(line.strip()):
            facts[m.group(1)] = f"{m.group(2)}. {m.group(3)}"
    return facts


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _features(text: str) -> set[str]:
    return ({f"#{n}" for n in numbers(text)} | {f"@{c}" for c in codes(text)}
            | {f"w{_stem(w)}" for w in content_words(text)})


class FactLabeller:
    """Which fact of the facts file a thread states (see the module's doc, step 1)."""

    def __init__(self, facts: dict[str, str]):
        self.facts = facts
        self.features = {f: _features(text) for f, text in facts.items()}
        seen: dict[str, int] = {}
        for feats in self.features.values():
            for x in feats:
                seen[x] = seen.get(x, 0) + 1
        self.idf = {x: math.log(len(facts) / n) for x, n in seen.items()}

    def score(self, question: str, answer: str, fact: str) -> float:
        feats = self.features[fact]
        stated = found_items(answer, {x for x in feats if x[0] in "#@"})
        stated |= {f"w{_stem(w)}" for w in content_words(f"{question}\n{answer}")} & feats
        return sum(self.idf[x] for x in stated)

    def fact_of(self, question: str, answer: str) -> str | None:
        scored = sorted(((self.score(question, answer, f), f) for f in self.facts), reverse=True)
        best = scored[0][0]
        if best < MIN_LABEL_SCORE:
            return None
        near = [(s, f) for s, f in scored if s >= NEAR_BEST * best]
        stating = [(s, f) for s, f in near if carries_key_fact(answer, self.facts[f])]
        return (stating or near)[0][1]


def export_threads(workdir: Path) -> list[Thread]:
    """The export's threads (as `ft import-slack` reads them), in the order they were asked, each with its fact."""
    train, val = quillmate_rows(workdir / "export.db")
    rows = sorted(train + val, key=lambda r: float(r["source_key"].rsplit(":", 1)[1]))
    labeller = FactLabeller(read_facts())
    return [Thread(r["source_key"], r["question"], r["answer"], labeller.fact_of(r["question"], r["answer"]))
            for r in rows]


# --- 2. replay --------------------------------------------------------------------------------------------------

def _store(path: Path):
    from storage import audience, open_store

    store = open_store(f"sqlite:///{path}")
    with store.session() as s:
        audience.remember(s, CHANNEL, "public", "support")
    return store


def replay(threads: list[Thread], embedder, workdir: Path) -> tuple[list[Asked], dict]:
    """The first thread of each fact answered by the lead and approved; every other thread, and the off-store
    questions, then asked as the bot asks in #support."""
    from serving.retrieval import Retriever
    from storage import drafts

    store = _store(workdir / "replay.db")
    first: dict[str, Thread] = {}
    for t in threads:
        if t.fact and t.fact not in first:
            first[t.fact] = t
    fact_of_example: dict[int, str] = {}
    for n, t in enumerate(first.values()):
        with store.session() as s:
            d = drafts.open_draft(s, mode="draft", channel_id=CHANNEL, question_ts=f"{1000 + n}.000100",
                                  asker=ASKER, question=t.question)
            drafts.claim(s, d.id, LEAD)
            _, _, example = drafts.sent(s, d.id, text=t.answer, sent_ts=f"{1000 + n}.000200", by=LEAD, curator=True)
            fact_of_example[example.id] = t.fact
    retriever = Retriever(store, embedder)
    started = time.perf_counter()
    retriever.sync()
    info = {"approved": len(first), "embed_s": time.perf_counter() - started}
    firsts = {t.source_key for t in first.values()}
    questions = [(t.question, t.fact) for t in threads if t.fact and t.source_key not in firsts]
    questions += [(json.loads(line)["question"], None) for line in OFFSTORE.read_text().splitlines() if line.strip()]
    started = time.perf_counter()
    asked = []
    for question, fact in questions:
        hits = retriever.search(question, channel=CHANNEL)
        asked.append(Asked(question, fact, hits, [fact_of_example.get(h.example_id) for h in hits]))
    info["search_ms"] = 1000 * (time.perf_counter() - started) / max(1, len(questions))
    store.close()
    return asked, info


# --- 3. dense store ---------------------------------------------------------------------------------------------

def dense(threads: list[Thread], embedder, workdir: Path) -> list[Asked]:
    """Every thread approved; each asked with its own pair left out of the hits (as if it were not stored)."""
    from serving.retrieval import Retriever
    from storage.examples import NewExample, add_examples

    store = _store(workdir / "dense.db")
    with store.session() as s:
        add_examples(s, [NewExample(t.source_key, t.question, t.answer, status="approved", approved_by=LEAD,
                                    source={"kind": "slack", "channel_id": CHANNEL}, channel_id=CHANNEL)
                         for t in threads])
    retriever = Retriever(store, embedder)
    retriever.sync()
    fact_of = {t.source_key: t.fact for t in threads}
    asked = []
    for t in threads:
        if not t.fact:
            continue
        hits = [h for h in retriever.search(t.question, k=RETRIEVAL.k + 1, channel=CHANNEL)
                if h.source_key != t.source_key][:RETRIEVAL.k]
        asked.append(Asked(t.question, t.fact, hits, [fact_of.get(h.source_key) for h in hits]))
    store.close()
    return asked


# --- the sweep --------------------------------------------------------------------------------------------------

def outcomes(asked: list[Asked], min_score: float) -> dict[str, int]:
    """right / wrong / the model writes (of which: the best hit was close enough but core.reuse refused its text)."""
    out = {"right": 0, "wrong": 0, "model": 0, "refused": 0, "n": len(asked)}
    for a in asked:
        chosen = reusable(a.hits, min_score=min_score)
        if chosen is None:
            out["model"] += 1
            out["refused"] += bool(a.hits and a.hits[0].score >= min_score)
        elif a.fact is not None and a.hit_facts[0] == a.fact:
            out["right"] += 1
        else:
            out["wrong"] += 1
    return out


def table(title: str, asked: list[Asked], offstore: list[Asked] | None = None) -> None:
    n = len(asked)
    print(f"\n== {title}: {n} questions" + (f" (+ {len(offstore)} off-store)" if offstore else ""))
    print("min_score   right          wrong        model writes   (refused text)" + ("   off-store reused"
                                                                                     if offstore else ""))
    for th in THRESHOLDS:
        o = outcomes(asked, th)
        line = (f"  {th:.2f}     {o['right']:3d} {o['right'] / n:6.1%}   {o['wrong']:3d} {o['wrong'] / n:5.1%}   "
                f"{o['model']:3d} {o['model'] / n:6.1%}     ({o['refused']:2d})")
        if offstore:
            line += f"           {outcomes(offstore, th)['wrong']:2d}/{len(offstore)}"
        print(line + ("   <- REUSE.min_score" if abs(th - REUSE.min_score) < 1e-9 else ""))


def report_wrong(asked: list[Asked], min_score: float) -> None:
    """Each wrong reuse at the threshold: the question and the answer it would get."""
    for a in asked:
        chosen = reusable(a.hits, min_score=min_score)
        if chosen is not None and (a.fact is None or a.hit_facts[0] != a.fact):
            print(f"  {chosen.hit.score:.2f} {a.fact or 'off-store'} got {a.hit_facts[0]}: {a.question[:70]!r} → "
                  f"{chosen.text[:60]!r}")


def report_labels(threads: list[Thread], verbose: bool) -> None:
    per_fact: dict[str, int] = {}
    for t in threads:
        per_fact[t.fact or "-"] = per_fact.get(t.fact or "-", 0) + 1
    facts = [f for f in per_fact if f != "-"]
    print(f"{len(threads)} threads: {len(threads) - per_fact.get('-', 0)} matched to {len(facts)} facts "
          f"({min(per_fact[f] for f in facts)}–{max(per_fact[f] for f in facts)} threads each), "
          f"{per_fact.get('-', 0)} to none")
    for t in threads if verbose else [t for t in threads if not t.fact]:
        print(f"  {t.fact or '-':3}  Q: {t.question[:70]!r}  A: {t.answer[:90]!r}")


def report_refusals(threads: list[Thread]) -> None:
    refused = [t for t in threads if t.fact and cleaned(t.answer, t.question) is None]
    print(f"core.reuse refuses {len(refused)} of {sum(1 for t in threads if t.fact)} accepted answers as they stand "
          "(a redacted detail of that customer, a person mentioned, a name mid-sentence, their own reference):")
    for t in refused:
        print(f"  {t.fact}  {t.answer[:110]!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", action="store_true", help="print every thread's fact (for audit)")
    args = p.parse_args()
    from core.embedder import Embedder

    started = time.perf_counter()
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        threads = export_threads(Path(tmp))
        report_labels(threads, args.labels)
        report_refusals(threads)
        asked, info = replay(threads, embedder, Path(tmp))
        paraphrases = [a for a in asked if a.fact]
        print(f"\nreplay: {info['approved']} facts answered and approved by the lead (embedded in "
              f"{info['embed_s']:.1f} s); a search and the reuse decision: {info['search_ms']:.0f} ms each")
        table("replay: the other threads of each fact", paraphrases, [a for a in asked if not a.fact])
        print(f"wrong at REUSE.min_score {REUSE.min_score}:")
        report_wrong(asked, REUSE.min_score)
        crowded = dense(threads, embedder, Path(tmp))
        table("dense store: every thread approved, each asked without its own pair", crowded)
        print(f"wrong at REUSE.min_score {REUSE.min_score}:")
        report_wrong(crowded, REUSE.min_score)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
