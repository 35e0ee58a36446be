"""The nearest approved (question, answer) pairs to a user's question: context for the model.

The index is the approved examples' embeddings (what core.contract.RETRIEVAL says a row is embedded
from, and how many pairs how close are kept), stored in the database (a restart
embeds nothing) and held in memory as one float32 matrix; a search is one matrix-vector product,
which stays well under the 50 ms target at 100,000 rows (bench/retrieval.py).
The bot and the CLI approve examples in other processes, so every search first checks a cheap
fingerprint of the store and catches up when it moved.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from sqlalchemy.exc import IntegrityError

from core.contract import RETRIEVAL, RetrievalSpec
from core.nearest import nearest
from core.states import ChannelKind
from storage import Store, audience
from storage import embeddings as stored

EMBED_BATCH = 256  # rows embedded, then stored, at a time: an interrupted rebuild keeps its progress


class TextEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


@dataclass
class Hit:
    example_id: int
    question: str
    answer: str
    source_key: str
    source: dict[str, Any]  # Slack-imported examples carry the permalink here
    score: float
    audience: str = ChannelKind.UNKNOWN  # the source channel's kind (storage.audience)
    channel_id: str | None = None
    approved_by: str | None = None  # who approved the pair (a reused answer names them)


@dataclass(frozen=True)
class _Index:
    """What one search reads: replaced whole, never changed in place, so searches need no lock."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    hashes: dict[int, str] = field(default_factory=dict)  # example_id -> text hash of its row
    # Each row's audience and source channel ("" when none), aligned with ids: the asking channel's scope
    # (storage.audience) becomes a row mask for core.nearest.
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    channels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def allowed(self, scope: "audience.Scope") -> np.ndarray:
        return np.isin(self.kinds, sorted(scope.kinds)) | np.isin(self.channels, sorted(scope.channels))


