"""`ft model prepare`, `ft train`, `ft worker`, `ft jobs`, `ft versions`."""

from __future__ import annotations

import threading
import time
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from core.contract import RANK_CHOICES, Outcomes, Scores, VersionMetrics, forgetting_warning
from core.states import JobOutcome, JobStatus
from ftbot import wiring
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json
from storage.db import is_transient
from storage.models import TrainingJob

model_app = typer.Typer(help="Base models.", no_args_is_help=True)
jobs_app = typer.Typer(help="Training jobs: `ft jobs` lists them.", invoke_without_command=True)
versions_app = typer.Typer(help="Model versions.", no_args_is_help=True)


@model_app.command("prepare")
def prepare(ctx: typer.Context) -> None:
    """Put the default base model (SmolLM2-135M-Instruct) in FT_DATA_DIR/models; prints its path."""
    from trainer.base_model import prepare_base_model

    with console.status("preparing SmolLM2-135M-Instruct (converted once per user: about 30 s the first time)…"):
        try:
            path = prepare_base_model(common.settings(ctx).models_dir)
        except (FileNotFoundError, RuntimeError) as exc:
            fail(str(exc))
    console.print(str(path.resolve()), highlight=False, soft_wrap=True)


@model_app.callback()
def _model() -> None:
    """Base models."""


def train(
    ctx: typer.Context,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the training data (1–50)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate."),
    rank: Optional[int] = typer.Option(None, "--rank", help=f"LoRA rank: {RANK_CHOICES}."),
    qlora: bool = typer.Option(False, "--qlora", help="4-bit NF4 QLoRA with bitsandbytes (CPU or CUDA)."),
    inline: bool = typer.Option(False, "--inline", help="Run the job here, with a progress bar."),
) -> None:
    """Queue a training job (a worker picks it up), or run it here with --inline."""
    from storage.jobs import check_params, enqueue

    try:
        params = check_params({"epochs": epochs, "lr": lr, "rank": rank, "qlora": qlora or None})
    except ValueError as exc:
        fail(str(exc))
    with common.store(ctx).session() as s:
        job = enqueue(s, params, common.actor())
    if not inline:
        console.print(f"queued job {job.id}; a worker (`ft worker`) picks it up. Watch it: ft jobs watch {job.id}")
        return
    import signal

    from trainer.worker import Worker

    worker = Worker(common.store(ctx), wiring.worker_config(common.settings(ctx)))
    # The job runs here, as `ft worker` runs each job; the progress bar only reads the job's row, beside it.
    done, seen = threading.Event(), []
    bar = threading.Thread(target=lambda: seen.append(_watch(ctx, job.id, until=done.is_set)), daemon=True)
    bar.start()
    # Ctrl-C: the job stops at its next step, keeping a checkpoint, and goes back to the queue.
    interrupted = signal.signal(signal.SIGINT, lambda *_: worker.stopping.set())
    try:
        status = worker.run_one(job.id)  # a failure is a failed job with a one-line reason (worker.last_error)
    finally:
        signal.signal(signal.SIGINT, interrupted)
        done.set()
        bar.join()
    if worker.stopping.is_set():
        fail(f"interrupted; job {job.id} is back in the queue and resumes from its last checkpoint", code=130)
    final = seen[0] if seen else None
    if status is None:  # a worker claimed it between queueing and here
        fail(f"job {job.id} was claimed by a worker; follow it with: ft jobs watch {job.id}")
    if status == JobStatus.SUCCEEDED and final is not None and final.status == JobStatus.SUCCEEDED:
        _report(ctx, final)
    elif status == JobStatus.SUCCEEDED:
        console.print(f"job {job.id} succeeded")
    elif status == JobOutcome.LOST:
        fail(f"job {job.id} stopped: {worker.last_error}")
    else:  # what the job ended as here, whether or not the database took the news yet
        fail(f"job {job.id} {status or 'failed'}" + (f": {worker.last_error}" if worker.last_error else ""))


