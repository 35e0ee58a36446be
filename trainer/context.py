"""Retrieved context for training and evaluation, as the bot retrieves it at answer time.

The bot puts the nearest approved pairs in front of a question (storage.prompt). So the adapter
is trained and evaluated in that shape too:

- a training example gets the nearest OTHER training examples (leave-one-out: at answer time the
  asker's exact question is new, so its own pair is never what retrieval finds);
- a validation question gets the nearest training examples only (validation pairs are held out
  from everything the model or the index could have seen).

Vectors come from the stored index (storage.embeddings, kept by serving.retrieval), so the
trainer needs no embedding model of its own; a row whose question changed since it was embedded
(text hash differs) or was never embedded gets no context. (The index embeds question and answer
together: storage.embeddings.embedded_text.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlmodel import Session

from storage.embeddings import embedded_text, text_hash, vectors


@dataclass(frozen=True)
class Row:
    example_id: int
    source_key: str
    question: str
    answer: str


def _matrix(session: Session, model: str, rows: Sequence[Row]) -> tuple[Any, list[bool]]:
    """Unit vectors for rows (zeros where missing or stale) and which rows have one."""
    import numpy as np

    stored = {i: (h, v) for i, h, v in vectors(session, model, [r.example_id for r in rows])}
    dim = next((len(v) // 4 for _, v in stored.values()), 0)
    out = np.zeros((len(rows), max(dim, 1)), dtype=np.float32)
    present = []
    for n, row in enumerate(rows):
        hit = stored.get(row.example_id)
        ok = hit is not None and hit[0] == text_hash(embedded_text(row.question, row.answer))
        if ok:
            out[n] = np.frombuffer(hit[1], dtype="<f4")
        present.append(ok)
    return out, present


def contexts(session: Session, model: str, queries: Sequence[Row], pool: Sequence[Row], *, k: int,
             min_score: float, leave_one_out: bool) -> list[list[tuple[str, str]] | None]:
    """For each query row: the k nearest pool rows scoring at least min_score, most similar first, as
    (question, answer) pairs; [] when none is close enough; None when the query has no stored vector."""
    import numpy as np

    if not queries:
        return []
    q, q_ok = _matrix(session, model, queries)
    p, p_ok = _matrix(session, model, pool) if pool else (np.zeros((0, q.shape[1]), np.float32), [])
    if q.shape[1] != p.shape[1] and len(pool):
        return [None] * len(queries)  # no stored vectors at all on one side
    scores = q @ p.T if len(pool) else np.zeros((len(queries), 0), np.float32)
    scores[:, [not ok for ok in p_ok]] = -1.0
    out: list[list[tuple[str, str]] | None] = []
    for n, row in enumerate(queries):
        if not q_ok[n]:
            out.append(None)
            continue
        order = np.argsort(-scores[n])
        picked = []
        for j in order:
            if scores[n, j] < min_score or len(picked) == k:
                break
            if leave_one_out and pool[j].example_id == row.example_id:
                continue
            picked.append((pool[j].question, pool[j].answer))
        out.append(picked)
    return out
