"""Answer only when grounded: is the model's answer backed by an approved answer retrieved for it?

A wrong answer stated with confidence costs more than "I don't know": the customer acts on an invented
policy. So before the bot sends an answer it checks it against the pairs retrieved for the question:

- the answer's key items (its numbers and codes, else its names: core.facts) must each be stated by
  a retrieved approved answer; the best-scoring such answer is its *source*;
- the source must be near enough to the question (its cosine at least `min_score`), and near the best
  hit: an answer copied from the third pair while the first states another fact is a neighbour's policy;
- the model itself may already have said it does not know.

Otherwise the bot says it does not know and hands the question to the team. The evaluation (trainer),
`ft ask` and the bot all decide here, so what the approver reads is what the customer would get.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from core.contract import GROUNDING
from core.facts import found_items, key_items
from core.overlap import rouge_l_f1
from core.prompt import REFUSAL_STOP
from core.states import GroundingReason

# An answer with no numbers, codes or names is backed by a retrieved answer it mostly repeats.
MIN_OVERLAP = 0.3


@dataclass
class Grounding:
    send: bool
    reason: GroundingReason
    top_score: float | None = None  # the best retrieved pair's cosine
    source_rank: int | None = None  # 1-based rank of the retrieved pair that states the answer's items
    source_score: float | None = None
    items: list[str] = field(default_factory=list)  # the answer's key items
    unsupported: list[str] = field(default_factory=list)  # of them, what no retrieved answer states

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


REFUSAL = re.compile(r"^\W*(?:sorry,?\s+)?(?:i|we)\s+(?:don[’']t|do not)\s+know\b", re.IGNORECASE)


def declines(answer: str) -> bool:
    """The model said it does not know: the taught refusal (core.prompt.DONT_KNOW, cut at REFUSAL_STOP when asked
    as the bot asks), or its own wording of it ("We don't know: …" was seen from SmolLM2)."""
    text = answer.strip()
    return not text or bool(REFUSAL.match(text)) or REFUSAL_STOP in text


def judge(question: str, answer: str, hits: Sequence[tuple[str, float]], *,
          min_score: float = GROUNDING.min_score, max_gap: float = GROUNDING.max_gap) -> Grounding:
    """Whether to send `answer`, given the retrieved (approved answer, cosine) pairs, best first."""
    top = hits[0][1] if hits else None
    if declines(answer):
        return Grounding(False, GroundingReason.MODEL_DECLINED, top)
    if not hits:
        return Grounding(False, GroundingReason.NO_CONTEXT, None)
    items = sorted(key_items(answer, question))
    if items:
        stating = [n for n, (text, _) in enumerate(hits) if found_items(text, set(items)) == set(items)]
        if not stating:
            stated = set().union(*(found_items(text, set(items)) for text, _ in hits))
            return Grounding(False, GroundingReason.UNSUPPORTED, top, items=items,
                             unsupported=sorted(set(items) - stated))
        rank = stating[0]
    else:
        overlaps = [rouge_l_f1(answer, text) for text, _ in hits]
        rank = max(range(len(hits)), key=overlaps.__getitem__)
        if overlaps[rank] < MIN_OVERLAP:
            return Grounding(False, GroundingReason.UNSUPPORTED, top)
    score = hits[rank][1]
    verdict = Grounding(True, GroundingReason.GROUNDED, top, rank + 1, score, items)
    if score < min_score:
        verdict.send, verdict.reason = False, GroundingReason.WEAK_SOURCE
    elif top is not None and top - score > max_gap:
        verdict.send, verdict.reason = False, GroundingReason.FAR_FROM_BEST
    return verdict