class Retriever:
    def __init__(self, store: Store, embedder: TextEmbedder, spec: RetrievalSpec = RETRIEVAL):
        self.store = store
        self.embedder = embedder
        self.spec = spec
        self._index = _Index(matrix=np.zeros((0, embedder.dim), dtype=np.float32))
        self._fingerprint: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        # PostgreSQL with pgvector could search in the database instead (not implemented: numpy is enough).

    @property
    def size(self) -> int:
        return len(self._index.ids)

    def sync(self, progress: Callable[[int, int], None] | None = None, *, blocking: bool = True) -> dict[str, int]:
        """Catch up with the store: embed approved examples that are new or whose question or
        answer changed, drop rows of examples no longer approved, refresh the matrix.

        Returns {embedded, removed, total}. A store unchanged since the last call costs one query.
        blocking=False returns at once (nothing done) when another thread is syncing.
        """
        if not self._lock.acquire(blocking=blocking):
            return {"embedded": 0, "removed": 0, "total": self.size}
        try:
            with self.store.session() as s:
                before = stored.fingerprint(s)
            if before == self._fingerprint:
                return {"embedded": 0, "removed": 0, "total": self.size}
            counts, complete = self._catch_up(progress)
            with self.store.session() as s:
                after = stored.fingerprint(s)
            # Our own embedding rows moved the fingerprint; remember the new one unless an example
            # changed while we worked (or a row could not be read), so the next call looks again.
            self._fingerprint = after if complete and after[:2] == before[:2] else None
            return counts
        finally:
            self._lock.release()

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Drop every stored embedding and embed all approved examples again."""
        with self._lock:
            with self.store.session() as s:
                removed = stored.delete_all(s)
            self._index = _Index(matrix=np.zeros((0, self.embedder.dim), dtype=np.float32))
            self._fingerprint = None
        counts = self.sync(progress)
        return {**counts, "removed": removed}

    def search(self, question: str, k: int | None = None, min_score: float | None = None, *,
               channel: str | None = None) -> list[Hit]:
        """The k approved pairs nearest to `question` that may be used where it is asked (channel: the asking
        channel's id; None: as in a DM), best first, scoring at least min_score (the spec's when None)."""
        k = self.spec.k if k is None else k
        min_score = self.spec.min_score if min_score is None else min_score
        # Waits only while the index is not known to be current; otherwise a search never queues
        # behind another thread's long sync and answers from the matrix it has.
        self.sync(blocking=self._fingerprint is None)
        index = self._index
        if not len(index.ids) or k <= 0 or not question.strip():
            return []
        with self.store.session() as s:
            scope = audience.scope(s, channel)  # read per search: a mark taken back applies at once
        allowed = index.allowed(scope)
        if not allowed.any():
            return []
        query = self.embedder.embed([self.spec.query_text(question)])[0]
        top = nearest(query, index.matrix, k=k, min_score=min_score, allowed=allowed)  # as the trainer chooses
        if not top:
            return []
        with self.store.session() as s:
            rows = stored.approved_by_ids(s, [int(index.ids[i]) for i, _ in top])
        hits = []
        for i, score in top:
            ex = rows.get(int(index.ids[i]))
            # Rejected, or its channel changed kind, since the last sync: left out.
            if ex is not None and scope.allows(ex.audience, ex.channel_id):
                hits.append(Hit(ex.id, ex.question, ex.answer, ex.source_key, dict(ex.source), score,
                                ex.audience, ex.channel_id, ex.approved_by))
        return hits

    def _catch_up(self, progress: Callable[[int, int], None] | None) -> tuple[dict[str, int], bool]:
        name, dim = self.embedder.name, self.embedder.dim
        with self.store.session() as s:
            removed = stored.delete_unapproved(s)
            wanted = {ex_id: (text, stored.text_hash(text)) for ex_id, text in stored.approved_texts(s)}
            audiences = stored.audiences(s)
            have = stored.stored_keys(s)
        todo = [ex_id for ex_id, (_, h) in wanted.items()
                if (key := have.get(ex_id)) is None or key != stored.StoredKey(name, dim, h)]
        new_rows: dict[int, tuple[str, np.ndarray]] = {}
        for start in range(0, len(todo), EMBED_BATCH):
            chunk = todo[start:start + EMBED_BATCH]
            vecs = self.embedder.embed([wanted[i][0] for i in chunk])
            rows = [(ex_id, name, dim, wanted[ex_id][1], _to_bytes(v)) for ex_id, v in zip(chunk, vecs)]
            self._put(rows)
            new_rows.update((ex_id, (wanted[ex_id][1], v)) for ex_id, v in zip(chunk, vecs))
            if progress:
                progress(start + len(chunk), len(todo))
        self._refresh(wanted, new_rows, audiences)
        return {"embedded": len(todo), "removed": removed, "total": self.size}, self.size == len(wanted)

    def _put(self, rows: list[tuple[int, str, int, str, bytes]]) -> None:
        try:
            with self.store.session() as s:
                stored.put(s, rows)
        except IntegrityError:
            # Another process (a second bot replica) stored the same new rows a moment before us,
            # or an example was deleted meanwhile. Theirs are committed now and get replaced; rows
            # of examples gone are dropped (the next sync notices the deletion).
            with self.store.session() as s:
                alive = stored.approved_by_ids(s, [r[0] for r in rows])
                stored.put(s, [r for r in rows if r[0] in alive])

    def _refresh(self, wanted: dict[int, tuple[str, str]], new_rows: dict[int, tuple[str, np.ndarray]],
                 audiences: dict[int, tuple[str, str]]) -> None:
        """Bring the matrix to `wanted`: keep rows whose hash still matches, add what we embedded,
        and read from the store only the rows another process wrote."""
        old = self._index
        keep = np.array([wanted.get(int(i), (None, None))[1] == old.hashes.get(int(i)) and int(i) not in new_rows
                         for i in old.ids], dtype=bool)
        kept_ids = set(int(i) for i in old.ids[keep])
        missing = [i for i in wanted if i not in kept_ids and i not in new_rows]
        if missing:
            with self.store.session() as s:
                # Most rows missing (a restart): one pass over the table beats thousands of IN lists.
                ids = missing if len(missing) < len(wanted) // 2 else None
                for ex_id, h, blob in stored.vectors(s, self.embedder.name, ids):
                    if ex_id in wanted and ex_id not in kept_ids and ex_id not in new_rows and h == wanted[ex_id][1]:
                        new_rows[ex_id] = (h, _from_bytes(blob))
        add_ids = list(new_rows)
        ids = np.concatenate([old.ids[keep], np.array(add_ids, dtype=np.int64)])
        parts = [old.matrix[keep]] if len(old.ids) else []
        if add_ids:
            parts.append(np.stack([new_rows[i][1] for i in add_ids]).astype(np.float32, copy=False))
        matrix = np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
        hashes = {int(i): old.hashes[int(i)] for i in old.ids[keep]}
        hashes.update((i, new_rows[i][0]) for i in add_ids)
        who = [audiences.get(int(i), (ChannelKind.UNKNOWN, "")) for i in ids]
        self._index = _Index(ids=ids, matrix=np.ascontiguousarray(matrix), hashes=hashes,
                             kinds=np.array([k for k, _ in who], dtype=object),
                             channels=np.array([c for _, c in who], dtype=object))


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
