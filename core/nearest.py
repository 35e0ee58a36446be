"""Choosing the pairs in front of a question: ONE function for training, evaluation and the bot.

An adapter answers best from the context it was taught with, so the trainer (trainer.context), the
evaluation and the bot's retriever (serving.retrieval) all call `nearest` with the same spec
(core.contract.RETRIEVAL): a query vector of the question alone, the stored rows, k and the threshold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.contract import RETRIEVAL

if TYPE_CHECKING:
    import numpy as np


def nearest(query: "np.ndarray", matrix: "np.ndarray", *, k: int = RETRIEVAL.k, min_score: float = RETRIEVAL.min_score,
            exclude: int | None = None, allowed: "np.ndarray | None" = None) -> list[tuple[int, float]]:
    """(row, cosine) of the k rows nearest to a unit query vector, best first, scoring at least min_score.
    exclude: a row never chosen (training's leave-one-out: the asker's own pair is never in the index).
    allowed: a boolean mask of the rows the asker may be given (storage.audience, for the asking channel)."""
    import numpy as np

    if k <= 0 or not len(matrix):
        return []
    scores = matrix @ query
    if exclude is not None:
        scores[exclude] = -np.inf
    if allowed is not None:
        scores[~allowed] = -np.inf
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))  # O(n), no full sort
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top if scores[i] >= min_score]
