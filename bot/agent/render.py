"""What the agent view shows besides the answer itself: the status, the thread's title, suggested prompts."""

from __future__ import annotations

from typing import Any, Iterable

from core.text import clip
from storage.models import Example

STATUS = "is looking through approved answers…"
LOADING = ["looking through approved answers…", "writing an answer…"]
TITLE_LIMIT = 60
PROMPT_TITLE_LIMIT = 40  # what fits on a suggestion's chip
PROMPTS_TITLE = "Questions people ask"
MAX_PROMPTS = 4  # Slack shows up to four


def title(question: str) -> str:
    return clip(question, TITLE_LIMIT, one_line=True)


def suggested_prompts(examples: Iterable[Example]) -> list[dict[str, Any]]:
    """setSuggestedPrompts' prompts: the chip's title, and the question it asks when pressed."""
    return [{"title": clip(ex.question.strip(), PROMPT_TITLE_LIMIT), "message": ex.question.strip()}
            for ex in list(examples)[:MAX_PROMPTS]]
