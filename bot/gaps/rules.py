"""The knowledge-gaps surface's rules, as pure functions: what one viewer may see of a gap, which of its questions
a button and a form carry (Slack bounds both), the question the form starts from, what a written answer must be,
and the digest's week."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.capture.render import ANSWER, FIELD_LIMIT, QUESTION, field_errors

BUTTON_LIMIT = 2000  # Slack: the most a button's value holds
METADATA_LIMIT = 3000  # Slack: the most a view's private_metadata holds
EXAMPLES = 3  # example questions shown per gap
_SHORT = {"draft": "d", "feedback": "f"}
_LONG = {v: k for k, v in _SHORT.items()}


@dataclass(frozen=True)
class Shown:
    """A gap (storage.gaps.Gap) as one viewer sees it: only its questions from channels the viewer's scope allows
    (storage.audience, as retrieval scopes the asking channel), so a private channel's questions, and the channel
    itself, never reach a viewer elsewhere."""

    gap: Any
    questions: list  # storage.gaps.GapQuestion, the visible ones, in the gap's order

    @property
    def size(self) -> int:
        return len(self.questions)

    @property
    def channels(self) -> list[str]:
        return sorted({q.channel_id for q in self.questions if q.channel_id})

    @property
    def open(self) -> int:
        return sum(1 for q in self.questions if q.open)

    def examples(self, n: int = EXAMPLES) -> list[str]:
        """Up to n of its questions, no two alike."""
        seen: dict[str, str] = {}
        for q in self.questions:
            seen.setdefault(_normal(q.question), q.question)
            if len(seen) == n:
                break
        return list(seen.values())


def visible(gaps: list, scope: Any, min_size: int = 2) -> list[Shown]:
    """The gaps a viewer with this scope may see, each cut to its visible questions, biggest first; a gap left with
    fewer than min_size questions is no gap for them."""
    shown = [Shown(g, [q for q in g.questions if scope.allows(q.audience, q.channel_id)]) for g in gaps]
    return sorted((s for s in shown if s.size >= min_size), key=lambda s: (-s.size, -s.open))


@dataclass(frozen=True)
class Target:
    """What "Write the answer" carries from the list to the form and back: the gap's question refs ("draft:12",
    open ones first) and the channel whose scope listed it (None: App Home, which scopes as a DM)."""

    channel: str | None
    refs: list[str]


def target(shown: Shown, channel: str | None) -> Target:
    ordered = sorted(shown.questions, key=lambda q: not q.open)  # stable: the gap's order within each half
    return Target(channel, [q.ref for q in ordered])


def pack(t: Target, limit: int) -> str:
    """The target as compact JSON within `limit` characters (a button's value, a form's private_metadata): refs
    beyond it are left out, the closed ones first since they were put last."""
    refs = [_SHORT.get(kind, "?") + number for kind, _, number in (r.partition(":") for r in t.refs)]
    while True:
        text = json.dumps({"c": t.channel or "", "r": refs}, separators=(",", ":"))
        if len(text) <= limit or not refs:
            return text
        widest = max(len(r) for r in refs) + 3  # a ref's characters in the JSON, at most
        refs = refs[:-max(1, (len(text) - limit) // widest)]  # never more than needed; a few steps


def unpack(text: str | None) -> Target | None:
    """The target a button or form carried; None when it is no target (forged, or from another version)."""
    try:
        data = json.loads(text or "")
        refs = [f"{_LONG[r[0]]}:{int(r[1:])}" for r in data["r"]]
        channel = data["c"]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return Target(channel or None, refs) if isinstance(channel, str) and refs else None


def common_question(questions: list[str]) -> str:
    """The question the form starts from: the gap's most common wording (the first of equals), as asked."""
    if not questions:
        return ""
    counts = Counter(_normal(q) for q in questions)
    best = max(counts.values())
    return next(q for q in questions if counts[_normal(q)] == best)[:FIELD_LIMIT]


def form_errors(question: str, answer: str, max_chars: int) -> dict[str, str]:
    """What Slack shows under the form's fields, keeping what was typed."""
    errors = field_errors(question, answer)
    limit = min(max_chars, FIELD_LIMIT)
    for block, text, what in ((QUESTION, question, "question"), (ANSWER, answer, "answer")):
        if block not in errors and len(text) > limit:
            errors[block] = f"The {what} is {len(text):,} characters; keep it within {limit:,}."
    return errors


def week_of(now: datetime) -> str:
    """The ISO week a digest belongs to, e.g. "2026-W45": one digest each."""
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip("?!. ").casefold()
