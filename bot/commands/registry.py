"""`/ft` sub-commands: who may run each, and the command's text parsed into one (or a UsageError)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.contract import RANK_CHOICES
from core.states import ChannelMode
from core.text import clip
from storage.jobs import check_params
from storage.outcomes import parse_since

EVERYONE, CURATORS, ADMINS = "everyone", "curators", "admins"


@dataclass(frozen=True)
class Spec:
    name: str
    syntax: str  # as shown in help, after `/ft`
    role: str
    summary: str


SPECS = {spec.name: spec for spec in (
    Spec("help", "help", EVERYONE, "this list"),
    Spec("status", "status", EVERYONE, "examples, training jobs and the deployed version at a glance"),
    Spec("ask", "ask QUESTION", EVERYONE, "ask the deployed model; the answer is posted in this channel"),
    Spec("review", "review", CURATORS, "the oldest candidate examples, with Approve / Edit / Reject"),
    Spec("train", "train [epochs=N] [lr=X] [rank=R] [qlora=true]", CURATORS,
         f"queue a training run on the approved examples (epochs 1–50, lr in (0, 1], rank {RANK_CHOICES}; "
         "qlora=true: 4-bit NF4 QLoRA)"),
    Spec("jobs", "jobs", EVERYONE, "recent training jobs, their status and progress"),
    Spec("cancel", "cancel JOB", CURATORS, "cancel a queued job, or stop a running one"),
    Spec("versions", "versions", EVERYONE, "recent model versions, their status and key metric"),
    Spec("stats", "stats [#channel] [7d|24h|2026-11-01]", EVERYONE,
         "what became of the bot's drafts and answers in watched channels, per channel and version"),
    Spec("deploy", "deploy VERSION", ADMINS, "answer with VERSION from now on (the current one stays loaded)"),
    Spec("rollback", "rollback", ADMINS, "go back to the version deployed before the current one"),
    # Showing is for everyone; changing the mode or the sharing mark is checked for admins in bot.commands.
    Spec("channel", "channel [mode off|mention|draft|auto [#drafts-channel] [confirm] | share on|off]", EVERYONE,
         "this channel's mode and record; admins set the mode (draft and auto need a drafts channel), or let a "
         "private or shared channel's approved answers be used everywhere and trained on (share on), or not (off)"),
    Spec("forget", "forget @user", ADMINS,
         "erase a person's messages from the examples, snapshots, feedback, drafts and index; queues a retrain"),
)}


class UsageError(ValueError):
    """What is wrong with the command's text, in one sentence for the person who typed it."""


@dataclass(frozen=True)
class Command:
    name: str
    params: dict[str, Any] = field(default_factory=dict)  # train; stats: {"channel": text, "since": datetime}
    job_id: int | None = None  # cancel
    version: str | None = None  # deploy
    question: str = ""  # ask
    mode: str | None = None  # channel mode …
    drafts_channel: str | None = None  # channel mode … #drafts
    confirm: bool = False  # channel mode auto confirm
    share: bool | None = None  # channel share on|off
    user: str | None = None  # forget

    @property
    def spec(self) -> Spec:
        return SPECS[self.name]


def parse(text: str | None) -> Command:
    """`/ft` alone means help; anything unknown or malformed raises UsageError."""
    parts = (text or "").split(None, 1)
    if not parts:
        return Command("help")
    head, rest = parts[0], parts[1].strip() if len(parts) > 1 else ""
    name = head.lower()
    if name not in SPECS:
        raise UsageError(f"I don't know the sub-command `{_shown(head)}`.")
    args = rest.split()
    if name == "ask":
        if not rest:
            raise UsageError("Write the question after `ask`, e.g. `/ft ask how long is the free trial?`")
        return Command(name, question=rest)
    if name == "train":
        return Command(name, params=_train_params(args))
    if name == "cancel":
        return Command(name, job_id=_job_id(args))
    if name == "forget":
        return Command(name, user=_forget_user(args))
    if name == "deploy":
        if len(args) != 1:
            raise UsageError("Name one version to deploy, e.g. `/ft deploy support-v7` (`/ft versions` lists them).")
        return Command(name, version=args[0].strip("`'\""))
    if name == "channel":
        return _channel(args)
    if name == "stats":
        return Command(name, params=_stats_args(args))
    if args:
        raise UsageError(f"`/ft {name}` takes no arguments.")
    return Command(name)


