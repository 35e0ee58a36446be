"""Immutable dataset snapshots and the train/validation split."""

from __future__ import annotations

import hashlib
import json

from sqlmodel import Session, col, select

from core.states import ExampleStatus
from storage import audience, preferences
from storage.models import DatasetSnapshot, Example, Preference, SnapshotExample, SnapshotPreference

TRAIN, VALIDATION = "train", "validation"


def side_of(source_key: str, val_percent: int) -> str:
    """A pure function of the source key: a validation example never moves into training."""
    bucket = int(hashlib.sha256(source_key.encode("utf-8")).hexdigest()[:8], 16) % 10_000
    return VALIDATION if bucket < val_percent * 100 else TRAIN


def create_snapshot(session: Session, val_percent: int) -> tuple[DatasetSnapshot, bool]:
    """Snapshot the approved examples and the preference records the shared adapter may learn. Returns (snapshot,
    created); an unchanged store reuses the newest.

    The adapter answers everywhere, so it learns only pairs and records usable everywhere (storage.audience, asked
    with no channel): a private or shared channel's stay out until an admin marks that channel shareable."""
    everywhere = audience.scope(session, None)
    examples = list(session.exec(
        select(Example).where(Example.status == ExampleStatus.APPROVED, everywhere.clause())
        .order_by(col(Example.source_key))
    ))
    rows = [(ex, side_of(ex.source_key, val_percent)) for ex in examples]
    prefs = [(p, preference_side(p, val_percent)) for p in preferences.for_shared_model(session)]
    content_hash = _content_hash(rows, prefs)
    latest = latest_snapshot(session)
    if latest is not None and latest.content_hash == content_hash:
        return latest, False
    n_val = sum(side == VALIDATION for _, side in rows)
    snap = DatasetSnapshot(content_hash=content_hash, n_examples=len(rows), n_train=len(rows) - n_val,
                           n_validation=n_val, val_percent=val_percent, n_preferences=len(prefs))
    session.add(snap)
    session.flush()
    session.add_all(
        SnapshotExample(snapshot_id=snap.id, example_id=ex.id, source_key=ex.source_key, side=side,
                        question=ex.question, answer=ex.answer)
        for ex, side in rows
    )
    session.add_all(
        SnapshotPreference(snapshot_id=snap.id, preference_id=p.id, kind=p.kind, side=side, prompt=p.prompt,
                           question=p.question, chosen=p.chosen, rejected=p.rejected, channel_id=p.channel_id)
        for p, side in prefs
    )
    session.flush()
    return snap, True


def preference_side(pref: Preference, val_percent: int) -> str:
    """A record's side is the pair's its chosen text became (the held-out answer never trains through its record),
    else its own id's."""
    return side_of(pref.pair_key or f"preference:{pref.id}", val_percent)


def _content_hash(rows: list[tuple[Example, str]], prefs: list[tuple[Preference, str]]) -> str:
    digest = hashlib.sha256()
    for ex, side in rows:
        digest.update("\x1e".join((ex.source_key, side, ex.question, ex.answer)).encode("utf-8") + b"\x1d")
    if prefs:  # a store without records hashes as before they existed: its newest snapshot is still current
        digest.update(b"\x1c")
        for p, side in prefs:
            prompt = json.dumps(p.prompt, ensure_ascii=False, sort_keys=True)
            digest.update("\x1e".join((str(p.id), p.kind, side, prompt, p.question, p.chosen, p.rejected))
                          .encode("utf-8") + b"\x1d")
    return digest.hexdigest()


def latest_snapshot(session: Session) -> DatasetSnapshot | None:
    return session.exec(select(DatasetSnapshot).order_by(col(DatasetSnapshot.id).desc()).limit(1)).first()


def snapshot_rows(session: Session, snapshot_id: int, side: str | None = None) -> list[SnapshotExample]:
    query = select(SnapshotExample).where(SnapshotExample.snapshot_id == snapshot_id)
    if side:
        query = query.where(SnapshotExample.side == side)
    return list(session.exec(query.order_by(col(SnapshotExample.source_key))))
