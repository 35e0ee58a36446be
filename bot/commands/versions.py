"""`/ft versions`, `/ft deploy` and `/ft rollback`: model versions (serving.deploy)."""

from __future__ import annotations

from bot.commands import render
from bot.commands.registry import ADMINS, EVERYONE, Call, UsageError, command
from serving.deploy import deploy, rollback
from storage import versions

RECENT = 10


@command("versions", syntax="versions", role=EVERYONE, summary="recent model versions, their status and key metric")
async def versions_(call: Call) -> dict:
    return {"text": render.versions(await call.deps.db(lambda s: versions.recent(s, RECENT)))}


def _version(name: str, args: list[str], rest: str) -> str:
    if len(args) != 1:
        raise UsageError("Name one version to deploy, e.g. `/ft deploy support-v7` (`/ft versions` lists them).")
    return args[0].strip("`'\"")


@command("deploy", syntax="deploy VERSION", role=ADMINS, hint="deploy VERSION", parse=_version,
         summary="answer with VERSION from now on (the current one stays loaded)")
async def deploy_(call: Call) -> dict:
    deps = call.deps
    return {"text": render.deploy_result(await deploy(deps.store, deps.model, call.args, call.user,
                                                      system_prompt=deps.system_prompt))}


@command("rollback", syntax="rollback", role=ADMINS,
         summary="go back to the version deployed before the current one")
async def rollback_(call: Call) -> dict:
    return {"text": render.deploy_result(await rollback(call.deps.store, call.deps.model, call.user))}