_CHANNEL_REF = re.compile(r"^<#([CGD][A-Z0-9]{2,30})(\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,30}$")


def _channel(args: list[str]) -> Command:
    """`channel`, `channel mode MODE [#drafts] [confirm]`, or `channel share on|off`."""
    if not args:
        return Command("channel")
    if args[0].lower() == "share":
        return Command("channel", share=_channel_share(args))
    if args[0].lower() != "mode" or len(args) < 2:
        raise UsageError("Write `/ft channel` to see this channel's mode, "
                         "or `/ft channel mode draft #drafts` to set it.")
    mode = args[1].lower()
    if mode not in tuple(ChannelMode):
        raise UsageError(f"`{_shown(args[1])}` is no mode: use off, mention, draft or auto.")
    drafts_channel, confirm = None, False
    for arg in args[2:]:
        ref = _CHANNEL_REF.match(arg)
        if ref or _CHANNEL_ID.match(arg):
            if drafts_channel:
                raise UsageError("Name one drafts channel.")
            drafts_channel = ref.group(1) if ref else arg
        elif arg.lower() == "confirm":
            confirm = True
        elif arg.startswith("#"):
            raise UsageError(f"I can't look up `{_shown(arg)}` by name: pick the channel from Slack's list as you type "
                             "`#`, so that Slack sends its id.")
        else:
            raise UsageError(f"`{_shown(arg)}` is neither a channel nor `confirm`.")
    return Command("channel", mode=mode, drafts_channel=drafts_channel, confirm=confirm)


def _train_params(args: list[str]) -> dict[str, Any]:
    raw: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise UsageError(f"`{_shown(arg)}` is not a setting: write key=value, e.g. `epochs=3`.")
        if key in raw:
            raise UsageError(f"`{_shown(key)}` is given twice.")
        raw[key] = value.strip()
    try:
        return check_params(raw)
    except ValueError as exc:
        message = str(exc)
        raise UsageError(message[:1].upper() + message[1:] + ".") from None


def _stats_args(args: list[str]) -> dict[str, Any]:
    """`[#channel] [since]` in either order: a channel (Slack's mention, #name or an id) and how far back."""
    found: dict[str, Any] = {}
    for arg in args:
        key = "channel" if arg.startswith(("<#", "#")) or arg[:1] in "CGD" and arg[1:].isupper() else "since"
        if key in found:
            raise UsageError(f"`{_shown(arg)}`: name at most one channel and one time, "
                             "e.g. `/ft stats #help-desk 7d`.")
        if key == "since":
            try:
                found[key] = parse_since(arg)
            except ValueError as exc:
                raise UsageError(f"`{_shown(arg)}` is not a time: write 7d, 24h, 30m, or a date such as "
                                 "2026-11-01.") from exc
        else:
            found[key] = arg
    return found
def _channel_share(args: list[str]) -> bool:
    """`channel share on|off`: the sharing mark of the channel the command is typed in."""
    if len(args) == 2 and args[0].lower() == "share" and args[1].lower() in ("on", "off"):
        return args[1].lower() == "on"
    raise UsageError("Write `/ft channel share on` or `/ft channel share off` in the channel concerned.")


_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(\|[^>]*)?>$")


def _forget_user(args: list[str]) -> str:
    """`forget @user`: Slack sends the mention as <@U123|name> (manifest: should_escape); a raw U123 is taken too."""
    if len(args) == 1:
        found = _MENTION.match(args[0])
        if found:
            return found.group(1)
        if re.fullmatch(r"[UW][A-Z0-9]{2,}", args[0]):
            return args[0]
    raise UsageError("Name one person, e.g. `/ft forget @mia` (or their user id, U…).")


def _job_id(args: list[str]) -> int:
    if len(args) == 1:
        value = args[0].lstrip("#")
        if value.isdigit() and int(value) > 0:
            return int(value)
    raise UsageError("Name one job by its number, e.g. `/ft cancel 12` (`/ft jobs` lists them).")


def _shown(text: str, limit: int = 40) -> str:
    """User text echoed inside backticks: short, and unable to close them."""
    return clip(text.replace("`", "'"), limit, trim=False)
