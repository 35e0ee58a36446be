"""Adding, deciding and listing examples. Every write path goes through here (redaction, dedup)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import bindparam, case
from sqlmodel import Session, col, select

from core.states import ChangeOutcome, ChannelKind, CurationOutcome, ExampleSource, ExampleStatus, WithdrawOutcome
from storage import audience
from storage.dedup import dedup_key
from storage.models import Example, SnapshotExample, utcnow
from storage.redact import redact

# Outcomes of add_examples, for import summaries.
CREATED, UPGRADED, EXISTS, DUPLICATE = "created", "upgraded", "exists", "duplicate"

_CHUNK = 500  # bound on IN (…) lists; PostgreSQL and SQLite both take this comfortably


@dataclass
class NewExample:
    source_key: str
    question: str
    answer: str
    status: str = ExampleStatus.CANDIDATE
    flags: list[dict[str, str]] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    labelled_by: str | None = None
    approved_by: str | None = None
    # Where it came from (storage.audience); None: source["channel_id"], and the kind ftbot recorded for it.
    channel_id: str | None = None
    audience: str | None = None


def flag(code: str, reason: str) -> dict[str, str]:
    return {"code": code, "reason": reason}


def add_examples(session: Session, items: Sequence[NewExample]) -> list[tuple[str, Example | None]]:
    """Store new pairs; returns (outcome, example) per item, in order.

    A source already stored is left as it is, except that a candidate becomes approved when
    the source now carries a curator's approval: re-importing the same data changes nothing,
    and decisions people made are never undone by an import.
    """
    prepared = [_prepare(item) for item in items]
    kinds: dict[str | None, str] = {}
    for p in prepared:
        if p.audience is None and p.channel_id is None:
            # from no channel: an operator's pair (`ft examples import`), theirs to give
            p.audience = ChannelKind.PUBLIC
        elif p.audience is None:
            if p.channel_id not in kinds:
                kinds[p.channel_id] = audience.kind_of(session, p.channel_id)
            p.audience = kinds[p.channel_id]
    keys = [dedup_key(p.question, p.answer) for p in prepared]
    by_source = _existing(session, Example.source_key, [p.source_key for p in prepared])
    by_dedup = _existing(session, Example.dedup_key, keys)
    results: list[tuple[str, Example | None]] = []
    for item, key in zip(prepared, keys):
        existing = by_source.get(item.source_key)
        if existing is not None:
            if existing.audience == ChannelKind.UNKNOWN and item.audience != ChannelKind.UNKNOWN:
                existing.audience, existing.channel_id = item.audience, item.channel_id  # learnt since
            if (existing.status == ExampleStatus.CANDIDATE and item.status == ExampleStatus.APPROVED
                    and not existing.flags):
                _decide(existing, ExampleStatus.APPROVED, item.approved_by)
                results.append((UPGRADED, existing))
            else:
                results.append((EXISTS, existing))
            continue
        if key in by_dedup:
            results.append((DUPLICATE, by_dedup[key]))
            continue
        row = _row(item, key)
        session.add(row)
        by_source[row.source_key] = by_dedup[key] = row
        results.append((CREATED, row))
    session.flush()
    return results


def storable(value: Any) -> Any:
    """Text either database keeps: no NUL (PostgreSQL refuses it in text and JSON) and no lone surrogate (JSON
    escapes like "\\ud800" decode to one, and UTF-8 cannot encode it), in strings and inside lists and dicts."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        if not value.isascii() and _has_surrogate(value):
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _prepare(item: NewExample) -> NewExample:
    """Redacted and checked; an Example row is built only for what gets stored (rows are costly)."""
    question, found_q = redact(storable(item.question).strip())
    answer, found_a = redact(storable(item.answer).strip())
    source = storable(dict(item.source))
    if found_q or found_a:
        source["redacted"] = sorted(set(found_q + found_a))
    status = item.status
    if item.flags and status == ExampleStatus.APPROVED:
        status = ExampleStatus.CANDIDATE  # flagged pairs wait for a person
    channel = item.channel_id or source.get("channel_id")
    return NewExample(item.source_key, question, answer, status, list(item.flags), source, item.labelled_by,
                      item.approved_by if status == ExampleStatus.APPROVED else None,
                      channel if isinstance(channel, str) and len(channel) <= 32 else None, item.audience)


def _row(item: NewExample, key: str) -> Example:
    row = Example(source_key=item.source_key, dedup_key=key, question=item.question, answer=item.answer,
                  status=item.status, flags=item.flags, source=item.source, labelled_by=item.labelled_by,
                  channel_id=item.channel_id, audience=item.audience or ChannelKind.UNKNOWN)
    if item.status == ExampleStatus.APPROVED:
        _decide(row, item.status, item.approved_by)
    return row


