"""`/ft train`, `/ft jobs` and `/ft cancel`: training jobs."""

from __future__ import annotations

from typing import Any

from bot.commands import render
from bot.commands.registry import CURATORS, EVERYONE, Call, UsageError, command, shown
from core.contract import CHECKPOINT_RULES, RANK_CHOICES
from storage import jobs
from storage.jobs import check_params

RECENT = 10


def _train_params(name: str, args: list[str], rest: str) -> dict[str, Any]:
    raw: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise UsageError(f"`{shown(arg)}` is not a setting: write key=value, e.g. `epochs=3`.")
        if key in raw:
            raise UsageError(f"`{shown(key)}` is given twice.")
        raw[key] = value.strip()
    try:
        return check_params(raw)
    except ValueError as exc:
        message = str(exc)
        raise UsageError(message[:1].upper() + message[1:] + ".") from None


@command("train", syntax="train [epochs=N] [lr=X] [rank=R] [qlora=true] [preference=true] [checkpoint_by=answers]",
         role=CURATORS, parse=_train_params,
         summary=f"queue a training run on the approved examples (epochs 1–50, lr in (0, 1], rank {RANK_CHOICES}; "
                 "qlora=true: 4-bit NF4 QLoRA; preference=true: then the team's corrections as preference training; "
                 f"checkpoint_by={'|'.join(CHECKPOINT_RULES)}: what keeps the best checkpoint)")
async def train(call: Call) -> dict:
    job = await call.deps.db(lambda s: jobs.enqueue(s, call.args, requested_by=call.user))
    return {"text": render.train_queued(job)}


@command("jobs", syntax="jobs", role=EVERYONE, summary="recent training jobs, their status and progress")
async def jobs_(call: Call) -> dict:
    return {"text": render.jobs(await call.deps.db(lambda s: jobs.recent(s, RECENT)))}


def _job_id(name: str, args: list[str], rest: str) -> int:
    if len(args) == 1:
        value = args[0].lstrip("#")
        if value.isdigit() and int(value) > 0:
            return int(value)
    raise UsageError("Name one job by its number, e.g. `/ft cancel 12` (`/ft jobs` lists them).")


@command("cancel", syntax="cancel JOB", role=CURATORS, hint="cancel JOB", parse=_job_id,
         summary="cancel a queued job, or stop a running one")
async def cancel(call: Call) -> dict:
    try:
        job = await call.deps.db(lambda s: jobs.cancel(s, call.args))
    except (LookupError, ValueError) as exc:  # no such job, or it has ended
        return {"text": render.cancel_refused(str(exc))}
    return {"text": render.cancelled(job)}
