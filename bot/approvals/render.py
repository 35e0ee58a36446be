"""A training job's one message in the approvals channel: progress while it runs, then the approval
request (loss curve, evaluation table, sample answers, Approve / Reject), then who decided and when."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.approvals.live import live_blocks
from bot.slack.blocks import context, escape, section
from core.contract import JobProgress, Sample, VersionMetrics
from core.states import JobPhase, JobStatus, VersionStatus
from core.text import clip
from storage.models import ModelVersion, TrainingJob

if TYPE_CHECKING:
    from serving.deploy import DeployResult

APPROVE, REJECT = "version_approve", "version_reject"
BAR_CELLS = 20


def bar(step: int, total: int) -> str:
    """`▓▓▓▓▓░░░░░░░░░░░░░░░  27%`"""
    share = min(1.0, step / total) if total else 0.0
    filled = round(share * BAR_CELLS)
    return "▓" * filled + "░" * (BAR_CELLS - filled) + f" {share:4.0%}"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _by(job: TrainingJob) -> str:
    who = job.requested_by or ""
    if who == "erasure":
        return "an erasure"
    return "the schedule" if who == "scheduler" else (f"<@{who}>" if who.startswith(("U", "W")) else who or "someone")


def progress_message(job: TrainingJob) -> dict[str, Any]:
    """While the job is queued or running: a text progress bar, loss, eval loss, speed, ETA."""
    p = JobProgress.from_json(job.progress)
    title = f":hourglass_flowing_sand: Training job {job.id} ({_by(job)}): *{job.status}*"
    if job.status == JobStatus.QUEUED:
        return {"text": f"Training job {job.id} is queued", "blocks": [section(title + " — waiting for a worker")]}
    preference = p.phase == JobPhase.PREFERENCE  # after SFT: the team's corrections (trainer.preference)
    if p.phase == JobPhase.EVALUATING:
        line = "training done; evaluating against the base model and the deployed version…"
    elif preference and p.total and (p.step or 0) >= p.total:
        line = "preference stage trained; evaluating it against SFT alone…"
    elif p.total:
        line = f"`{bar(p.step or 0, p.total)}`  step {p.step or 0}/{p.total}"
        line += " · preference stage (the team's corrections)" if preference else ""
    else:
        line = "preparing the data and the model…"
    facts = []
    if p.loss is not None:
        facts.append(f"loss {p.loss:.3f}")
    if p.eval_loss is not None:
        facts.append(f"eval loss {p.eval_loss:.3f}")
    if p.tokens_per_s:
        facts.append(f"{p.tokens_per_s:.0f} tokens/s")
    if p.eta_s is not None and p.phase != JobPhase.EVALUATING:
        facts.append(f"about {_minutes(p.eta_s)} left")
    blocks = [section(title), section(line)]
    if facts:
        blocks.append(context(" · ".join(facts)))
    return {"text": f"Training job {job.id}: {job.status} {line}", "blocks": blocks}


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "–"


def _num(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "–"


def _share(count: int, n: int) -> str:
    return f"{count}/{n}" if n else "–"


def eval_table(metrics: VersionMetrics) -> str:
    """Base / deployed / new, as monospace tables: first what the bot would send (asked with retrieval, checked
    against the retrieved answers), then the model alone."""
    ev = metrics.eval
    rows = [("base model", ev.base), (f"deployed {metrics.deployed_name or ''}".strip(), ev.deployed), ("new", ev.new)]
    rows = [(label, m) for label, m in rows if m is not None]
    parts = []
    if any(m.sent is not None for _, m in rows):
        dont = "don't know"
        lines = [f"{'what the bot sends':22}{'right':>7}{'wrong':>7}{dont:>11}{'off-store refused':>19}"]
        for label, m in rows:
            o = m.sent
            if o is not None:
                lines.append(f"{clip(label, 21):22}{_share(o.right, o.n):>7}{_share(o.wrong, o.n):>7}"
                             f"{_share(o.dont_know, o.n):>11}{_share(o.offstore_refused, o.n_offstore):>19}")
        parts.append("```" + "\n".join(lines) + "```")
    lines = [f"{'the model alone':22}{'key fact':>9}{'ROUGE-L':>9}{'probe':>7}"]
    for label, m in rows:
        lines.append(f"{clip(label, 21):22}{_pct(m.key_fact):>9}{_num(m.rougeL):>9}{_pct(m.probe):>7}")
    parts.append("```" + "\n".join(lines) + "```")
    n = ev.n_validation if ev.new is not None else None
    note = (f"{n} held-out question(s). Right = the answer the bot would send states the reference's numbers, codes "
            "or names; the bot sends an answer only when a retrieved approved answer states its facts, else it "
            "says it does not know; off-store = product questions no approved answer covers; probe = general "
            "questions (forgetting)") if n is not None else ""
    return "\n".join(parts) + (f"\n_{note}_" if note else "")


def _sample_block(sample: Sample) -> dict[str, Any]:
    parts = [f"*Q:* {escape(clip(sample.question, 200, one_line=True))}",
             f"*reference:* {escape(clip(sample.reference, 200, one_line=True))}"]
    if sample.sent is not None:  # what a customer would get
        parts.append(f"*the bot would send:* {escape(clip(sample.sent, 200, one_line=True))}")
        if sample.new_with_retrieval is not None and sample.sent != sample.new_with_retrieval:
            parts.append("_(not sent, no retrieved answer backs it: "
                         f"{escape(clip(sample.new_with_retrieval, 160, one_line=True))})_")
    else:
        parts.append(f"*new:* {escape(clip(sample.new, 200, one_line=True))}")
    return section("\n".join(parts))


def approval_request(job: TrainingJob, version: ModelVersion, *, plot_file_id: str | None = None,
                     decided: str | None = None) -> dict[str, Any]:
    """The finished job: what an admin needs to decide, and the buttons (or the decision, once made)."""
    m = VersionMetrics.from_json(version.metrics)
    head = (f":white_check_mark: Training job {job.id} ({_by(job)}) produced *{escape(version.name)}*: "
            f"{m.train.steps} steps, {m.train.epochs_done} epochs, {m.train.n_train} training conversations")
    blocks: list[dict[str, Any]] = [section(head)]
    if job.reason:  # a job nobody asked for says why it exists
        blocks.append(section(f":information_source: *Why this job:* {escape(job.reason)}"))
    for f in version.flags:  # trained on erased data, or on a channel no longer shareable (storage.audience)
        blocks.append(section(f":warning: {escape(f.get('reason', f.get('code', '')))}"))
    if version.below_deployed:
        blocks.append(section(":warning: *It scores below the deployed version.* Look before you approve."))
    blocks.append(section(eval_table(m)))
    blocks += live_blocks(m.live)  # the newest real questions, beside the held-out figures (trainer.live)
    if plot_file_id:
        blocks.append({"type": "image", "slack_file": {"id": plot_file_id}, "alt_text": "train and eval loss per step",
                       "title": {"type": "plain_text", "text": "loss per step"}})
    elif m.loss_plot:
        blocks.append(context(f"loss curve: `{escape(m.loss_plot)}` (not readable from the bot)"))
    samples = m.samples[:3]
    if samples:
        blocks.append(context("What the bot would send for some held-out questions:"))
        blocks += [_sample_block(s) for s in samples]
    long = m.long_examples
    if long:
        blocks.append(context(f"{len(long)} example(s) were longer than the maximum length and left out."))
    if decided:
        blocks.append(context(decided))
    elif version.status == VersionStatus.AWAITING_APPROVAL:
        blocks.append({"type": "actions", "block_id": f"decide:{version.name}", "elements": [
            {"type": "button", "action_id": APPROVE, "value": version.name, "style": "primary",
             "text": {"type": "plain_text", "text": "Approve and deploy"}},
            {"type": "button", "action_id": REJECT, "value": version.name, "style": "danger",
             "text": {"type": "plain_text", "text": "Reject"}}]})
        blocks.append({**context("Admins only. Approving loads the adapter, runs a smoke test, then switches the "
                                 "bot to it; the deployed version stays loaded for a rollback."),
                       "block_id": "decide-note"})
    else:
        blocks.append(context(f"{escape(version.name)} is {version.status.replace('_', ' ')}."))
    return {"text": f"Training job {job.id} produced {version.name}: approve or reject", "blocks": blocks}


def job_ended(job: TrainingJob) -> dict[str, Any]:
    """A job that ended without a version."""
    if job.status == JobStatus.CANCELLED:
        text = f":no_entry_sign: Training job {job.id} ({_by(job)}) was cancelled."
    else:
        error = (job.error or "unknown error").strip().splitlines()
        text = f":x: Training job {job.id} ({_by(job)}) failed: {escape(clip(error[-1] if error else '', 300))}"
    return {"text": text, "blocks": [section(text)]}


def decision_line(action: str, user: str, when: datetime, result: "DeployResult") -> str:
    stamp = when.strftime("%Y-%m-%d %H:%M UTC")
    if action == APPROVE:
        if result.ok:
            smoke = (f" Smoke test: {result.smoke.matched} of {result.smoke.checked} answers from the server matched "
                     f"the evaluation's (load {result.load_s:.1f} s, smoke test {result.smoke.seconds:.1f} s)."
                     if result.smoke is not None and result.smoke.checked else "")
            return f":rocket: Approved by <@{user}> on {stamp}: {escape(result.message)}{smoke}"
        return f":warning: <@{user}> approved on {stamp}, but the deploy failed: {escape(result.message)}"
    if result.ok:
        return f":no_entry_sign: Rejected by <@{user}> on {stamp}."
    return f":warning: <@{user}> tried to reject on {stamp}: {escape(result.message)}"


def deploying(user: str) -> str:
    return f":hourglass_flowing_sand: <@{user}> approved; loading the adapter and running the smoke test…"


def only_admins(action_id: str) -> str:
    verb = "approve" if action_id == APPROVE else "reject"
    return f"Only admins can {verb} a model version. Ask an admin (FT_ADMINS)."


def decided_blocks(blocks: list[dict[str, Any]], line: str) -> list[dict[str, Any]]:
    """The approval request as it was, its buttons replaced by one line saying what happened."""
    kept = [b for b in blocks if b.get("type") != "actions" and not str(b.get("block_id", "")).startswith("decide")]
    return kept + [{**context(line), "block_id": "decided"}]


def has_image(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "image" for b in message["blocks"])


def without_image(message: dict[str, Any]) -> dict[str, Any]:
    """The approval request without its loss curve (Slack may refuse an image still processing)."""
    return {**message, "blocks": [b for b in message["blocks"] if b.get("type") != "image"]}
