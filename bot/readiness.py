"""GET /readyz: whether the bot can answer right now (the model server and the database), and what it runs.

/healthz stays a liveness check (the process serves HTTP); this one asks what a question needs. Nothing secret
goes in the body: no URL (it may carry credentials), no token, no key, and no error text from a server (it could
echo a header); a failure is named by its kind only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.deps import Deps

CHECK_TIMEOUT_S = 3.0  # a probe that waits longer than the platform's check timeout tells it nothing


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ftbot")
    except PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


async def _model(deps: Deps) -> dict[str, Any]:
    from serving.client import ModelServerError

    try:
        base = await asyncio.wait_for(deps.model.base_model(), CHECK_TIMEOUT_S)
    except ModelServerError as exc:
        return {"ok": False, "error": f"model server answered {exc.status}"}
    except Exception as exc:  # noqa: BLE001  (unreachable, timed out, no JSON: named by kind, never by its text)
        return {"ok": False, "error": f"model server unreachable ({exc.__class__.__name__})"}
    return {"ok": True, "base_model": base}


async def _database(deps: Deps) -> dict[str, Any]:
    from sqlalchemy import text

    from storage.versions import deployed

    def probe(session) -> str | None:
        session.exec(text("SELECT 1"))
        row = deployed(session)
        return row.name if row else None

    try:
        version = await asyncio.wait_for(deps.db(probe), CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"database unreachable ({exc.__class__.__name__})"}
    return {"ok": True, "deployed_version": version}


async def readiness(deps: Deps) -> tuple[bool, dict[str, Any]]:
    """(ready, body): ready when the model server lists its base model and the database answers."""
    model, database = await asyncio.gather(_model(deps), _database(deps))
    ready = model["ok"] and database["ok"]
    reasons = [part["error"] for part in (model, database) if not part["ok"]]
    body = {"ok": ready, "ftbot": _package_version(), "model_server": model, "database": database,
            "deployed_version": database.get("deployed_version")}
    if reasons:
        body["reasons"] = reasons
    return ready, body
