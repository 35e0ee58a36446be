"""`ft examples …` and `ft dataset …`: curating, exporting and snapshotting the store."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from core.states import ExampleSource, ExampleStatus
from core.text import clip
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json
from storage.jsonl import EXPORT_FORMATS, PREFERENCE

app = typer.Typer(help="List, approve, reject, export and import examples.", no_args_is_help=True)
dataset_app = typer.Typer(help="Immutable dataset snapshots.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", "-s", help="candidate, approved or rejected."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List examples, oldest first."""
    from storage.examples import list_examples, to_dict

    if status and status not in tuple(ExampleStatus):
        fail(f"unknown status {status!r} (choose {', '.join(ExampleStatus)})")
    with common.store(ctx).session() as session:
        rows = list_examples(session, status=status, limit=limit)
    if as_json:
        print_json([to_dict(ex) for ex in rows])
        return
    table = Table(title=f"{len(rows)} example(s)", show_lines=True)
    for column in ("id", "status", "question", "answer", "flags", "source"):
        table.add_column(column, overflow="fold")
    for ex in rows:
        question, answer = (clip(text, 160, one_line=True, trim=False) for text in (ex.question, ex.answer))
        table.add_row(str(ex.id), ex.status, question, answer,
                      ", ".join(f["code"] for f in ex.flags), ex.source.get("channel", ex.source_key))
    console.print(table)


def _decide(ctx: typer.Context, ids: list[int], status: str) -> None:
    from storage.examples import set_status

    ids, impossible = common.valid_ids(ids)
    with common.store(ctx).session() as session:
        changed, missing = set_status(session, ids, status, common.actor()) if ids else ([], [])
    missing = [*missing, *impossible]
    if changed:
        console.print(f"{status} {len(changed)}: {', '.join(map(str, changed))}")
    unchanged = [i for i in ids if i not in changed and i not in missing]
    if unchanged:
        console.print(f"already {status}: {', '.join(map(str, unchanged))}")
    if missing:
        fail(f"no example with id {', '.join(map(str, missing))}")


@app.command()
def approve(ctx: typer.Context, ids: list[int] = typer.Argument(..., help="Example ids.")) -> None:
    """Approve examples for training."""
    _decide(ctx, ids, ExampleStatus.APPROVED)


@app.command()
def reject(ctx: typer.Context, ids: list[int] = typer.Argument(..., help="Example ids.")) -> None:
    """Reject examples (kept, never trained on)."""
    _decide(ctx, ids, ExampleStatus.REJECTED)


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: str = typer.Option("openai", "--format", "-f", help=f"{', '.join(EXPORT_FORMATS[:-1])} or {PREFERENCE} "
                            "(the team's text preferred to the bot's: edits, drafts discarded as wrong then answered, "
                            "corrections; TRL's prompt/chosen/rejected)."),
    split: str = typer.Option("all", "--split", help="train, validation or all."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="openai format: a system message; "
                                                "preference format: the one a record without its prompt is asked "
                                                "with (default: the bot's)."),
) -> None:
    """Export the approved examples (or, with --format preference, the preference records) as JSONL."""
    from storage.examples import list_examples
    from storage.jsonl import to_record
    from storage.snapshots import side_of

    if fmt not in EXPORT_FORMATS:
        fail(f"unknown format {fmt!r} (choose {', '.join(EXPORT_FORMATS)})")
    if split not in ("train", "validation", "all"):
        fail(f"unknown split {split!r} (choose train, validation or all)")
    val_percent = common.settings(ctx).val_percent
    if fmt == PREFERENCE:
        _export_preferences(ctx, split, val_percent, output, system_prompt)
        return
    with common.store(ctx).session() as session:
        rows = [ex for ex in list_examples(session, status=ExampleStatus.APPROVED)
                if split == "all" or side_of(ex.source_key, val_percent) == split]
    target = _output(output)
    with target as fh:
        for ex in rows:
            fh.write(json.dumps(to_record(ex.question, ex.answer, fmt, system_prompt), ensure_ascii=False) + "\n")
    if output:
        console.print(f"wrote {len(rows)} example(s) to {output}")


def _output(path: Optional[Path]):
    """Where an export is written: stdout, or the file (a folder that is missing or a file that can't be written is
    one line and exit 1, before anything is read)."""
    if path is None:
        return nullcontext(sys.stdout)
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        fail(f"can't write {path}: {exc.strerror or exc}")


