"""What every `ft` command shares: settings, the store, output and one-line errors."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from ftbot import wiring
from ftbot.settings import Settings
from storage import Store

console = Console()
err_console = Console(stderr=True)


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    error(message)
    raise typer.Exit(code)


def settings(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj["settings"]


def store(ctx: typer.Context) -> Store:
    """The store, migrated to the newest schema (on first use in this process)."""
    obj = ctx.find_root().obj
    if "store" not in obj:
        obj["store"] = wiring.store(settings(ctx))
    return obj["store"]


def actor() -> str:
    """Who did it, for the record, when it was done from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001  (no user name in some containers)
        return "cli"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