def _existing(session: Session, column, keys: list[str]) -> dict[str, Example]:
    found: dict[str, Example] = {}
    unique = list(dict.fromkeys(keys))
    for i in range(0, len(unique), _CHUNK):
        chunk = unique[i:i + _CHUNK]
        # Inlined literals let PostgreSQL hash the list; bound parameters made it compare each
        # row against every key (seconds per chunk on a table it has no statistics for yet).
        keys_param = bindparam("keys", chunk, expanding=True, literal_execute=True)
        for ex in session.exec(select(Example).where(col(column).in_(keys_param))):
            found[getattr(ex, column.key)] = ex
    return found


def _decide(ex: Example, status: str, by: str | None) -> None:
    ex.status = status
    ex.approved_by = by if status == ExampleStatus.APPROVED else None
    ex.decided_at = ex.updated_at = utcnow()


def set_status(session: Session, ids: Iterable[int], status: str, by: str | None) -> tuple[list[int], list[int]]:
    """Approve or reject by id. Returns (changed ids, unknown ids)."""
    if status not in tuple(ExampleStatus):
        raise ValueError(f"unknown status {status!r}")
    wanted = list(dict.fromkeys(ids))
    rows = {ex.id: ex for ex in session.exec(select(Example).where(col(Example.id).in_(wanted)))}
    changed = []
    for ex_id in wanted:
        ex = rows.get(ex_id)
        if ex is not None and ex.status != status:
            _decide(ex, status, by)
            changed.append(ex_id)
    return changed, [i for i in wanted if i not in rows]


def edit(session: Session, ex_id: int, question: str, answer: str) -> Example:
    ex = session.get(Example, ex_id)
    if ex is None:
        raise LookupError(f"no example {ex_id}")
    ex.question, _ = redact(question.strip())
    ex.answer, _ = redact(answer.strip())
    ex.dedup_key = dedup_key(ex.question, ex.answer)
    ex.updated_at = utcnow()
    return ex


def list_examples(session: Session, status: str | None = None, limit: int | None = None, *,
                  drafts_first: bool = False) -> list[Example]:
    """Oldest first; drafts_first: pairs an agent sent from a draft card come before the rest (they reached a
    customer already, so a curator should see them soonest)."""
    query = select(Example)
    if drafts_first:
        from_draft = Example.__table__.c.source["kind"].as_string() == ExampleSource.DRAFT.value
        query = query.order_by(case((from_draft, 0), else_=1))
    query = query.order_by(col(Example.id))
    if status:
        query = query.where(Example.status == status)
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def withdraw(session: Session, source_key: str, user: str) -> WithdrawOutcome:
    """Remove a labelled example when the person who labelled it takes the label back (IN_SNAPSHOT: a snapshot
    used it, so it is kept)."""
    ex = session.exec(select(Example).where(Example.source_key == source_key)).first()
    if ex is None:
        return WithdrawOutcome.NOT_FOUND
    if ex.labelled_by != user:
        return WithdrawOutcome.NOT_LABELLER
    if used_by_snapshot(session, ex.id):
        return WithdrawOutcome.IN_SNAPSHOT
    session.delete(ex)
    return WithdrawOutcome.WITHDRAWN


def used_by_snapshot(session: Session, ex_id: int) -> bool:
    query = select(SnapshotExample.id).where(SnapshotExample.example_id == ex_id).limit(1)
    return session.exec(query).first() is not None


def to_dict(ex: Example) -> dict[str, Any]:
    return {
        "id": ex.id, "status": ex.status, "question": ex.question, "answer": ex.answer,
        "flags": ex.flags, "source": ex.source_key, "source_info": ex.source,
        "labelled_by": ex.labelled_by, "approved_by": ex.approved_by, "channel_id": ex.channel_id,
        "audience": ex.audience,
        "created_at": ex.created_at.isoformat(), "updated_at": ex.updated_at.isoformat(),
    }


def recent(session: Session, limit: int = 5) -> list[Example]:
    """The newest examples first, whatever their status (the App Home tab)."""
    return list(session.exec(select(Example).order_by(col(Example.id).desc()).limit(limit)))


def same_content(session: Session, question: str, answer: str) -> Example | None:
    """The example `edit(…, question, answer)` would collide with on dedup_key, if any."""
    key = dedup_key(redact(question.strip())[0], redact(answer.strip())[0])
    return session.exec(select(Example).where(Example.dedup_key == key)).first()


# --- Slack's own changes: a deleted or edited message behind an example -----------------------------------------

DELETED_IN_SLACK, EDITED_IN_SLACK = "deleted_in_slack", "edited_in_slack"


def from_message(session: Session, channel_id: str, ts: str) -> list[Example]:
    """The examples a Slack message is behind: as the labelled reply, or as the question (the thread's root)."""
    prefix = f"slack:{channel_id}:"
    found = []
    for ex in session.exec(select(Example).where(col(Example.source_key).startswith(prefix))):
        if ex.source_key == prefix + ts or (ex.source.get("thread_ts") == ts
                                            and ex.source.get("kind") == ExampleSource.SLACK):
            found.append(ex)
    return found


