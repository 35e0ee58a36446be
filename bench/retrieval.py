"""Benchmark: retrieval of approved pairs (serving.retrieval) — speed at 100,000 rows, and quality on Quillmate.

1. Speed. 100,000 approved examples and their embedding rows are written straight into a scratch
   SQLite store (random unit vectors, each row's text hash matching its question, so the
   Retriever loads them as it would after a restart and embeds nothing). Then 200 real questions
   (the Quillmate export's ~140 and the off-topic ones, cycled) are searched, and per search we time, separately:
   the store check (`sync()` on an unchanged store), embedding the query, the matrix search (one matrix-vector
   product + argpartition), and the whole `search()` call. Baselines in the same run: the same
   scores fully sorted (argsort), and a pure-Python loop over 10,000 rows scaled to 100,000.
   Target: a whole search under 50 ms at 100,000 rows.
2. Quality, to choose RETRIEVAL.min_score (core.contract). The Quillmate export imported as bench/train_quality.py does
   (every unflagged candidate approved, 15 % validation by source key); the validation side is
   then rejected so the index holds the train side only. For each validation question: is the
   top hit a pair stating the same fact (core.facts.carries_key_fact against the reference
   answer), and how do right and wrong top hits score, beside off-topic questions.

Run it alone (2 cores; BLAS threads fighting another busy process make numpy 10x slower, so this
sets OPENBLAS_NUM_THREADS=1 unless told otherwise). Usage: python bench/retrieval.py [--rows 100000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train_quality import quillmate_rows
from core.contract import RETRIEVAL
from core.embedder import Embedder
from core.states import ExampleStatus
from ftbot import wiring
from storage import open_store
from storage.embeddings import text_hash
from storage.examples import set_status
from storage.models import Example, ExampleEmbedding, utcnow

OFF_TOPIC = [
    "What is the capital of France?", "Do you sell hardware scanners?", "hello", "thanks a lot!",
    "Who won the football world cup in 2018?", "Can you recommend a good pizza place nearby?",
    "What's the weather like tomorrow?", "How do I cook rice?", "Write me a poem about the sea.",
    "Is your office dog friendly?",
]


def ms(seconds: list[float]) -> str:
    a = np.array(seconds) * 1000
    return f"p50 {np.percentile(a, 50):7.2f} ms   p95 {np.percentile(a, 95):7.2f} ms"


def dist(xs: list[float]) -> str:
    if not xs:
        return "—"
    a = np.array(xs)
    return (f"n={len(a):3d}  min {a.min():.2f}  p10 {np.percentile(a, 10):.2f}  median {np.median(a):.2f}  "
            f"p90 {np.percentile(a, 90):.2f}  max {a.max():.2f}")


def fill(store, n: int, dim: int, model: str, seed: int = 0) -> None:
    """n approved examples and a random unit vector each, written with bulk inserts."""
    from sqlalchemy import insert

    rng = np.random.default_rng(seed)
    now = utcnow()
    chunk = 10_000
    with store.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows = range(start, min(n, start + chunk))
            questions = [f"synthetic question number {i}?" for i in rows]
            conn.execute(insert(Example), [
                {"id": i + 1, "source_key": f"bench:{i}", "dedup_key": f"{i:064d}", "question": q,
                 "answer": f"synthetic answer {i}", "status": ExampleStatus.APPROVED, "flags": [], "source": {},
                 "created_at": now, "updated_at": now, "decided_at": now} for i, q in zip(rows, questions)])
            vecs = rng.standard_normal((len(rows), dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            conn.execute(insert(ExampleEmbedding), [
                {"example_id": i + 1, "model": model, "dim": dim,
                 "text_hash": text_hash(RETRIEVAL.stored_text(q, f"synthetic answer {i}")),
                 "vector": v.astype("<f4").tobytes(), "updated_at": now} for i, q, v in zip(rows, questions, vecs)])


def speed(embedder: Embedder, questions: list[str], n_rows: int, workdir: Path) -> None:
    print(f"\n== speed: {n_rows:,} approved examples (random unit vectors stored as rows), {len(questions)} questions")
    store = open_store(f"sqlite:///{workdir / 'speed.db'}")
    t = time.perf_counter()
    fill(store, n_rows, embedder.dim, embedder.name)
    print(f"writing the rows: {time.perf_counter() - t:.1f} s")
    retriever = wiring.retrieval_index(store, embedder)
    t = time.perf_counter()
    counts = retriever.sync()
    print(f"first sync (a restart: loads stored vectors, embeds nothing): {time.perf_counter() - t:.2f} s  {counts}")
    assert counts["embedded"] == 0 and counts["total"] == n_rows, counts

    matrix = retriever._index.matrix  # the bench times the parts of a search
    queries = embedder.embed(questions)
    retriever.search(questions[0])  # warm-up
    t_sync, t_embed, t_matrix, t_sort, t_search = [], [], [], [], []
    for q, vec in zip(questions, queries):
        t0 = time.perf_counter()
        retriever.sync()
        t1 = time.perf_counter()
        embedder.embed([q])
        t2 = time.perf_counter()
        scores = matrix @ vec
        top = np.argpartition(-scores, 3)[:3]
        top = top[np.argsort(-scores[top])]
        t3 = time.perf_counter()
        np.argsort(-(matrix @ vec))[:3]
        t4 = time.perf_counter()
        retriever.search(q)
        t5 = time.perf_counter()
        t_sync.append(t1 - t0)
        t_embed.append(t2 - t1)
        t_matrix.append(t3 - t2)
        t_sort.append(t4 - t3)
        t_search.append(t5 - t4)

    # Baseline: cosine in a pure-Python loop over 10,000 rows (lists of floats), scaled x n/10,000.
    sample = matrix[:10_000].tolist()
    loop = []
    for vec in queries[:5].tolist():
        t0 = time.perf_counter()
        best = max(range(len(sample)), key=lambda i: sum(a * b for a, b in zip(sample[i], vec)))
        loop.append((time.perf_counter() - t0) * n_rows / len(sample))
        assert best >= 0

    print(f"store check (sync, nothing changed)  {ms(t_sync)}")
    print(f"query embedding                      {ms(t_embed)}")
    print(f"matrix search (matvec + argpartition) {ms(t_matrix)}")
    print(f"  baseline: matvec + full argsort    {ms(t_sort)}")
    print(f"  baseline: pure-Python loop (10k rows, x{n_rows // 10_000})  {ms(loop)}  (5 questions)")
    print(f"whole search() incl. all of the above  {ms(t_search)}   target < 50 ms")
    store.close()


def quality(embedder: Embedder, workdir: Path) -> list[str]:
    print("\n== quality: Quillmate validation questions against the train side")
    from sqlmodel import select

    from core.facts import carries_key_fact

    db = workdir / "quillmate.db"
    train, val = quillmate_rows(db)
    store = open_store(f"sqlite:///{db}")
    val_keys = {r["source_key"] for r in val}
    with store.session() as s:
        ids = [e.id for e in s.exec(select(Example)) if e.source_key in val_keys]
        set_status(s, ids, ExampleStatus.REJECTED, "bench")  # the index holds the train side only
    retriever = wiring.retrieval_index(store, embedder)
    t = time.perf_counter()
    counts = retriever.sync()
    print(f"train side: {len(train)} pairs, validation: {len(val)}; "
          f"embedding them: {time.perf_counter() - t:.1f} s {counts}")

    right, wrong, no_fact = [], [], 0
    for row in val:
        hit = retriever.search(row["question"], k=1, min_score=-1.0)[0]
        verdict = carries_key_fact(hit.answer, row["answer"], row["question"])
        if verdict is None:
            no_fact += 1
        else:
            (right if verdict else wrong).append(hit.score)
    judged = len(right) + len(wrong)
    off = [retriever.search(q, k=1, min_score=-1.0)[0].score for q in OFF_TOPIC]
    print(f"top-1 states the same fact: {len(right)}/{judged} = {len(right) / judged:.0%}  "
          f"({no_fact} references without a key fact left out)")
    print(f"right top hits  {dist(right)}")
    print(f"wrong top hits  {dist(wrong)}")
    print(f"off-topic       {dist(off)}")
    for q, score in sorted(zip(OFF_TOPIC, off), key=lambda x: -x[1])[:3]:
        print(f"    {score:.2f}  {q}")

    # A larger sample for the threshold: every approved pair (train and validation) against all
    # the others (leave-one-out: its own row is skipped).
    with store.session() as s:
        set_status(s, ids, ExampleStatus.APPROVED, "bench")
    retriever.sync()
    loo_right, loo_wrong = [], []
    for row in train + val:
        hit = next(h for h in retriever.search(row["question"], k=2, min_score=-1.0)
                   if h.source_key != row["source_key"])
        verdict = carries_key_fact(hit.answer, row["answer"], row["question"])
        if verdict is not None:
            (loo_right if verdict else loo_wrong).append(hit.score)
    n = len(loo_right) + len(loo_wrong)
    print(f"leave-one-out over all {len(train) + len(val)} pairs: top-1 states the same fact: "
          f"{len(loo_right)}/{n} = {len(loo_right) / n:.0%}")
    print(f"right top hits  {dist(loo_right)}")
    print(f"wrong top hits  {dist(loo_wrong)}")
    right, wrong = right + loo_right, wrong + loo_wrong
    print("threshold   right kept   wrong kept   off-topic kept   (validation + leave-one-out)")
    for th in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        mark = "  <- THRESHOLD" if abs(th - RETRIEVAL.min_score) < 1e-9 else ""
        print(f"  {th:.2f}      {sum(s >= th for s in right) / max(1, len(right)):6.0%}      "
              f"{sum(s >= th for s in wrong) / max(1, len(wrong)):6.0%}      "
              f"{sum(s >= th for s in off):3d}/{len(off)}{mark}")
    store.close()
    return [r["question"] for r in train + val]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--questions", type=int, default=200)
    args = p.parse_args()
    t = time.perf_counter()
    embedder = Embedder()
    print(f"{embedder.name}: loaded in {time.perf_counter() - t:.2f} s; "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    with tempfile.TemporaryDirectory() as tmp:
        questions = quality(embedder, Path(tmp))
        # The export has ~140 questions; with the off-topic ones, cycled to --questions.
        pool = questions + OFF_TOPIC
        speed(embedder, [pool[i % len(pool)] for i in range(args.questions)], args.rows, Path(tmp))


if __name__ == "__main__":
    main()
