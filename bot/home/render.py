"""The App Home tab: where the data set, the training jobs and the deployed model stand."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks import context, escape, header, section
from core.contract import JobProgress
from core.states import ExampleStatus, JobStatus
from core.text import clip
from storage.models import Example, Feedback, ModelVersion, TrainingJob
from storage.outcomes import AutoFigures, DraftFigures, Report, ResponseTimes

_EXAMPLE_ICON = {ExampleStatus.CANDIDATE: ":hourglass_flowing_sand:", ExampleStatus.APPROVED: ":white_check_mark:",
                 ExampleStatus.REJECTED: ":x:"}
_JOB_ICON = {JobStatus.QUEUED: ":hourglass:", JobStatus.RUNNING: ":gear:", JobStatus.SUCCEEDED: ":white_check_mark:",
             JobStatus.FAILED: ":x:", JobStatus.CANCELLED: ":no_entry_sign:"}


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
    if p.eta_s is not None and job.status == JobStatus.RUNNING:
        parts.append(f"about {max(1, round(p.eta_s / 60))} min left")
    return ", ".join(parts)


def _example_line(ex: Example) -> str:
    icon = _EXAMPLE_ICON.get(ex.status, "")
    question, answer = clip(ex.question, 150, one_line=True), clip(ex.answer, 120, one_line=True)
    return f"{icon} *{ex.status}* · example {ex.id}\n*Q:* {escape(question)}\n*A:* {escape(answer)}"


def _job_line(job: TrainingJob) -> str:
    line = f"{_JOB_ICON.get(job.status, '')} Job {job.id}: *{job.status}*"
    detail = progress(job)
    if job.status == JobStatus.FAILED and job.error:
        detail = clip(job.error, 120, one_line=True)
    return line + (f" ({escape(detail)})" if detail else "")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def response(times: ResponseTimes) -> str:
    """`p50 15 s, p90 2 min (of 12)`: time to first response, by nearest rank (storage.outcomes)."""
    return f"p50 {duration(times.p50_s)}, p90 {duration(times.p90_s)} (of {times.n})" if times.n else "none yet"


def share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def draft_line(d: DraftFigures, *, detail: bool = True) -> str:
    """Draft mode in one line of plain figures (no user text, so nothing to escape)."""
    parts = [f"{d.questions} question{'s' if d.questions != 1 else ''}",
             f"{d.sent} sent unchanged ({share(d.sent, d.acted_on)} of {d.acted_on} acted on)"]
    edited = f"{d.edited} edited"
    if detail and d.edit_chars_median is not None:
        edited += f" (median {d.edit_chars_median:g}, mean {d.edit_chars_mean:g} chars)"
    parts.append(edited)
    discarded = f"{d.discarded} discarded"
    if detail and d.discarded:
        discarded += " (" + ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in d.discarded_by_reason.items()
                                      if n) + ")"
    parts += [discarded, f"{d.superseded} superseded", f"{d.expired} expired"]
    if d.pending:
        parts.append(f"{d.pending} waiting")
    if detail and d.failed:
        parts.append(f"{d.failed} failed")
    return " · ".join(parts)


def auto_line(a: AutoFigures, *, detail: bool = True) -> str:
    """Auto mode in one line: answers, hand-offs, ratings and resolutions (confirmed apart from assumed)."""
    parts = [f"{a.questions} question{'s' if a.questions != 1 else ''}", f"{a.answered} answered",
             f"{a.handed_off} handed off", f"{a.thumbs_up} :+1: / {a.thumbs_down} :-1:",
             f"resolved: {a.resolved_confirmed} confirmed, {a.resolved_assumed} assumed"]
    if detail:
        if a.declined != a.handed_off:
            parts.insert(2, f"{a.declined} declined")
        parts.append(f"{a.followed_up} followed up, {a.awaiting} within the window")
        if a.failed:
            parts.append(f"{a.failed} failed")
    return " · ".join(parts)


def live_record(report: Report, limit: int = 8) -> list[dict[str, Any]]:
    """App Home's "Live record": each watched channel's outcomes, compact; nothing before the first question."""
    if not report.channels:
        return []
    blocks: list[dict[str, Any]] = [{"type": "divider"}, header("Live record")]
    for ch in report.channels[:limit]:
        lines = [f"*<#{ch.channel_id}>*"]
        if ch.draft.questions:
            lines.append(f"Drafts: {draft_line(ch.draft, detail=False)}")
        if ch.auto.questions:
            lines.append(f"Auto: {auto_line(ch.auto, detail=False)}")
        blocks.append(section("\n".join(lines)))
    more = len(report.channels) - limit
    note = (f"{more} more channel{'s' if more != 1 else ''}: " if more > 0 else "") + (
        "`/ft stats` gives every figure, per version; the README defines each (“Live outcome metrics”).")
    blocks.append(context(note))
    return blocks


def home_view(stats: dict[str, Any], examples: list[Example], jobs: list[TrainingJob],
              deployed: ModelVersion | None, *, is_curator: bool, unanswered: list[Feedback] = (),
              outcomes: Report | None = None, gaps: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """gaps: the "Knowledge gaps" section's blocks (bot.gaps.render.home_section), for curators."""
    model = f"*{escape(deployed.name)}*" if deployed else "the base model (nothing deployed)"
    blocks = [
        header("Support answers bot"),
        section(f"Answering questions with {model}."),
        section(f"*Examples:* {_counts(stats['examples'])}\n*Training jobs:* {_counts(stats['jobs'])}"),
        {"type": "divider"},
        header("Newest examples"),
    ]
    blocks += [section(_example_line(ex)) for ex in examples] or [
        section("No examples yet. React with ✅ to a good answer in a thread, or use "
                "“Add to training data” from a message's menu.")]
    if unanswered:
        blocks += [{"type": "divider"}, header("Questions the bot could not answer")]
        blocks += [section("\n".join(f"• {escape(clip(fb.question, 150, one_line=True))}" for fb in unanswered))]
        blocks.append(context("A curator answers them in `/ft review`; an answer is used for the next question "
                              "at once."))
    blocks += list(gaps)
    if outcomes is not None:
        blocks += live_record(outcomes)
    blocks += [{"type": "divider"}, header("Newest training jobs")]
    blocks += [section("\n".join(_job_line(job) for job in jobs) if jobs else "No training jobs yet.")]
    hint = ("You are a curator: `/ft review` lists candidates to approve and questions to answer, "
            "`/ft train` starts a run."
            if is_curator else "Label good answers with ✅; curators review them before training.")
    blocks.append(context(hint))
    return {"type": "home", "blocks": blocks}