def withdraw_deleted(session: Session, ex: Example, which: str) -> bool:
    """Its reply or question was deleted in Slack: no longer used anywhere (rejected, flagged for the curators'
    record). Returns False when it was already withdrawn so."""
    if any(f.get("code") == DELETED_IN_SLACK for f in ex.flags) and ex.status == ExampleStatus.REJECTED:
        return False
    ex.flags = [*ex.flags, flag(DELETED_IN_SLACK, f"the {which} was deleted in Slack")]
    _decide(ex, ExampleStatus.REJECTED, None)
    return True


def revise(session: Session, ex: Example, question: str, answer: str, which: str, edited_ts: str | None
           ) -> ChangeOutcome:
    """Its reply or question was edited in Slack: back to the curators with the new text.
    Returns REVISED, UNCHANGED (same text), or DUPLICATE (the new text is another stored pair's: withdrawn)."""
    question, _ = redact(question.strip())
    answer, _ = redact(answer.strip())
    ex.source = {**ex.source, "slack_edited_ts": edited_ts}
    if (question, answer) == (ex.question, ex.answer):
        return ChangeOutcome.UNCHANGED
    other = same_content(session, question, answer)
    if other is not None and other.id != ex.id:
        ex.flags = [*ex.flags, flag(DELETED_IN_SLACK, f"the {which} was edited in Slack into a copy of example "
                                                      f"{other.id}")]
        _decide(ex, ExampleStatus.REJECTED, None)
        return ChangeOutcome.DUPLICATE
    edit(session, ex.id, question, answer)
    ex.flags = [f for f in ex.flags if f.get("code") != EDITED_IN_SLACK] + [
        flag(EDITED_IN_SLACK, f"the {which} was edited in Slack; check the new text")]
    ex.status, ex.approved_by, ex.decided_at = ExampleStatus.CANDIDATE, None, None
    return ChangeOutcome.REVISED


def edited_since(ex: Example, message: dict[str, Any]) -> str | None:
    """The edit's ts when this Slack message was edited after the example was stored (or last revised)."""
    edited = (message.get("edited") or {}).get("ts") if isinstance(message.get("edited"), dict) else None
    if not edited:
        return None
    try:
        when = float(edited)
    except (TypeError, ValueError):
        return None
    seen = ex.source.get("slack_edited_ts")
    created = (ex.created_at if ex.created_at.tzinfo else ex.created_at.replace(tzinfo=timezone.utc)).timestamp()
    if when <= created or (seen and when <= float(seen)):
        return None
    return str(edited)


def withdraw_deleted_id(session: Session, ex_id: int, which: str) -> bool:
    """withdraw_deleted for the example `ex_id`, locked first (Slack's deletion and a curator's click may meet)."""
    ex = session.get(Example, ex_id, with_for_update=True)
    return ex is not None and withdraw_deleted(session, ex, which)


def apply_slack_edit(session: Session, ex_id: int, pair: tuple[str, str] | None, which: str,
                     edited_ts: str | None) -> ChangeOutcome:
    """A message behind example `ex_id` was edited in Slack and its thread read again: `pair` is the (question,
    answer) now extracted, None when the thread no longer yields one (then the example is withdrawn)."""
    ex = session.get(Example, ex_id, with_for_update=True)
    if ex is None:
        return ChangeOutcome.GONE
    if pair is None:
        return ChangeOutcome.WITHDRAWN if withdraw_deleted(session, ex, which) else ChangeOutcome.UNCHANGED
    return revise(session, ex, pair[0], pair[1], which, edited_ts)


def decide(session: Session, ex_id: int, status: str, by: str) -> tuple[CurationOutcome, Example | None]:
    """A curator approves or rejects one candidate; a decided or deleted example is left as it is."""
    ex = session.get(Example, ex_id, with_for_update=True)  # two curators clicking at once: one wins
    if ex is None:
        return CurationOutcome.GONE, None
    if ex.status != ExampleStatus.CANDIDATE:
        return CurationOutcome.STALE, ex
    set_status(session, [ex_id], status, by)
    return CurationOutcome.DONE, ex


def save_edit(session: Session, ex_id: int, question: str, answer: str, by: str
              ) -> tuple[CurationOutcome, Example | None]:
    """A curator's edit of a candidate, approved in the same transaction."""
    ex = session.get(Example, ex_id, with_for_update=True)
    if ex is None:
        return CurationOutcome.GONE, None
    if ex.status != ExampleStatus.CANDIDATE:
        return CurationOutcome.STALE, ex
    other = same_content(session, question, answer)
    if other is not None and other.id != ex_id:
        return CurationOutcome.CLASH, other  # the unique dedup_key would refuse it at commit
    edit(session, ex_id, question, answer)
    set_status(session, [ex_id], ExampleStatus.APPROVED, by)
    return CurationOutcome.DONE, ex
