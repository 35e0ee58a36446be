"""Choosing the pairs in front of a question: ONE function for training, evaluation and the bot.

An adapter answers best from the context it was taught with, so the trainer (trainer.context), the
evaluation and the bot's retriever (serving.retrieval) all call `nearest` with the same spec
(storage.contract.RETRIEVAL): a query vector of the question alone, the stored rows, k and the threshold. numpy is imported by the callers that hold vectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from storage.contract import RETRIEVAL

if TYPE_CHECKING:
    import numpy as np


def nearest(query: "np.ndarray", matrix: "np.ndarray", *, k: int = RETRIEVAL.k, min_score: float = RETRIEVAL.min_score,
            exclude: int | None = None, groups: Sequence[Sequence[int]] | None = None) -> list[tuple[int, float]]:
    """(row, cosine) of the k rows nearest to a unit query vector, best first, scoring at least min_score.

    exclude: a row never chosen (training's leave-one-out: the asker's own pair is never in the index).
    groups: for each row, the rows whose answers state the same fact (storage.facts.fact_groups); given,
    a row stating the fact of a better-scoring chosen row is skipped, so the k pairs are k facts.
    """
    import numpy as np

    if k <= 0 or not len(matrix):
        return []
    scores = matrix @ query
    if exclude is not None:
        scores[exclude] = -np.inf
    # Skipped same-fact rows need spares: look a few rows further when facts must be distinct.
    want = min(len(scores), k * 4 if groups is not None else k)
    top = np.argpartition(-scores, want - 1)[:want] if want < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")]
    picked: list[tuple[int, float]] = []
    taken: set[int] = set()
    for i in (int(i) for i in top):
        if scores[i] < min_score or len(picked) == k:
            break
        if groups is not None and i in taken:
            continue
        picked.append((i, float(scores[i])))
        if groups is not None:
            taken.update(groups[i])
    return picked
