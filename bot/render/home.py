"""The App Home tab: where the data set, the training jobs and the deployed model stand."""

from __future__ import annotations

from typing import Any

from bot.render.review import clip, escape
from storage.contract import JobProgress
from storage.models import Example, Feedback, ModelVersion, TrainingJob

_EXAMPLE_ICON = {"candidate": ":hourglass_flowing_sand:", "approved": ":white_check_mark:", "rejected": ":x:"}
_JOB_ICON = {"queued": ":hourglass:", "running": ":gear:", "succeeded": ":white_check_mark:",
             "failed": ":x:", "cancelled": ":no_entry_sign:"}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{n} {state}" for state, n in counts.items())


def progress(job: TrainingJob) -> str:
    """`step 40/120, loss 1.23` from whatever the worker reported so far."""
    p = JobProgress.from_json(job.progress)
    parts = []
    if p.step is not None:
        parts.append(f"step {p.step}/{p.total}" if p.total else f"step {p.step}")
    if p.loss is not None:
        parts.append(f"loss {p.loss:.3g}")
    if p.eta_s is not None and job.status == "running":
        parts.append(f"about {max(1, round(p.eta_s / 60))} min left")
    return ", ".join(parts)


def _example_line(ex: Example) -> str:
    icon = _EXAMPLE_ICON.get(ex.status, "")
    question, answer = clip(ex.question, 150, one_line=True), clip(ex.answer, 120, one_line=True)
    return f"{icon} *{ex.status}* · example {ex.id}\n*Q:* {escape(question)}\n*A:* {escape(answer)}"


def _job_line(job: TrainingJob) -> str:
    line = f"{_JOB_ICON.get(job.status, '')} Job {job.id}: *{job.status}*"
    detail = progress(job)
    if job.status == "failed" and job.error:
        detail = clip(job.error, 120, one_line=True)
    return line + (f" ({escape(detail)})" if detail else "")


def home_view(stats: dict[str, Any], examples: list[Example], jobs: list[TrainingJob],
              deployed: ModelVersion | None, *, is_curator: bool, unanswered: list[Feedback] = ()) -> dict[str, Any]:
    model = f"*{escape(deployed.name)}*" if deployed else "the base model (nothing deployed)"
    blocks = [
        _header("Support answers bot"),
        _section(f"Answering questions with {model}."),
        _section(f"*Examples:* {_counts(stats['examples'])}\n*Training jobs:* {_counts(stats['jobs'])}"),
        {"type": "divider"},
        _header("Newest examples"),
    ]
    blocks += [_section(_example_line(ex)) for ex in examples] or [
        _section("No examples yet. React with ✅ to a good answer in a thread, or use "
                 "“Add to training data” from a message's menu.")]
    if unanswered:
        blocks += [{"type": "divider"}, _header("Questions the bot could not answer")]
        blocks += [_section("\n".join(f"• {escape(clip(fb.question, 150, one_line=True))}" for fb in unanswered))]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "A curator answers them in `/ft review`; an answer is used for the next question at once.")}]})
    blocks += [{"type": "divider"}, _header("Newest training jobs")]
    blocks += [_section("\n".join(_job_line(job) for job in jobs) if jobs else "No training jobs yet.")]
    hint = ("You are a curator: `/ft review` lists candidates to approve and questions to answer, "
            "`/ft train` starts a run."
            if is_curator else "Label good answers with ✅; curators review them before training.")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": hint}]})
    return {"type": "home", "blocks": blocks}
