"""`/ft forget @user` (admins): the erasure `ft forget-user` runs (storage.erasure), from Slack."""

from __future__ import annotations

import asyncio

from bot.deps import Deps
from storage.erasure import ErasureReport, compact, forget_user, scrub_files


async def forget(deps: Deps, user_id: str, by: str) -> ErasureReport:
    report, texts = await deps.db(lambda s: forget_user(s, user_id, by))
    if deps.data_dir is not None:
        report.files = await asyncio.to_thread(scrub_files, deps.data_dir, texts, user_id)
    await asyncio.to_thread(compact, deps.store)
    return report
