"""core.clusters: unit vectors grouped by cosine distance, labels in order of first appearance."""

from __future__ import annotations

import numpy as np

from core.clusters import cluster


def unit(rows) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_nothing_and_one_row():
    assert cluster(np.zeros((0, 4), dtype=np.float32), 0.5) == []
    assert cluster(unit([[1, 0, 0, 0]]), 0.5) == [0]


def test_rows_closer_than_the_threshold_group_and_labels_follow_first_appearance():
    x = unit([[0, 1, 0.1, 0], [1, 0.05, 0, 0], [0, 1, 0, 0.1], [1, 0, 0.05, 0], [0, 0, 0, 1]])
    assert cluster(x, 0.2) == [0, 1, 0, 1, 2]
    assert cluster(x, 1.5) == [0, 0, 0, 0, 0]  # every row within the threshold: one group
    assert cluster(x, 1e-6) == [0, 1, 2, 3, 4]  # none: each alone
