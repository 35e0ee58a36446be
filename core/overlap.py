"""How much two answers share, word by word: ROUGE-L F1 (the evaluation's score, and the smoke test's
tolerance for answers that another engine's rounding reworded)."""

from __future__ import annotations

import re
from typing import Sequence

TOKEN = re.compile(r"\w+", re.UNICODE)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_f1(candidate: str, reference: str) -> float:
    cand, ref = TOKEN.findall(candidate.lower()), TOKEN.findall(reference.lower())
    if not cand or not ref:
        return 0.0
    lcs = lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def numbers(text: str) -> set[str]:
    """The numbers a text states ("25", "60", "2.5"): prices, limits, days."""
    return set(NUMBER.findall(text))
