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


def safe_url(url: str) -> str:
    """Database URLs may carry a password; never print it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def settings(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj["settings"]


def store(ctx: typer.Context) -> Store:
    """The store, migrated to the newest schema (on first use in this process); a setting that names no
    database ends the command with one line saying which."""
    from sqlalchemy.exc import ArgumentError

    from storage.db import MissingFolder

    obj = ctx.find_root().obj
    if "store" not in obj:
        s = settings(ctx)
        try:
            obj["store"] = wiring.store(s)
        except ArgumentError:
            fail("FT_DATABASE_URL is not a database URL (e.g. postgresql+psycopg://user@host/ftbot; "
                 "empty: a SQLite file in FT_DATA_DIR)")
        except MissingFolder as exc:
            fail(f"FT_DATABASE_URL: the folder {exc.folder} does not exist; create it or point FT_DATABASE_URL "
                 "elsewhere")
        except OSError as exc:  # the SQLite file's folder cannot be created
            fail(f"FT_DATA_DIR={s.data_dir}: cannot hold the database ({exc.strerror or exc})")
    return obj["store"]


# The largest id a database integer column holds (BIGINT; SQLite's INTEGER): a larger one names no row.
MAX_ID = 2**63 - 1


def valid_ids(ids: list[int]) -> tuple[list[int], list[int]]:
    """(ids a row may have, ids none can have: below 1 or beyond MAX_ID), each in the order given."""
    return [i for i in ids if 1 <= i <= MAX_ID], [i for i in ids if not 1 <= i <= MAX_ID]


def actor() -> str:
    """Who did it, for the record, when it was done from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001  (no user name in some containers)
        return "cli"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
