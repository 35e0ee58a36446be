"""`/ft channel`: the channel's mode and record; admins set the mode (storage.channels.change_mode) or the sharing
mark (storage.audience)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands import render
from bot.commands.registry import EVERYONE, Call, UsageError, command, shown
from bot.drafts import render as render_drafts
from core.states import ChannelMode
from storage import audience, channels, outcomes

_CHANNEL_REF = re.compile(r"^<#([CGD][A-Z0-9]{2,30})(\|[^>]*)?>$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,30}$")


@dataclass(frozen=True)
class ChannelArgs:
    mode: str | None = None  # channel mode …
    drafts_channel: str | None = None  # channel mode … #drafts
    confirm: bool = False  # channel mode auto confirm
    share: bool | None = None  # channel share on|off


def _channel(name: str, args: list[str], rest: str) -> ChannelArgs:
    """`channel`, `channel mode MODE [#drafts] [confirm]`, or `channel share on|off`."""
    if not args:
        return ChannelArgs()
    if args[0].lower() == "share":
        if len(args) == 2 and args[1].lower() in ("on", "off"):
            return ChannelArgs(share=args[1].lower() == "on")
        raise UsageError("Write `/ft channel share on` or `/ft channel share off` in the channel concerned.")
    if args[0].lower() != "mode" or len(args) < 2:
        raise UsageError("Write `/ft channel` to see this channel's mode, "
                         "or `/ft channel mode draft #drafts` to set it.")
    mode = args[1].lower()
    if mode not in tuple(ChannelMode):
        raise UsageError(f"`{shown(args[1])}` is no mode: use off, mention, draft or auto.")
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
            raise UsageError(f"I can't look up `{shown(arg)}` by name: pick the channel from Slack's list as you type "
                             "`#`, so that Slack sends its id.")
        else:
            raise UsageError(f"`{shown(arg)}` is neither a channel nor `confirm`.")
    return ChannelArgs(mode=mode, drafts_channel=drafts_channel, confirm=confirm)


# Showing is for everyone; changing the mode or the sharing mark is checked for admins below. The channel's kind is
# learnt first: the reply says what the sharing mark moves.
@command("channel", syntax="channel [mode off|mention|draft|auto [#drafts-channel] [confirm] | share on|off]",
         role=EVERYONE, hint="channel [mode MODE #drafts | share on|off]", parse=_channel, learns_channel=True,
         summary="this channel's mode and record; admins set the mode (draft and auto need a drafts channel), or let "
                 "a private or shared channel's approved answers be used everywhere and trained on (share on), or not "
                 "(off)")
async def channel(call: Call) -> dict:
    if call.args.share is None:
        return {"text": await channel_mode(call)}
    if not call.deps.is_admin(call.user):
        return {"text": render.refused_share()}
    if not call.channel:
        return {"text": render.usage("Type `/ft channel share on|off` in the channel concerned.")}
    change = await call.deps.db(lambda s: audience.set_shareable(s, call.channel, bool(call.args.share), call.user))
    return {"text": render.share_changed(change)}


async def channel_mode(call: Call) -> str:
    """`/ft channel`: the mode and record; `/ft channel mode …` (admins): set it (storage.channels.change_mode)."""
    deps, args, channel = call.deps, call.args, call.channel or ""
    if not channel:
        return "Run `/ft channel` in the channel it is about."
    if args.mode is None:
        row = await deps.db(lambda s: channels.get(s, channel))
        found = await deps.db(lambda s: outcomes.record(s, channel, deps.ladder.last_n))
        return render_drafts.channel_status(channel, row.mode if row else ChannelMode.DEFAULT,
                                            row.drafts_channel if row else None, (found.sent_unchanged, found.acted_on))
    if not deps.is_admin(call.user):
        return render.refused_mode()
    change = await deps.db(lambda s: channels.change_mode(s, channel, args.mode, by=call.user,
                                                          drafts_channel=args.drafts_channel, confirm=args.confirm,
                                                          ladder=deps.ladder))
    return render_drafts.mode_change(channel, args.mode, change, deps.ladder)
