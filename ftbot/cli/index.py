"""`ft index status`, `ft index rebuild`: the retrieval index of approved pairs."""

from __future__ import annotations

from typing import Callable

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ftbot import wiring
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json

index_app = typer.Typer(help="The retrieval index: embeddings of approved questions, for answers with context.",
                        no_args_is_help=True)


@index_app.command("status")
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The embedding model, its rows and their size, beside the number of approved examples."""
    from storage.embeddings import status as read_status

    with common.store(ctx).session() as s:
        data = read_status(s)
    if as_json:
        print_json(data)
        return
    table = Table(title="retrieval index")
    for column in ("model", "dim", "rows", "updated"):
        table.add_column(column)
    for m in data["models"]:
        table.add_row(m["model"], str(m["dim"]), str(m["rows"]),
                      m["updated_at"].strftime("%Y-%m-%d %H:%M") if m["updated_at"] else "")
    console.print(table)
    empty = "" if data["models"] else " (the index is empty: the next question asked, or `ft index rebuild`, fills it)"
    console.print(f"approved examples: {data['approved']}{empty}")


@index_app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Drop every stored embedding and embed all approved examples again."""
    from core.embedder import EmbedderError

    try:
        retriever = wiring.retrieval_index(common.store(ctx))
    except EmbedderError as exc:
        fail(str(exc))
    bar, progress = _progress()
    try:
        with bar:
            counts = retriever.rebuild(progress=progress)
    except KeyboardInterrupt:
        fail("interrupted; the rows embedded so far are kept and the next search embeds the rest", code=130)
    console.print(f"index rebuilt: {counts['embedded']} approved example(s) embedded with {retriever.embedder.name} "
                  f"({retriever.embedder.dim} dims), {counts['total']} row(s)")


def _progress() -> tuple[Progress, Callable[[int, int], None]]:
    """A bar that appears only when there is more than one batch to embed."""
    from serving.retrieval import EMBED_BATCH

    bar = Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True)
    task: list = []

    def update(done: int, total: int) -> None:
        if total <= EMBED_BATCH:
            return
        if not task:
            task.append(bar.add_task("embed", total=total))
        bar.update(task[0], completed=done)

    return bar, update
