"""What `/ft` answers: help and usage, refusals, and the replies of each sub-command (mrkdwn text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.command_args import ADMINS, CURATORS, EVERYONE, SPECS, Spec
from bot.render.home import progress
from bot.render.review import clip, escape
from storage.contract import VersionMetrics
from storage.models import JobStatus, ModelVersion, TrainingJob

if TYPE_CHECKING:
    from serving.deploy import DeployResult

_JOB_ICON = {"queued": ":hourglass:", "running": ":gear:", "succeeded": ":white_check_mark:",
             "failed": ":x:", "cancelled": ":no_entry_sign:"}
_WHO = {EVERYONE: "everyone", CURATORS: "curators and admins", ADMINS: "admins"}
_VERSION_ICON = {"awaiting_approval": ":hourglass:", "deployed": ":rocket:", "retired": ":zzz:",
                 "rejected": ":x:"}


def help_text() -> str:
    lines = ["*`/ft` commands*"]
    for spec in SPECS.values():
        lines.append(f"• `/ft {spec.syntax}` — {spec.summary} _({_WHO[spec.role]})_")
    return "\n".join(lines)


def usage(problem: str) -> str:
    return f"{problem}\n\n{help_text()}"


def refused(spec: Spec) -> str:
    return (f"Only {_WHO[spec.role]} can use `/ft {spec.name}`, so nothing changed. "
            "Ask one of them if it needs doing.")


def refused_mode() -> str:
    return "Only admins can change a channel's mode, so nothing changed. `/ft channel` shows it."


def status(stats: dict[str, Any]) -> str:
    def counts(group: dict[str, int]) -> str:
        return ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in group.items())

    model = f"*{escape(stats['deployed'])}* is deployed" if stats.get("deployed") else \
        "nothing is deployed: the base model answers"
    return (f"*Status:* {model}.\n*Examples:* {counts(stats['examples'])}\n"
            f"*Training jobs:* {counts(stats['jobs'])}\n*Model versions:* {counts(stats['versions'])}\n"
            f"*Dataset snapshots:* {stats['snapshots']}")


def train_queued(job: TrainingJob) -> str:
    return (f":hourglass: Queued training job *{job.id}* ({_params(job.params)}). A worker picks it up; "
            f"`/ft jobs` shows its progress, `/ft cancel {job.id}` stops it.")


def jobs(rows: list[TrainingJob]) -> str:
    if not rows:
        return "No training jobs yet. A curator starts one with `/ft train`."
    return "*Recent training jobs*\n" + "\n".join(_job_line(job) for job in rows)


def _job_line(job: TrainingJob) -> str:
    parts = [f"{_JOB_ICON.get(job.status, '')} Job *{job.id}*: {job.status}"]
    if job.status == JobStatus.RUNNING and job.cancel_requested:
        parts[0] += " (stopping)"
    detail = progress(job)
    if job.status == JobStatus.FAILED and job.error:
        detail = clip(job.error.strip().splitlines()[0] if job.error.strip() else job.error, 120, one_line=True)
    if detail:
        parts.append(escape(detail))
    parts.append(_params(job.params))
    if job.requested_by:
        parts.append(f"by <@{job.requested_by}>")
    return " · ".join(parts)


def cancelled(job: TrainingJob) -> str:
    if job.status == JobStatus.CANCELLED:
        return f":no_entry_sign: Job *{job.id}* is cancelled."
    return f":octagonal_sign: Job *{job.id}* is running; it stops at its next step."


def cancel_refused(reason: str) -> str:
    return f"Nothing to cancel: {escape(reason)}. `/ft jobs` lists the jobs."


def versions(rows: list[ModelVersion]) -> str:
    if not rows:
        return "No model versions yet: a finished training job makes one."
    return "*Recent model versions*\n" + "\n".join(_version_line(v) for v in rows)


def _version_line(v: ModelVersion) -> str:
    parts = [f"{_VERSION_ICON.get(v.status, '')} *{escape(v.name)}*: {v.status.replace('_', ' ')}"]
    metric = key_metric(VersionMetrics.from_json(v.metrics))
    if metric:
        parts.append(metric)
    if v.below_deployed and v.status == "awaiting_approval":
        parts.append(":warning: scores below the deployed version")
    return " · ".join(parts)


def key_metric(metrics: VersionMetrics) -> str:
    """The headline number the trainer stored: key-fact recall, else ROUGE-L."""
    for value, label in ((metrics.key_fact, "key fact"), (metrics.rougeL, "ROUGE-L")):
        if value is not None:
            return f"{label} {value:.0%}" if 0 <= value <= 1 else f"{label} {value:.3g}"
    return ""


def deploy_result(result: "DeployResult") -> str:
    icon = ":rocket:" if result.ok else ":warning:"
    text = f"{icon} {escape(result.message)}"
    if result.ok and result.smoke is not None and result.smoke.checked:
        text += (f"\nSmoke test: {result.smoke.matched} of {result.smoke.checked} answers from the served adapter "
                 f"matched the evaluation's ({result.smoke.seconds:.1f} s).")
    if result.unloaded:
        text += f"\nUnloaded older versions from the model server: {escape(', '.join(result.unloaded))}."
    return text


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "default settings"
