"""What `/ft` answers: help and usage, refusals, and the replies of each sub-command (mrkdwn text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.commands.registry import ADMINS, CURATORS, EVERYONE, TEAM, Spec, commands
from bot.home.render import auto_line, draft_line, progress, response
from bot.slack.blocks import escape
from core.contract import VersionMetrics
from core.states import ChannelKind, JobStatus, VersionStatus
from core.text import clip
from serving.deploy import needs_confirming
from storage.audience import version_warnings
from storage.models import ModelVersion, TrainingJob
from storage.outcomes import ChannelFigures, Figures, Report

if TYPE_CHECKING:
    from serving.deploy import DeployResult
    from storage.audience import ShareChange
    from storage.erasure import ErasureReport

_JOB_ICON = {JobStatus.QUEUED: ":hourglass:", JobStatus.RUNNING: ":gear:", JobStatus.SUCCEEDED: ":white_check_mark:",
             JobStatus.FAILED: ":x:", JobStatus.CANCELLED: ":no_entry_sign:"}
_WHO = {EVERYONE: "everyone", TEAM: "agents, curators and admins", CURATORS: "curators and admins", ADMINS: "admins"}
STATS_CHARS = 3500  # well inside Slack's 4,000 characters for a message's text
_VERSION_ICON = {VersionStatus.AWAITING_APPROVAL: ":hourglass:", VersionStatus.DEPLOYED: ":rocket:",
                 VersionStatus.RETIRED: ":zzz:", VersionStatus.REJECTED: ":x:"}


def help_text() -> str:
    lines = ["*`/ft` commands*"]
    for spec in commands().values():
        lines.append(f"• `/ft {spec.syntax}` — {spec.summary} _({_WHO[spec.role]})_")
    return "\n".join(lines)


def usage(problem: str) -> str:
    return f"{problem}\n\n{help_text()}"


def refused(spec: Spec) -> str:
    return (f"Only {_WHO[spec.role]} can use `/ft {spec.name}`, so nothing changed. "
            "Ask one of them if it needs doing.")


def refused_mode() -> str:
    return "Only admins can change a channel's mode, so nothing changed. `/ft channel` shows it."


def refused_share() -> str:
    return "Only admins can mark a channel's knowledge shareable, so nothing changed."


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
    return _listing("Recent training jobs", [_job_line(job) for job in rows],
                    "No training jobs yet. A curator starts one with `/ft train`.")


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
    return _listing("Recent model versions", [_version_line(v) for v in rows],
                    "No model versions yet: a finished training job makes one.")


def _listing(title: str, lines: list[str], empty: str) -> str:
    """`/ft jobs` and `/ft versions`: a bold title over one line a row, or a sentence when there are none."""
    return f"*{title}*\n" + "\n".join(lines) if lines else empty


def _version_line(v: ModelVersion) -> str:
    parts = [f"{_VERSION_ICON.get(v.status, '')} *{escape(v.name)}*: {v.status.replace('_', ' ')}"]
    metric = key_metric(VersionMetrics.from_json(v.metrics))
    if metric:
        parts.append(metric)
    if v.below_deployed and v.status == VersionStatus.AWAITING_APPROVAL:
        parts.append(":warning: scores below the deployed version")
    parts += [f":warning: {escape(w)}" for w in version_warnings(v)]  # erased data, a mark taken back
    warning = needs_confirming(v)
    if warning:
        parts.append(f":warning: {escape(warning)}")
    preference = preference_note(VersionMetrics.from_json(v.metrics))
    if preference:
        parts.append(preference)
    return " · ".join(parts)


def preference_note(metrics: VersionMetrics) -> str:
    """Which adapter the gate sent forward, in a few words (the approval request shows both sides)."""
    stage = metrics.preference
    if stage is None:
        return ""
    if not stage.trained:
        return "preference stage did not run"
    return "SFT + preference kept" if stage.kept else "SFT alone kept (preference stage dropped)"


def key_metric(metrics: VersionMetrics) -> str:
    """The headline number the trainer stored: key-fact recall, else ROUGE-L."""
    for value, label in ((metrics.key_fact, "key fact"), (metrics.rougeL, "ROUGE-L")):
        if value is not None:
            return f"{label} {value:.0%}" if 0 <= value <= 1 else f"{label} {value:.3g}"
    return ""


def stats(report: Report) -> str:
    """`/ft stats`: the live outcome figures per channel, each version apart when several answered."""
    since = f"since {report.since:%d %b %Y %H:%M} UTC" if report.since else "since the first question"
    head = (f"*Live outcomes* {since} (the README defines each figure, “Live outcome metrics”; an auto answer "
            f"with no follow-up for {report.resolution_window_h:g} h counts as an assumed resolution)")
    if not report.channels:
        return (f"{head}\nNo questions in watched channels yet. An admin puts a channel in draft mode with "
                "`/ft channel mode draft #drafts-channel`, run in that channel.")
    parts = [head]
    if len(report.channels) > 1:
        parts.append("*All channels*\n" + _figures(report.total, detail=False))
    for shown, ch in enumerate(report.channels):
        part = _channel(ch)
        if len("\n\n".join([*parts, part])) > STATS_CHARS - 100:  # room for the line saying how many more
            more = len(report.channels) - shown
            parts.append(f"…and {more} more channel{'s' if more != 1 else ''}: name one, e.g. `/ft stats #channel`.")
            break
        parts.append(part)
    return "\n\n".join(parts)


def _channel(ch: ChannelFigures) -> str:
    named = [escape(v.version or "the base model") for v in ch.versions]
    title = f"*<#{ch.channel_id}>*" + (f" ({named[0]})" if len(named) == 1 else "")
    lines = [title, _figures(ch, detail=True)]
    if len(ch.versions) > 1:
        for v in ch.versions:
            lines.append(f"• *{escape(v.version or 'the base model')}*: {_figures(v, detail=False, oneline=True)}")
    return "\n".join(lines)


def _figures(f: Figures, *, detail: bool, oneline: bool = False) -> str:
    lines = []
    # (label, figures, their summary, who answers first, who answers after): drafts, then auto answers.
    for label, mode, summary, first, person in (("Drafts", f.draft, draft_line, "draft card", "a person's answer"),
                                                ("Auto", f.auto, auto_line, "the bot", "a person")):
        if not mode.questions:
            continue
        line = f"{label}: {summary(mode, detail=detail)}"
        if detail:
            line += (f"\n  first response: {first} {response(mode.bot_response)}; "
                     f"{person} {response(mode.human_response)}")
        lines.append(line)
    return ("; " if oneline else "\n").join(lines)


def no_such_channel(named: str) -> str:
    shown = escape(clip(named.replace("`", "'"), 40, one_line=True))
    return f"I know no channel `{shown}`. Name it as `#name`, or run `/ft stats` for every watched channel."


def deploy_result(result: "DeployResult", name: str | None = None) -> str:
    """`/ft deploy NAME` (name given) and `/ft rollback`: what happened, or why nothing did."""
    icon = ":rocket:" if result.ok else ":warning:"
    text = f"{icon} {escape(result.message)}"
    if result.ok and result.smoke is not None and result.smoke.checked:
        text += (f"\nSmoke test: {result.smoke.matched} of {result.smoke.checked} answers from the served adapter "
                 f"matched the evaluation's ({result.smoke.seconds:.1f} s).")
    if result.confirm and name:
        text += f"\nTo deploy it anyway: `/ft deploy {escape(name)} --yes`."
    if result.unloaded:
        text += f"\nUnloaded older versions from the model server: {escape(', '.join(result.unloaded))}."
    return text


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "default settings"


def share_changed(change: "ShareChange") -> str:
    """What a sharing mark changes (storage.audience): which pairs become usable everywhere, or stop being."""
    where = f"<#{change.channel_id}>"
    if not change.changed:
        return f"{where} is already {'shareable' if change.shareable else 'not shareable'}: nothing changed."
    if change.kind == ChannelKind.PUBLIC:
        return (f"{where} is public: its answers are used everywhere anyway. The mark is recorded "
                f"({'on' if change.shareable else 'off'}).")
    if change.shareable:
        return (f":unlock: {where}'s knowledge is now shareable: its {change.approved} approved pair(s) are used "
                "everywhere (in DMs and other channels too) and go into the next training snapshot. The threads "
                "themselves are not linked outside it.")
    text = (f":lock: {where}'s knowledge is no longer shareable: its {change.approved} approved pair(s) are used "
            "only in it again and leave the next training snapshot.")
    if change.flagged_versions:
        text += (f" Trained on them while it was shareable: *{escape(', '.join(change.flagged_versions))}*, now "
                 "flagged; `/ft train` to replace them.")
    return text


def forgotten(report: "ErasureReport") -> str:
    """`/ft forget`: what was erased and what still needs a retrain (counts only: never the person's text)."""
    parts = [f"{report.examples} example(s)", f"{report.snapshot_rows} snapshot copies",
             f"{report.index_rows} index row(s)", f"{report.feedback} question(s) to the bot",
             f"{report.corrections} correction(s)", f"{report.drafts + report.drafts_cleared} draft(s)",
             f"{report.preferences} preference record(s)", f"{report.preference_copies} copies of them in snapshots",
             f"{len(report.files)} file(s) in the data folder"]
    text = f":wastebasket: Erased (audit record {report.erasure_id}): " + ", ".join(parts) + "."
    if report.versions:
        text += (f"\nStill needs a retrain: *{escape(', '.join(report.versions))}* held their text and "
                 f"{'is' if len(report.versions) == 1 else 'are'} flagged \"contains erased data\""
                 + (f" (*{escape(report.deployed)}* is deployed)" if report.deployed else "")
                 + f". Queued retraining job *{report.job_id}*.")
    if report.files_left:
        text += (f"\n:warning: {len(report.files_left)} file(s) in the data folder still hold their data and could "
                 "not be rewritten safely: " + ", ".join(f"`{escape(f)}`" for f in report.files_left)
                 + ". Remove or edit them by hand.")
    return text
