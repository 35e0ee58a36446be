"""Posting for the bot: a message where it belongs (a DM when Slack refuses), and a note only one person sees."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger("ftbot.bot")


async def post(client, channel: str, thread_ts: str | None = None, *, dm_to: str | None = None,
               failed: str = "could not post", **message: Any) -> str | None:
    """chat.postMessage in `channel` (in `thread_ts`'s thread); when Slack refuses (the bot is not in the channel)
    and `dm_to` names someone else than the channel, a DM to them instead. The message's ts ("" when Slack gives
    none), or None when nothing was posted; `failed` starts the warning logged then."""
    try:
        reply = await client.chat_postMessage(channel=channel, **({"thread_ts": thread_ts} if thread_ts else {}),
                                              **message)
        return reply.get("ts") or ""
    except SlackApiError as exc:
        log.warning("%s in %s: %s", failed, channel, exc.response.get("error"))
    if dm_to and dm_to != channel:
        return await post(client, dm_to, failed=f"{failed} (by DM)", **message)
    return None


async def tell(client, user: str, text: str, *, channel: str | None = None, thread_ts: str | None = None,
               dm: bool = True, failed: str = "could not tell the user") -> None:
    """Ephemeral in `channel` (in `thread_ts`'s thread), seen by `user` alone; a DM when there is no channel or
    Slack refuses (the bot is not in it). dm=False: the ephemeral note or nothing. `failed` starts the warning
    logged when nothing reached the person."""
    if channel or not dm:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=text,
                                            **({"thread_ts": thread_ts} if thread_ts else {}))
            return
        except SlackApiError as exc:
            if not dm:
                log.warning("%s: %s", failed, exc.response.get("error"))
                return
    await post(client, user, text=text, failed=failed)
