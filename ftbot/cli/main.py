"""The `ft` command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from ftbot.cli import channels, common, deploy, doctor, examples, gaps, index, privacy, serve, stats, training
from ftbot.cli.common import console, fail, print_json
from ftbot.settings import Settings

app = typer.Typer(
    help="ftbot: turn your support team's approved Slack answers into a fine-tuned model.",
    no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
)
app.add_typer(examples.app, name="examples")
app.add_typer(examples.dataset_app, name="dataset")
app.add_typer(training.model_app, name="model")
app.add_typer(training.jobs_app, name="jobs")
app.add_typer(training.versions_app, name="versions")
app.add_typer(index.index_app, name="index")
app.add_typer(channels.channels_app, name="channels")
app.command("train")(training.train)
app.command("serve")(serve.serve)
app.command("deploy")(deploy.deploy)
app.command("rollback")(deploy.rollback)
app.command("reject")(deploy.reject)
app.command("ask")(deploy.ask)
app.command("doctor")(doctor.doctor)
app.command("stats")(stats.stats)
app.command("gaps")(gaps.gaps)
app.command("forget-user")(privacy.forget_user)


@app.callback()
def _root(ctx: typer.Context) -> None:
    try:
        ctx.obj = {"settings": Settings()}
    except ValidationError as exc:
        if ctx.invoked_subcommand == "doctor":  # it reports a bad setting as one of its checks
            ctx.obj = {}
            return
        fail(f"bad setting: {'; '.join(doctor.setting_problem(e) for e in exc.errors())}")


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the data folder and the database, and apply migrations."""
    s = common.settings(ctx)
    try:
        s.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"FT_DATA_DIR={s.data_dir}: cannot be created ({exc.strerror or exc})")
    common.store(ctx)
    console.print(f"data dir: [bold]{s.data_dir.resolve()}[/]\n"
                  f"database: [bold]{common.safe_url(s.db_url)}[/] (schema up to date)")


@app.command()
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts of examples, snapshots, jobs, and the deployed version."""
    from storage.stats import status as read_status

    with common.store(ctx).session() as session:
        data = read_status(session)
    if as_json:
        print_json(data)
        return
    table = Table(title="ftbot status", show_header=False)
    table.add_row("examples", "  ".join(f"{k} {v}" for k, v in data["examples"].items()))
    table.add_row("snapshots", str(data["snapshots"]))
    table.add_row("jobs", "  ".join(f"{k} {v}" for k, v in data["jobs"].items()))
    table.add_row("deployed", data["deployed"] or "— (the base model answers)")
    console.print(table)


@app.command("import-slack")
def import_slack(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A Slack workspace export: the folder, or the .zip Slack gives you."),
    channel: Optional[list[str]] = typer.Option(None, "--channel", "-c", help="Only this channel (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import every thread whose reply carries the label emoji (idempotent: re-running changes nothing)."""
    from bot.slack.export import ExportError, OverLimit
    from bot.slack.importer import import_slack_export
    from bot.slack.threads import Rules
    from ftbot import wiring

    s = common.settings(ctx)
    rules = Rules(curators=frozenset(s.curators | s.admins), max_answer_chars=s.max_answer_chars)
    try:
        with console.status("importing…") as spinner:
            summary = import_slack_export(
                common.store(ctx), path, label_emoji=s.label_emoji, rules=rules, channels=channel,
                progress=lambda msg: spinner.update(f"importing {msg}"), limits=wiring.import_limits(s),
            )
    except OverLimit as exc:
        fail(f"{exc} ({'FT_IMPORT_MAX_FILE_MB' if exc.setting == 'file' else 'FT_IMPORT_MAX_TOTAL_MB'})")
    except ExportError as exc:
        fail(str(exc))
    if as_json:
        print_json(summary.as_dict())
        return
    table = Table(title=f"Imported {path} ({', '.join('#' + c for c in summary.channels)})", show_header=False)
    for label, value in (("messages", summary.messages), ("threads seen", summary.threads_seen),
                         (f":{s.label_emoji}: labels", summary.labels), ("imported", summary.imported),
                         ("  approved", summary.approved), ("  candidates", summary.candidates),
                         ("upgraded to approved", summary.upgraded)):
        table.add_row(label, str(value))
    for reason, n in sorted(summary.flagged.items()):
        table.add_row(f"flagged: {reason}", str(n))
    for reason, n in sorted(summary.skipped.items()):
        table.add_row(f"skipped: {reason}", str(n))
    console.print(table)


@app.command()
def bot(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", "-p", envvar="PORT",
                                       help="HTTP port (default $PORT, else 3000)."),
) -> None:
    """Run the Slack bot: HTTP on POST /slack/events (or Socket Mode when SLACK_APP_TOKEN is set)."""
    from ftbot import logs, wiring

    s = common.settings(ctx)
    missing = [name for name, value in (("SLACK_BOT_TOKEN", s.slack_bot_token),
                                        ("SLACK_SIGNING_SECRET", s.slack_signing_secret or s.slack_app_token))
               if not value]
    if missing:
        fail(f"{' and '.join(missing)} not set: create the Slack app from manifest.yml and copy its credentials")
    logs.setup(s.log_level, s.log_json, secrets=[s.slack_bot_token, s.slack_signing_secret, s.slack_app_token,
                                                 s.model_server_key or ""])
    from bot.server import run

    bolt, deps, metrics = wiring.bot(s)
    run(bolt, deps, metrics, port=port or 3000, app_token=s.slack_app_token,
        on_start=lambda started: wiring.scheduler(s, started.store))


@app.command()
def worker(ctx: typer.Context, once: bool = typer.Option(False, "--once", help="Exit when the queue is empty."),
           metrics_port: Optional[int] = typer.Option(None, "--metrics-port", min=1, max=65535,
                                                      help="Serve Prometheus metrics on GET /metrics here.")) -> None:
    """Run queued training jobs (each in a child process), forever or --once."""
    import signal

    from ftbot import logs, wiring
    from trainer.worker import Worker

    s = common.settings(ctx)
    logs.setup(s.log_level, s.log_json)
    if metrics_port:
        from trainer import metrics

        try:
            metrics.serve(metrics_port)
        except OSError as exc:
            fail(f"--metrics-port {metrics_port}: {exc.strerror or exc}")
    w = Worker(common.store(ctx), wiring.worker_config(s))
    # SIGTERM (a deploy, Ctrl-C): the running job stops at its next step and goes back to the queue.
    signal.signal(signal.SIGTERM, lambda *_: w.stopping.set())
    try:
        ran = w.run(once=once)
    except KeyboardInterrupt:
        w.stopping.set()
        ran = 0
    console.print(f"worker {w.name} stopped after {ran} job(s)")


def main() -> None:
    import sys

    from sqlalchemy.exc import OperationalError

    try:
        app()
    except OperationalError as exc:
        common.error(f"database unavailable: {str(exc.orig).strip().splitlines()[0]}")
        sys.exit(1)
