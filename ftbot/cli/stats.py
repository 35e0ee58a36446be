"""`ft stats`: what became of the bot's drafts and answers in watched channels (storage.outcomes)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json


def stats(
    ctx: typer.Context,
    channel: Optional[str] = typer.Option(None, "--channel", "-c", help="One channel: #name, name or id."),
    since: Optional[str] = typer.Option(None, "--since", help="Questions asked since: 7d, 24h, 30m, or a date "
                                                              "(2026-11-01). Default: all."),
    version: Optional[str] = typer.Option(None, "--version", help="Only what this version answered ('base': "
                                                                  "the base model)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Live outcome metrics per channel and per version: drafts sent, edited, discarded…; auto answers, hand-offs,
    ratings and resolutions; time to first response. The README defines each figure."""
    from storage.outcomes import channel_id, outcomes, parse_since

    try:
        start = parse_since(since) if since is not None else None
    except ValueError as exc:
        fail(f"--since {exc}", code=2)
    s = common.settings(ctx)
    with common.store(ctx).session() as session:
        found = channel_id(session, channel) if channel is not None else None
        if channel is not None and found is None:
            fail(f"--channel: no channel {channel!r} is known (ft stats without --channel lists them)", code=2)
        report = outcomes(session, channel=found, since=start, version=version,
                          resolution_window_h=s.resolution_window_h)
    if as_json:
        print_json(report.to_json())
        return
    if not report.channels:
        console.print("no questions in watched channels yet" + (f" since {start:%Y-%m-%d %H:%M} UTC" if start else ""))
        return
    for ch in report.channels:
        console.print(_channel_table(ch, start, report.resolution_window_h))


def _channel_table(ch, start, resolution_window_h: float) -> Table:
    """One channel's figures: a column for the channel, and one per version when several answered there."""
    title = f"#{ch.name or ch.channel_id}" + (f" ({ch.channel_id})" if ch.name else "")
    table = Table(title=title + (f", since {start:%Y-%m-%d %H:%M} UTC" if start else ""))
    table.add_column("figure")
    # One version: its column is the channel's; several: the channel's, then each version's.
    columns = [ch, *ch.versions] if len(ch.versions) > 1 else [ch]
    names = ["all versions", *(v.version for v in ch.versions)] if len(ch.versions) > 1 else \
        [ch.versions[0].version]
    for name in names:
        table.add_column(name or "base model", justify="right")
    rows = (_draft_rows(ch, [c.draft for c in columns]) if ch.draft.questions else []) + \
        (_auto_rows([c.auto for c in columns], resolution_window_h) if ch.auto.questions else [])
    for label, values in rows:
        table.add_row(label, *map(str, values))
    return table


def _draft_rows(ch, d: list) -> list[tuple[str, list]]:
    from bot.home.render import response, share

    return [
        ("draft: questions", [f.questions for f in d]),
        ("  sent unchanged", [f"{f.sent} ({share(f.sent, f.acted_on)} of {f.acted_on})" for f in d]),
        ("  edited", [f.edited for f in d]),
        ("  edit size, median / mean chars", [_pair(f.edit_chars_median, f.edit_chars_mean) for f in d]),
        ("  discarded", [f.discarded for f in d]),
        *[(f"    {reason.replace('_', ' ')}", [f.discarded_by_reason.get(reason, 0) for f in d])
          for reason in ch.draft.discarded_by_reason],
        ("  superseded", [f.superseded for f in d]),
        ("  expired", [f.expired for f in d]),
        ("  pending", [f.pending for f in d]),
        ("  failed", [f.failed for f in d]),
        ("  declined by the check", [f.declined for f in d]),
        ("  first response: card", [response(f.bot_response) for f in d]),
        ("  first response: a person", [response(f.human_response) for f in d]),
    ]


def _auto_rows(a: list, resolution_window_h: float) -> list[tuple[str, list]]:
    from bot.home.render import response

    return [
        ("auto: questions", [f.questions for f in a]),
        ("  answered", [f.answered for f in a]),
        ("  declined", [f.declined for f in a]),
        ("  handed off", [f.handed_off for f in a]),
        ("  failed", [f.failed for f in a]),
        ("  👍 / 👎", [f"{f.thumbs_up} / {f.thumbs_down}" for f in a]),
        ("  resolved: confirmed", [f.resolved_confirmed for f in a]),
        (f"  resolved: assumed ({resolution_window_h:g} h)", [f.resolved_assumed for f in a]),
        ("  followed up", [f.followed_up for f in a]),
        ("  within the window", [f.awaiting for f in a]),
        ("  first response: the bot", [response(f.bot_response) for f in a]),
        ("  first response: a person", [response(f.human_response) for f in a]),
    ]


def _pair(median: float | None, mean: float | None) -> str:
    return "–" if median is None else f"{median:g} / {mean:g}"
