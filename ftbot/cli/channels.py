"""`ft channels list|set`: each channel's mode (off, mention, draft, auto), its drafts channel and its record."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ftbot import wiring
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json

channels_app = typer.Typer(help="Channel modes: off, mention (default), draft, auto.", no_args_is_help=True)

_REFUSED = {
    "needs_drafts_channel": "draft and auto modes need a drafts channel: add --drafts C… "
                            "(a private channel of the team)",
    "same_channel": "the drafts channel must be another channel: customers would see the team's drafts",
}


def _row(ch, record) -> dict:  # storage.models.SlackChannel, storage.outcomes.Record
    return {"id": ch.id, "name": ch.name, "kind": ch.kind, "mode": ch.mode, "drafts_channel": ch.drafts_channel,
            "mode_set_by": ch.mode_set_by, "mode_set_at": ch.mode_set_at,
            "record": {"sent_unchanged": record.sent_unchanged, "judged": record.acted_on}}


@channels_app.command("list")
def list_channels(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every channel with a mode set; any other channel answers mentions."""
    from storage import channels, outcomes

    ladder = wiring.ladder(common.settings(ctx))
    with common.store(ctx).session() as s:
        rows = [_row(ch, outcomes.record(s, ch.id, ladder.last_n)) for ch in channels.watched(s)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No channel has a mode set: every channel answers mentions. `ft channels set C… draft "
                      "--drafts C…` starts draft mode.")
        return
    table = Table(title="channels")
    for column in ("channel", "mode", "drafts to", f"unchanged (last {ladder.last_n})", "set by"):
        table.add_column(column)
    for r in rows:
        record = r["record"]
        table.add_row(f"{r['id']} {r['name']}".strip(), r["mode"], r["drafts_channel"] or "—",
                      f"{record['sent_unchanged']}/{record['judged']}", r["mode_set_by"] or "—")
    console.print(table)


@channels_app.command("set")
def set_channel(
    ctx: typer.Context,
    channel: str = typer.Argument(..., help="The channel's id (C… or G…), as Slack shows it in the channel details."),
    mode: str = typer.Argument(..., help="off, mention, draft or auto."),
    drafts: Optional[str] = typer.Option(None, "--drafts", help="Where draft cards and hand-offs go (a channel id)."),
    confirm: bool = typer.Option(False, "--confirm", help="Switch to auto even below the record it asks for."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Set a channel's mode (recorded with who did it). Auto mode is earned by the channel's record of drafts sent
    unchanged; below it, --confirm switches anyway and the record is kept with the change."""
    from core.states import ChannelMode, ModeProblem
    from storage import channels

    mode = mode.lower()
    if mode not in tuple(ChannelMode):
        fail(f"unknown mode {mode!r}: use off, mention, draft or auto", 2)
    for value in (channel, drafts):
        if value is not None and not (value[:1] in "CGD" and value[1:].isalnum() and 3 <= len(value) <= 32):
            fail(f"{value!r} is not a Slack channel id (C…, G…)", 2)
    ladder = wiring.ladder(common.settings(ctx))
    with common.store(ctx).session() as s:
        change = channels.change_mode(s, channel, mode, by=common.actor(), drafts_channel=drafts, confirm=confirm,
                                      ladder=ladder)
    if change.problem == ModeProblem.NOT_EARNED:
        unchanged, judged = change.record
        fail(f"{channel} has not earned auto mode: {unchanged} of the last {judged} drafts judged were sent unchanged "
             f"(it asks for {round(ladder.min_unchanged * 100)}% of at least {ladder.min_drafts}); --confirm switches "
             "anyway", 1)
    if change.problem:
        fail(_REFUSED[change.problem], 2)
    if as_json:
        print_json({"channel": channel, "mode": mode, "drafts_channel": change.drafts_channel, "note": change.note})
        return
    console.print(f"{channel}: mode [bold]{mode}[/]" + (f", drafts to {change.drafts_channel}" if change.drafts_channel
                                                         else "") + (f" ({change.note})" if change.note else ""))
