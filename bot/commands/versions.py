"""`/ft versions`, `/ft deploy` and `/ft rollback`: model versions (serving.deploy)."""

from __future__ import annotations

from bot.commands import render
from bot.commands.registry import ADMINS, EVERYONE, Call, UsageError, command
from serving.deploy import deploy, rollback
from storage import versions

RECENT = 10
YES = ("--yes", "—yes", "–yes")  # as typed, and as a Mac's smart dashes may turn it


@command("versions", syntax="versions", role=EVERYONE, summary="recent model versions, their status and key metric")
async def versions_(call: Call) -> dict:
    return {"text": render.versions(await call.deps.db(lambda s: versions.recent(s, RECENT)))}


def _version(name: str, args: list[str], rest: str) -> tuple[str, bool]:
    """(the version, confirmed): `--yes` deploys a version with a warning (serving.deploy.needs_confirming)."""
    confirmed = any(a in YES for a in args)
    named = [a for a in args if a not in YES]
    if len(named) != 1:
        raise UsageError("Name one version to deploy, e.g. `/ft deploy support-v7` (`/ft versions` lists them).")
    return named[0].strip("`'\""), confirmed


@command("deploy", syntax="deploy VERSION", role=ADMINS, hint="deploy VERSION", parse=_version,
         summary="answer with VERSION from now on (the current one stays loaded; `--yes` after it confirms a "
                 "warning)")
async def deploy_(call: Call) -> dict:
    deps, (name, confirmed) = call.deps, call.args
    return {"text": render.deploy_result(await deploy(deps.store, deps.model, name, call.user,
                                                      system_prompt=deps.system_prompt, confirmed=confirmed),
                                       name)}


@command("rollback", syntax="rollback", role=ADMINS,
         summary="go back to the version deployed before the current one")
async def rollback_(call: Call) -> dict:
    return {"text": render.deploy_result(await rollback(call.deps.store, call.deps.model, call.user))}
