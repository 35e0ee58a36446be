"""Telling one person something only they should see: an ephemeral note where they are, else a DM."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

log = logging.getLogger("ftbot.bot")


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
    try:
        await client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("%s: %s", failed, exc.response.get("error"))
