"""Stored embeddings of approved examples' questions (the retrieval index's rows).

Vectors stay bytes here (float32, little-endian): the store imports nothing heavy, and
serving.retrieval turns them into a matrix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import bindparam, delete, func
from sqlmodel import Session, col, select

from core.contract import RETRIEVAL
from core.states import ChannelKind, ExampleStatus
from storage.models import Example, ExampleEmbedding, utcnow

_CHUNK = 500  # bound on IN (…) lists, as in storage.examples


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(session: Session) -> tuple[Any, ...]:
    """Changes whenever the index may need work: an approval, a rejection, an edit, a deletion,
    or another process writing embeddings. One round trip of three aggregates."""
    approved = Example.status == ExampleStatus.APPROVED
    n_approved = select(func.count()).select_from(Example).where(approved).scalar_subquery()
    newest = select(func.max(Example.updated_at)).where(approved).scalar_subquery()
    n_rows = select(func.count()).select_from(ExampleEmbedding).scalar_subquery()
    return tuple(session.exec(select(n_approved, newest, n_rows)).one())


def approved_texts(session: Session) -> list[tuple[int, str]]:
    """(id, text a row is embedded from) of every approved example: what the index should hold."""
    query = select(Example.id, Example.question, Example.answer).where(Example.status == ExampleStatus.APPROVED)
    return [(i, RETRIEVAL.stored_text(q, a)) for i, q, a in session.exec(query.order_by(col(Example.id)))]


def audiences(session: Session) -> dict[int, tuple[str, str]]:
    """id -> (audience, channel id or "") of every approved example: who may be given each row (storage.audience)."""
    query = select(Example.id, Example.audience, Example.channel_id).where(Example.status == ExampleStatus.APPROVED)
    return {i: (kind or ChannelKind.UNKNOWN, channel or "") for i, kind, channel in session.exec(query)}


@dataclass(frozen=True)
class StoredKey:
    model: str
    dim: int
    text_hash: str


def stored_keys(session: Session) -> dict[int, StoredKey]:
    """example_id -> what its stored vector was made from (no vectors: cheap to read)."""
    query = select(ExampleEmbedding.example_id, ExampleEmbedding.model, ExampleEmbedding.dim,
                   ExampleEmbedding.text_hash)
    return {i: StoredKey(m, d, h) for i, m, d, h in session.exec(query)}


def delete_unapproved(session: Session) -> int:
    """Drop rows of examples that are no longer approved (rejected, back to candidate, deleted)."""
    approved_ids = select(Example.id).where(Example.status == ExampleStatus.APPROVED)
    result = session.exec(delete(ExampleEmbedding).where(col(ExampleEmbedding.example_id).not_in(approved_ids)))
    return result.rowcount or 0


def delete_all(session: Session) -> int:
    return session.exec(delete(ExampleEmbedding)).rowcount or 0


def put(session: Session, rows: Sequence[tuple[int, str, int, str, bytes]]) -> None:
    """Store (example_id, model, dim, text_hash, vector) rows, replacing any row of the same example."""
    ids = [r[0] for r in rows]
    for i in range(0, len(ids), _CHUNK):
        chunk = bindparam("ids", ids[i:i + _CHUNK], expanding=True, literal_execute=True)
        session.exec(delete(ExampleEmbedding).where(col(ExampleEmbedding.example_id).in_(chunk)))
    now = utcnow()
    session.add_all(ExampleEmbedding(example_id=ex_id, model=model, dim=dim, text_hash=h, vector=vector, updated_at=now)
                    for ex_id, model, dim, h, vector in rows)
    session.flush()


def vectors(session: Session, model: str, ids: Iterable[int] | None = None) -> Iterator[tuple[int, str, bytes]]:
    """(example_id, text_hash, vector) of the stored rows made by `model`; all of them when ids is None."""
    base = select(ExampleEmbedding.example_id, ExampleEmbedding.text_hash, ExampleEmbedding.vector).where(
        ExampleEmbedding.model == model)
    if ids is None:
        yield from session.exec(base)
        return
    wanted = list(ids)
    for i in range(0, len(wanted), _CHUNK):
        chunk = bindparam("ids", wanted[i:i + _CHUNK], expanding=True, literal_execute=True)
        yield from session.exec(base.where(col(ExampleEmbedding.example_id).in_(chunk)))


def approved_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Example]:
    """The approved examples among ids (a search's hits, read fresh so an edited answer shows)."""
    if not ids:
        return {}
    query = select(Example).where(col(Example.id).in_(list(ids)), Example.status == ExampleStatus.APPROVED)
    return {ex.id: ex for ex in session.exec(query)}


def status(session: Session) -> dict[str, Any]:
    """Rows per (model, dim), for `ft index status`."""
    query = select(ExampleEmbedding.model, ExampleEmbedding.dim, func.count(), func.max(ExampleEmbedding.updated_at)
                   ).group_by(ExampleEmbedding.model, ExampleEmbedding.dim)
    n_approved = session.exec(select(func.count()).select_from(Example).where(
        Example.status == ExampleStatus.APPROVED)).one()
    return {"approved": n_approved,
            "models": [{"model": m, "dim": d, "rows": n, "updated_at": u} for m, d, n, u in session.exec(query)]}
