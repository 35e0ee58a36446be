"""Grouping questions by meaning: agglomerative clustering of unit embeddings, cut at a cosine distance.

Average linkage: two groups join when their questions are, on average, closer than the threshold, so one stray
question bridging two topics does not chain them (single linkage would), and no number of groups is guessed in
advance (k-means would). scikit-learn is imported here only: importing it adds about 105 MiB to a process in the bot's
environment (150 MiB in the dev one, which has pandas; bench/gaps.py), and only the knowledge gaps (storage.gaps)
cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def cluster(vectors: "np.ndarray", threshold: float) -> list[int]:
    """A group label per row of `vectors` (unit rows, n × dim): rows with the same label belong together.
    threshold: the cosine distance (1 - cosine) at which two groups stop joining (storage.gaps.GAP_THRESHOLD).
    Labels are 0, 1, … in the order each group's first row appears, so the same input gives the same labels."""
    import numpy as np

    n = len(vectors)
    if n < 2:  # scikit-learn wants two rows; one question is a group of its own
        return [0] * n
    from sklearn.cluster import AgglomerativeClustering

    raw = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                  distance_threshold=threshold).fit_predict(np.asarray(vectors, dtype=np.float32))
    first: dict[int, int] = {}
    return [first.setdefault(int(label), len(first)) for label in raw]
