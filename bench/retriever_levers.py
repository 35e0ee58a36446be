"""Benchmark: can retrieval find the right fact more often? Fact in the top 1 and top 3 on Quillmate.

The Quillmate export imported as bench/train_quality.py does (every unflagged candidate approved, 15 %
validation by source key). The index holds the train side only; each validation question (held out) is
searched with the question alone, as the bot searches, and a hit is right when its answer carries the
reference's key fact (core.facts). Three retrievers, measured in the same run:

- baseline: all-MiniLM-L6-v2 as shipped (question-and-answer rows, question queries);
- distinct facts: the same scores, but a pair stating the same fact as a better one (core.facts
  groups) is skipped, so the k pairs are k different facts;
- tuned: a query map learned on the train side's fact groups (fit_query_map below), then distinct facts.

    .venv/bin/python bench/retriever_levers.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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
from core.facts import carries_key_fact, fact_groups

TEMPERATURE = 0.05


def fit_query_map(queries: np.ndarray, rows: np.ndarray, groups: list[list[int]], *, steps: int = 150,
                  lr: float = 1e-3, l2: float = 1.0) -> np.ndarray:
    """W (dim x dim, from the identity, kept near it) such that unit(q_i W) scores the rows of i's same-fact group
    above all others (row i left out: a new wording must find the phrasings already approved). Multiple-positive
    InfoNCE, full-batch Adam in numpy; rows without a group serve as negatives only. The stored rows stay as
    they are, so nothing is embedded again and the bot would keep its numpy inference."""
    eye = np.eye(rows.shape[1], dtype=np.float32)
    train = [i for i, g in enumerate(groups) if g]
    q = queries[train]
    positive = np.zeros((len(train), len(rows)), dtype=np.float32)
    own = np.zeros_like(positive, dtype=bool)
    for n, i in enumerate(train):
        positive[n, groups[i]] = 1.0
        own[n, i] = True
    w, m, v = eye.copy(), np.zeros_like(eye), np.zeros_like(eye)
    for step in range(1, steps + 1):
        u = q @ w
        norm = np.linalg.norm(u, axis=1, keepdims=True)
        unit = u / norm
        logits = unit @ rows.T / TEMPERATURE
        logits[own] = -np.inf
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p_pos = p * positive
        p_pos /= np.maximum(p_pos.sum(axis=1, keepdims=True), 1e-12)
        g_unit = (p - p_pos) @ rows / TEMPERATURE  # d(-log sum_pos p)/d logits = p - p_pos, back through the cosine
        g_u = (g_unit - (g_unit * unit).sum(axis=1, keepdims=True) * unit) / norm
        grad = q.T @ g_u / len(train) + l2 * (w - eye) / len(eye)
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad
        w -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    return w


def distinct_facts(query: np.ndarray, rows: np.ndarray, groups: list[list[int]], k: int = 3) -> list[tuple[int, float]]:
    """The k best rows, skipping a row that states the fact of a better one (core.facts groups)."""
    from core.nearest import nearest

    picked: list[tuple[int, float]] = []
    taken: set[int] = set()
    for i, score in nearest(query, rows, k=len(rows), min_score=-1.0):
        if i not in taken:
            picked.append((i, score))
            taken.update(groups[i])
        if len(picked) == k:
            break
    return picked


def map_queries(queries: np.ndarray, w: np.ndarray) -> np.ndarray:
    mapped = queries @ w
    return mapped / np.linalg.norm(mapped, axis=1, keepdims=True)


def run(args: argparse.Namespace) -> None:
    from core.embedder import Embedder
    from core.nearest import nearest

    with tempfile.TemporaryDirectory() as tmp:
        train, val = quillmate_rows(Path(tmp) / "q.db")
    embedder = Embedder()
    t = time.perf_counter()
    rows = embedder.embed([RETRIEVAL.stored_text(r["question"], r["answer"]) for r in train])
    train_q = embedder.embed([RETRIEVAL.query_text(r["question"]) for r in train])
    val_q = embedder.embed([RETRIEVAL.query_text(r["question"]) for r in val])
    print(f"{len(train)} train pairs in the index, {len(val)} held-out questions; embedded in "
          f"{time.perf_counter() - t:.1f} s")
    groups = fact_groups(train)
    t = time.perf_counter()
    qmap = fit_query_map(train_q, rows, groups)
    print(f"query map fitted in {time.perf_counter() - t:.1f} s on {sum(bool(g) for g in groups)} questions "
          f"with a same-fact sibling")

    def judge(queries: np.ndarray, distinct: bool, label: str) -> None:
        top1 = top3 = judged = 0
        for q, row in zip(queries, val):
            hits = distinct_facts(q, rows, groups) if distinct else nearest(q, rows, k=3, min_score=-1.0)
            verdicts = [carries_key_fact(train[i]["answer"], row["answer"], row["question"]) for i, _ in hits]
            if verdicts[0] is None:
                continue
            judged += 1
            top1 += bool(verdicts[0])
            top3 += any(verdicts)
        print(f"{label:34} fact in top 1: {top1}/{judged}   top 3: {top3}/{judged}")

    judge(val_q, False, "baseline")
    judge(val_q, True, "distinct facts")
    judge(map_queries(val_q, qmap), False, "tuned query map")
    judge(map_queries(val_q, qmap), True, "tuned query map + distinct facts")


if __name__ == "__main__":
    run(argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args())
