"""Retrieved context for training and evaluation, chosen exactly as the bot chooses it.

The bot puts the nearest approved pairs in front of a question (core.prompt), found by
core.nearest with the retrieval spec (core.contract.RETRIEVAL): the question alone, embedded, against
the approved pairs' stored rows, each embedded from its question and its answer (RetrievalSpec.stored_text).
The trainer, the evaluation and so the deployment smoke test take their context from the same function,
the same query, embedder, rows, k and threshold:

- a training question gets the nearest OTHER training rows (leave-one-out: at answer time the asker's
  exact question is new, so its own pair is never what retrieval finds);
- a validation question gets the nearest training rows only (held out from everything the model or
  the index could have seen), and so do the questions no approved answer covers.

Row vectors come from the stored index (storage.embeddings, kept by serving.retrieval); a row whose text
changed since it was embedded (hash differs), or that was never embedded, is not in the index, as the
bot's index would not hold it either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from sqlmodel import Session

from core.contract import RETRIEVAL, RetrievalSpec
from storage.embeddings import text_hash, vectors

Pairs = list[tuple[str, str]]
Scored = list[tuple[str, str, float]]  # (question, answer, cosine), best first


@dataclass(frozen=True)
class Row:
    example_id: int
    source_key: str
    question: str
    answer: str


class TrainIndex:
    """The training side as the bot's index would hold it, searched as the bot searches.

    Built from vectors already read (`stored_vectors`), so no database session stays open while it
    loads the embedding model and embeds (a job's transactions stay short: the worker's heartbeat
    writes meanwhile)."""

    def __init__(self, pool: Sequence[Row], stored: Mapping[int, tuple[str, bytes]], embedder: Any | None = None,
                 spec: RetrievalSpec = RETRIEVAL):
        import numpy as np

        if embedder is None:
            from core.embedder import Embedder

            embedder = Embedder()
        self.pool, self.embedder, self.spec = list(pool), embedder, spec
        self.matrix = np.zeros((len(self.pool), embedder.dim), dtype=np.float32)  # a zero row is never chosen
        self.missing = 0
        for n, row in enumerate(self.pool):
            hit = stored.get(row.example_id)
            if hit is not None and hit[0] == text_hash(spec.stored_text(row.question, row.answer)):
                self.matrix[n] = np.frombuffer(hit[1], dtype="<f4")
            else:
                self.missing += 1
        self._position = {row.example_id: n for n, row in enumerate(self.pool)}

    def choose(self, questions: Sequence[str], own: Sequence[int | None] | None = None) -> list[Pairs]:
        """For each question the pairs the bot would put in front of it, most similar first ([] when none is
        close enough). own: each question's example id, left out of its own context (leave-one-out)."""
        return [[(q, a) for q, a, _ in hits] for hits in self.search(questions, own)]

    def search(self, questions: Sequence[str], own: Sequence[int | None] | None = None) -> list[Scored]:
        """choose(), with each pair's cosine (what core.grounding checks an answer against)."""
        from core.nearest import nearest

        if not questions:
            return []
        queries = self.embedder.embed([self.spec.query_text(q) for q in questions])
        out = []
        for n, query in enumerate(queries):
            exclude = self._position.get(own[n]) if own is not None and own[n] is not None else None
            hits = nearest(query, self.matrix, k=self.spec.k, min_score=self.spec.min_score, exclude=exclude)
            out.append([(self.pool[i].question, self.pool[i].answer, score) for i, score in hits])
        return out


@dataclass
class Contexts:
    """Every context a training job uses, chosen by one TrainIndex."""

    train: dict[str, Pairs]  # by source key: the nearest other training rows
    validation_hits: list[Scored]  # in validation row order: the nearest training rows, with their cosines
    unknown: dict[str, Pairs]  # by question (trainer/unknown.jsonl): what the bot would find for it
    offstore_hits: dict[str, Scored] = field(default_factory=dict)  # evaluation's off-store questions, never taught
    missing: int = 0  # training rows without a current stored vector (not in the index)

    @property
    def validation(self) -> list[Pairs]:
        return [[(q, a) for q, a, _ in hits] for hits in self.validation_hits]


def stored_vectors(session: Session, pool: Sequence[Row],
                   spec: RetrievalSpec = RETRIEVAL) -> dict[int, tuple[str, bytes]]:
    """{example id: (text hash, vector)} of the pool's stored rows: the one read a TrainIndex needs."""
    return {i: (h, v) for i, h, v in vectors(session, spec.model, [r.example_id for r in pool])}


def contexts(index: TrainIndex, train: Sequence[Row], validation: Sequence[Row], unknown: Sequence[str],
             offstore: Sequence[str] = ()) -> Contexts:
    """Every context a job uses, chosen by `index` (built from the training rows). Embeds; reads nothing."""
    train_ctx = index.choose([r.question for r in train], own=[r.example_id for r in train])
    return Contexts(train={r.source_key: c for r, c in zip(train, train_ctx)},
                    validation_hits=index.search([r.question for r in validation]),
                    unknown=dict(zip(unknown, index.choose(list(unknown)))),
                    offstore_hits=dict(zip(offstore, index.search(list(offstore)))), missing=index.missing)


def retrieved(session: Session, train: Sequence[Row], validation: Sequence[Row], unknown: Sequence[str],
              embedder: Any | None = None, offstore: Sequence[str] = ()) -> Contexts:
    index = TrainIndex(train, stored_vectors(session, train), embedder)
    return contexts(index, train, validation, unknown, offstore)