def _export_preferences(ctx: typer.Context, split: str, val_percent: int, output: Optional[Path],
                        system_prompt: Optional[str]) -> None:
    """Preference records of every kind (edits, drafts discarded as wrong then answered, corrections), oldest first.
    A record's side is its pair's (the team's text stored as an example), as in a snapshot, so a held-out pair's
    preference never lands in a training split. A record without a stored prompt (a correction of a plain answer)
    is asked as the bot asks: the system prompt, then the question."""
    from sqlmodel import col, select

    from core.contract import DEFAULT_SYSTEM_PROMPT
    from storage.jsonl import preference_record
    from storage.models import Preference
    from storage.preferences import prompt_for, usable
    from storage.snapshots import preference_side

    with common.store(ctx).session() as session:
        rows = list(session.exec(select(Preference).order_by(col(Preference.id))))
    records, skipped = [], 0
    for pref in rows:
        if split != "all" and preference_side(pref, val_percent) != split:
            continue
        if not usable(pref):
            skipped += 1  # nothing a preference trainer could use
            continue
        records.append(preference_record(prompt_for(pref, system_prompt or DEFAULT_SYSTEM_PROMPT), pref.chosen,
                                         pref.rejected))
    target = _output(output)
    with target as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    if output:
        console.print(f"wrote {len(records)} preference record(s) to {output}")
    if skipped:
        common.err_console.print(f"left out {skipped} preference record(s) without a prompt or a question, or whose "
                                 "chosen and rejected texts are empty or the same")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSONL in the openai or prompt-completion format."),
    approve_all: bool = typer.Option(False, "--approve", help="Store them approved (they were curated elsewhere)."),
) -> None:
    """Import examples from JSONL; bad lines are reported with their number, good lines are kept. An answer
    longer than FT_MAX_ANSWER_CHARS is stored flagged, for a curator: never approved by --approve."""
    from bot.slack.threads import TOO_LONG
    from storage.dedup import dedup_key
    from storage.examples import CREATED, DUPLICATE, NewExample, add_examples, flag
    from storage.jsonl import TooBig, read_records

    if not file.is_file():
        fail(f"{file}: no such file")
    s = common.settings(ctx)
    limit = s.max_answer_chars
    good: list[NewExample] = []
    bad: list[str] = []
    try:
        for lineno, pair, problem in read_records(file, s.import_max_file_mb):
            if pair is None:
                bad.append(f"{file}:{lineno}: {problem}")
                continue
            question, answer = pair
            # As the Slack path flags it (bot.slack.threads.extract): the store keeps flagged pairs as candidates.
            flags = [flag(TOO_LONG, f"the answer is {len(answer)} characters (limit {limit})")] \
                if len(answer) > limit else []
            status = ExampleStatus.APPROVED if approve_all and not flags else ExampleStatus.CANDIDATE
            good.append(NewExample(
                source_key=f"jsonl:{dedup_key(question, answer)}", question=question, answer=answer,
                status=status, flags=flags, source={"kind": ExampleSource.JSONL, "file": file.name, "line": lineno},
                labelled_by=common.actor(), approved_by=common.actor() if status == ExampleStatus.APPROVED else None,
            ))
    except OSError as exc:
        fail(f"{file}: cannot be read ({exc.strerror or exc})")
    except TooBig as exc:  # before anything is stored
        fail(f"{file}: {exc} (FT_IMPORT_MAX_FILE_MB)")
    with common.store(ctx).session() as session:
        outcomes = [(outcome, ex) for outcome, ex in add_examples(session, good)]
    created = [ex for outcome, ex in outcomes if outcome == CREATED]
    too_long = sum(1 for ex in created if ex is not None and any(f["code"] == TOO_LONG for f in ex.flags))
    console.print(f"imported {len(created)}, already stored {len(outcomes) - len(created)}"
                  f" (duplicates {[o for o, _ in outcomes].count(DUPLICATE)}), bad lines {len(bad)}"
                  + (f"; {too_long} flagged too long (over FT_MAX_ANSWER_CHARS={limit}), kept as candidates"
                     if too_long else ""), soft_wrap=True)
    for line in bad:
        common.error(line)
    if bad:
        raise typer.Exit(1)


@dataset_app.command("snapshot")
def snapshot(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Freeze the approved examples into an immutable, content-hashed snapshot."""
    from storage.snapshots import create_snapshot

    with common.store(ctx).session() as session:
        snap, created = create_snapshot(session, common.settings(ctx).val_percent)
    data = {"id": snap.id, "created": created, "content_hash": snap.content_hash, "examples": snap.n_examples,
            "train": snap.n_train, "validation": snap.n_validation}
    if as_json:
        print_json(data)
        return
    word = "created" if created else "unchanged since"
    console.print(f"snapshot {snap.id} {word}: {snap.n_examples} examples "
                  f"({snap.n_train} train, {snap.n_validation} validation), sha256 {snap.content_hash[:12]}")
