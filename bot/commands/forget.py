"""`/ft forget @user` (admins): the erasure `ft forget-user` runs (storage.erasure), from Slack."""

from __future__ import annotations

import asyncio
import re

from bot.commands import render
from bot.commands.registry import ADMINS, Call, UsageError, command
from bot.deps import Deps
from storage.erasure import ErasureReport, NothingStored, compact, database_file, forget_user, scrub_files

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(\|[^>]*)?>$")


def _forget_user(name: str, args: list[str], rest: str) -> str:
    """`forget @user`: Slack sends the mention as <@U123|name> (manifest: should_escape); a raw U123 is taken too."""
    if len(args) == 1:
        found = _MENTION.match(args[0])
        if found:
            return found.group(1)
        if re.fullmatch(r"[UW][A-Z0-9]{2,}", args[0]):
            return args[0]
    raise UsageError("Name one person, e.g. `/ft forget @mia` (or their user id, U…).")


@command("forget", syntax="forget @user", role=ADMINS, hint="forget @user", parse=_forget_user,
         summary="erase a person's messages from the examples, snapshots, feedback, drafts and index; queues a "
                 "retrain")
async def forget_command(call: Call) -> dict:
    try:
        return {"text": render.forgotten(await forget(call.deps, call.args, call.user))}
    except NothingStored:  # as `ft forget-user`: an id ftbot never saw gets no audit record
        return {"text": f"Nothing of `{call.args}` is stored: nothing was erased."}


async def forget(deps: Deps, user_id: str, by: str) -> ErasureReport:
    database = database_file(deps.store)
    report, texts = await deps.db(lambda s: forget_user(s, user_id, by, data_dir=deps.data_dir, database=database))
    if deps.data_dir is not None:
        scrubbed = await asyncio.to_thread(scrub_files, deps.data_dir, texts, user_id, database)
        report.files, report.files_left = scrubbed.changed, scrubbed.left
    await asyncio.to_thread(compact, deps.store)
    return report