@jobs_app.callback()
def jobs(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON."),
         limit: int = typer.Option(20, "--limit", "-n", min=1)) -> None:
    """List recent training jobs."""
    if ctx.invoked_subcommand:
        return
    from storage.jobs import recent

    with common.store(ctx).session() as s:
        rows = recent(s, limit)
    if as_json:
        print_json([_job_dict(j) for j in rows])
        return
    table = Table(title="training jobs")
    for column in ("id", "status", "by", "params", "progress", "version", "created"):
        table.add_column(column)
    for j in rows:
        table.add_row(str(j.id), j.status, j.requested_by or "", _params(j.params), _progress_line(j),
                      str(j.version_id or ""), j.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@jobs_app.command("watch")
def watch(ctx: typer.Context, job_id: int = typer.Argument(..., help="The job's id.")) -> None:
    """Follow a job's progress until it ends."""
    _report(ctx, _watch(ctx, job_id))


@versions_app.command("list")
def versions_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON."),
                  limit: int = typer.Option(20, "--limit", "-n", min=1)) -> None:
    """List model versions, newest first; a version that asks to be confirmed before a deploy says why below."""
    from serving.deploy import needs_confirming
    from storage.versions import recent

    with common.store(ctx).session() as s:
        rows = recent(s, limit)
    if as_json:
        print_json([{"name": v.name, "status": v.status, "sent": _sent(v), "metrics": v.metrics,
                     "adapter_path": v.adapter_path, "base_model": v.base_model, "job_id": v.job_id,
                     "below_deployed": v.below_deployed, "flags": v.flags,
                     "forgetting_warning": forgetting_warning(VersionMetrics.from_json(v.metrics)),
                     "created_at": v.created_at.isoformat()} for v in rows])
        return
    table = Table(title="model versions (what the bot would send, on held-out questions: base → new)")
    for column in ("name", "status", "right", "wrong", "don't know", "off-store refused", "key fact alone", "probe"):
        table.add_column(column, overflow="fold")
    warnings = []
    for v in rows:
        metrics = VersionMetrics.from_json(v.metrics)
        ev = metrics.eval
        base, new = ev.base or Scores(), ev.new or Scores()
        b, n = base.sent or Outcomes(), new.sent or Outcomes()
        warning = needs_confirming(v)  # the deployment controller's rule
        if warning:
            warnings.append(f"{v.name}: {warning}; `ft deploy {v.name}` asks to confirm")
        table.add_row(v.name, v.status + (" (below deployed)" if v.below_deployed else "") + _flags(v)
                      + (" (warning below)" if warning else "") + _preference(metrics),
                      _counts(b.right, n.right, n.n), _counts(b.wrong, n.wrong, n.n),
                      _counts(b.dont_know, n.dont_know, n.n),
                      _counts(b.offstore_refused, n.offstore_refused, n.n_offstore), _pair(base.key_fact, new.key_fact),
                      _pair(base.probe, new.probe))
    console.print(table)
    for line in warnings:  # whole, below the table: a folded cell would cut the sentence
        console.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def _preference(metrics: VersionMetrics) -> str:
    """Which adapter the preference stage's gate sent forward (older versions: nothing to say)."""
    stage = metrics.preference
    if stage is None:
        return ""
    if not stage.trained:
        return " (preference stage did not run)"
    return " (SFT + preference)" if stage.kept else " (SFT alone: preference dropped)"


def _flags(v) -> str:
    """What an admin must know before deploying it: "contains erased data",
    "trained on a channel no longer shareable"."""
    from storage.audience import version_warnings

    return "".join(f" ({w})" for w in version_warnings(v))


def _sent(v) -> dict:
    """Right / wrong / don't know of what the bot would send, and off-store refusals, per model evaluated."""
    ev = VersionMetrics.from_json(v.metrics).eval
    return {name: scores.sent.to_json() if scores is not None and scores.sent is not None else None
            for name, scores in (("base", ev.base), ("deployed", ev.deployed), ("new", ev.new))}


def _counts(before: int, after: int, n: int) -> str:
    return f"{before} → {after} of {n}" if n else "–"


def _watch(ctx: typer.Context, job_id: int, until=None) -> TrainingJob | None:
    if common.valid_ids([job_id])[1]:
        fail(f"no job {job_id}")
    store = common.store(ctx)
    columns = (TextColumn("job {task.fields[job]} {task.fields[status]}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} steps"), TextColumn("loss {task.fields[loss]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("train", total=None, job=job_id, status="", loss="–")
        while True:
            done = bool(until and until())  # before the read: the row read after it is the final one
            try:
                with store.session() as s:
                    job = s.get(TrainingJob, job_id)
            except Exception as exc:  # a busy database: look again in a second
                if not is_transient(exc):
                    raise
                if done:
                    return None  # the caller knows the outcome; the database may learn it later
                time.sleep(1.0)
                continue
            if job is None:
                fail(f"no job {job_id}")
            p = job.progress or {}
            bar.update(task, total=p.get("total"), completed=p.get("step", 0), status=job.status,
                       loss=f"{p['loss']:.3f}" if isinstance(p.get("loss"), (int, float)) else "–")
            if done or (until is None and job.status not in (JobStatus.QUEUED, JobStatus.RUNNING)):
                return job
            time.sleep(1.0)


def _report(ctx: typer.Context, job: TrainingJob) -> None:
    from storage.models import ModelVersion

    if job.status == JobStatus.SUCCEEDED and job.version_id:
        with common.store(ctx).session() as s:
            version = s.get(ModelVersion, job.version_id)
        console.print(f"job {job.id} succeeded: new version [bold]{version.name}[/] (awaiting approval)")
        warning = forgetting_warning(VersionMetrics.from_json(version.metrics))
        if warning:
            console.print(f"[bold yellow]warning:[/] {escape(warning)}; `ft deploy {version.name}` asks to confirm",
                          highlight=False, soft_wrap=True)
        print(version.name)
    elif job.status == JobStatus.FAILED:
        fail(f"job {job.id} failed: {(job.error or '').strip().splitlines()[0] if job.error else 'unknown error'}")
    else:
        console.print(f"job {job.id}: {job.status}")


def _job_dict(j: TrainingJob) -> dict:
    return {"id": j.id, "status": j.status, "params": j.params, "progress": j.progress, "attempts": j.attempts,
            "requested_by": j.requested_by, "version_id": j.version_id, "error": j.error,
            "created_at": j.created_at.isoformat(), "finished_at": j.finished_at.isoformat() if j.finished_at else None}


def _params(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _progress_line(j: TrainingJob) -> str:
    p = j.progress or {}
    if not p.get("total"):
        return ""
    line = f"{p.get('step', 0)}/{p['total']}"
    if isinstance(p.get("loss"), (int, float)):
        line += f" loss {p['loss']:.3f}"
    return line


def _pair(a, b) -> str:
    def fmt(x: object) -> str:
        return f"{x:.0%}" if isinstance(x, (int, float)) else "–"
    return f"{fmt(a)} → {fmt(b)}"
