"""`ft gaps`: the questions the bot could not answer, grouped by meaning (storage.gaps)."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from core.text import clip
from ftbot import wiring
from ftbot.cli import common
from ftbot.cli.common import console, fail, print_json


def gaps(
    ctx: typer.Context,
    since: str = typer.Option("7d", "--since", help="Questions asked since: 7d, 36h, 2w, or a date (2026-11-01)."),
    channel: Optional[str] = typer.Option(None, "--channel", "-c",
                                          help="As seen in this channel (#name, name or id): its own questions "
                                               "and pairs too when it is private or shared. Without it: only "
                                               "channels usable everywhere."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: every member question of each gap."),
) -> None:
    """Groups of similar questions the bot declined or handed off, drafts discarded as wrong or outdated, and
    answers rated 👎: each with its size, channels, 3 examples and the closest approved pair."""
    from core.embedder import EmbedderError
    from storage import audience
    from storage.gaps import find_gaps
    from storage.outcomes import channel_id, parse_since

    try:
        start = parse_since(since)
    except ValueError as exc:
        fail(f"--since {exc}", code=2)
    store = common.store(ctx)
    try:
        index = wiring.retrieval_index(store)
    except EmbedderError as exc:
        fail(str(exc))
    with console.status("bringing the index of approved answers up to date…"):
        index.sync()  # the nearest approved pair is read from the index's stored rows
    with store.session() as session:
        where = channel_id(session, channel) if channel is not None else None
        if channel is not None and where is None:
            fail(f"--channel: no channel {channel!r} is known", code=2)
        found = find_gaps(session, index.embedder, since=start, scope=audience.scope(session, where))
        names = _channel_names(session, {c for g in found for c in g.channels})
    if as_json:
        print_json({"since": start.isoformat(), "channel": where, "gaps": [_gap_json(g) for g in found]})
        return
    when = f"since {start:%Y-%m-%d %H:%M} UTC"
    if not found:
        console.print(f"no knowledge gaps {when}: no two alike among the questions the bot could not answer",
                      highlight=False)
        return
    console.print(_table(found, names, when))


def _gap_json(gap) -> dict[str, Any]:
    pair = gap.nearest
    return {"key": gap.key, "size": gap.size, "channels": gap.channels,
            "nearest": None if pair is None else {"example_id": pair.example_id, "question": pair.question,
                                                  "answer": pair.answer, "score": pair.score},
            "questions": [q.to_json() for q in gap.questions]}


def _table(found: list, names: dict[str, str], when: str) -> Table:
    table = Table(title=f"knowledge gaps {when}: {len(found)} gap{'s' if len(found) != 1 else ''}", show_lines=True)
    for column in ("size", "channels", "example questions", "closest approved pair", "score"):
        table.add_column(column, justify="right" if column in ("size", "score") else "left")
    for gap in found:
        open_ = len(gap.open_questions)
        pair = gap.nearest
        # Escaped: a customer's "[link]" is text, not rich markup.
        table.add_row(f"{gap.size}\n({open_} open)", escape("\n".join(names.get(c, c) for c in gap.channels)) or "—",
                      "\n".join(f"• {escape(clip(q, 90, one_line=True))}" for q in gap.examples),
                      "—" if pair is None else escape(f"{clip(pair.question, 60, one_line=True)}\n"
                                                      f"→ {clip(pair.answer, 60, one_line=True)}"),
                      "—" if pair is None else f"{pair.score:.2f}")
    return table


def _channel_names(session, ids: set[str]) -> dict[str, str]:
    from sqlmodel import col, select

    from storage.models import SlackChannel

    if not ids:
        return {}
    rows = session.exec(select(SlackChannel.id, SlackChannel.name).where(col(SlackChannel.id).in_(sorted(ids))))
    return {i: f"#{name}" for i, name in rows if name}
