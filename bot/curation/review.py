"""The review list: the oldest candidates and the questions the bot could not answer, with their buttons."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.curation import render
from bot.deps import Deps
from core.states import ExampleStatus
from storage import audience, feedback
from storage.examples import list_examples
from storage.models import Example, Feedback
from storage.stats import status as store_status

SHARE_NOTES_DAYS = 7  # how long /ft review shows a sharing mark set or taken back


async def review_message(deps: Deps, limit: int = 5, *, note: str | None = None) -> dict[str, Any]:
    """The oldest candidates with their buttons: `{"text", "blocks"}`, ready to send ephemerally."""
    limit = max(1, min(limit, 10))  # four blocks each, and a message holds at most 50

    def load(s: Session) -> tuple[list[Example], int, list[Feedback], list]:
        return (list_examples(s, ExampleStatus.CANDIDATE, limit, drafts_first=True),
                store_status(s)["examples"][ExampleStatus.CANDIDATE],
                feedback.unanswered(s, limit), audience.recent_share_changes(s, since_days=SHARE_NOTES_DAYS))

    candidates, total, unanswered, shared = await deps.db(load)
    # Sharing marks set or taken back lately: what each one moved (storage.audience).
    notes = "\n".join(n for n in (note, render.share_notes(shared)) if n) or None
    return render.review_list(candidates, total, notes, unanswered)
