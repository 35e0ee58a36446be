"""`ft forget-user`: erase a person's messages from everything ftbot stored (storage.erasure)."""

from __future__ import annotations

import re

import typer
from rich.table import Table

from core.text import clip
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json


def forget_user(ctx: typer.Context, user: str = typer.Argument(..., help="The person's Slack user id (U…)."),
                as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Erase a person's messages, as asker or answerer: examples, snapshot copies, feedback and the curators'
    queue, drafts, preference records and their snapshot copies, the retrieval index, and the data folder's files.
    Versions trained on their text are flagged and a retraining job is queued. For admins: it trusts whoever runs
    it."""
    from storage.erasure import NothingStored, compact, database_file, scrub_files
    from storage.erasure import forget_user as forget

    user = user.strip().strip("<>@").split("|", 1)[0]
    # Slack's user ids: U or W, then upper-case letters and digits (about 10 in all, so 20 is generous)
    if not re.fullmatch(r"[UW][A-Z0-9]{2,20}", user):
        fail(f"{clip(user, 40)!r} is not a Slack user id (U… or W…, then capital letters and digits)")
    s = common.settings(ctx)
    store = common.store(ctx)
    database = database_file(store)
    try:
        with store.session() as session:
            report, texts = forget(session, user, common.actor(), data_dir=s.data_dir, database=database)
    except NothingStored:
        fail(f"nothing of {user} is stored (no row and no file in the data folder names them); nothing erased")
    scrubbed = scrub_files(s.data_dir, texts, user, database)
    report.files, report.files_left = scrubbed.changed, scrubbed.left
    compact(store)  # deleted rows' bytes leave the database files too
    if as_json:
        print_json({**report.counts(), "files": report.files, "files_left": report.files_left,
                    "erasure_id": report.erasure_id})
        if report.files_left:
            raise typer.Exit(1)
        return
    table = Table(title=f"erased (audit record {report.erasure_id})", show_header=False)
    for label, n in (("examples they asked or answered", report.examples),
                     ("copies in dataset snapshots", report.snapshot_rows),
                     ("rows of the retrieval index", report.index_rows),
                     ("questions to the bot (and the curators' queue)", report.feedback),
                     ("their corrections", report.corrections), ("drafts of their questions", report.drafts),
                     ("drafts they sent (texts cleared)", report.drafts_cleared),
                     ("preference records", report.preferences),
                     ("copies of them in dataset snapshots", report.preference_copies),
                     ("others' prompts that held their text (cleared)", report.prompts_cleared),
                     ("other rows naming them", report.mentions),
                     ("files in the data folder", len(report.files))):
        table.add_row(label, str(n))
    console.print(table)
    if report.versions:
        console.print(f"still needs a retrain: {', '.join(report.versions)} "
                      f"{'was' if len(report.versions) == 1 else 'were'} trained on their text and "
                      f"{'is' if len(report.versions) == 1 else 'are'} flagged \"contains erased data\""
                      + (f"; {report.deployed} is deployed" if report.deployed else "") + ".", highlight=False)
        console.print(f"queued retraining job {report.job_id}; approve its version, then `ft deploy` it.",
                      highlight=False)
    else:
        console.print("no trained version held their text: nothing to retrain.")
    if report.files_left:
        for left in report.files_left:
            console.print(f"left in the data folder: {left}", highlight=False, markup=False)
        fail(f"{len(report.files_left)} file(s) in the data folder still hold their data and could not be rewritten "
             "safely: remove or edit them by hand")
