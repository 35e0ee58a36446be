"""Reading from Slack's Web API what the extraction needs: a whole thread, people's names."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.states import ChannelKind

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)")


async def fetch_thread(client: AsyncWebClient, channel: str, ts: str) -> list[dict[str, Any]]:
    """The thread that holds message `ts` (root first), every page of it."""
    first = await client.conversations_replies(channel=channel, ts=ts, limit=200)
    messages = list(first["messages"])
    target = next((m for m in messages if m.get("ts") == ts), None)
    root_ts = (target or {}).get("thread_ts") or ts
    if root_ts != ts and not any(m.get("ts") == root_ts for m in messages):
        # Asked with a reply's ts, Slack may return only that reply: ask again from the root.
        first = await client.conversations_replies(channel=channel, ts=root_ts, limit=200)
        messages = list(first["messages"])
    cursor = (first.get("response_metadata") or {}).get("next_cursor")
    while cursor:
        page = await client.conversations_replies(channel=channel, ts=root_ts, limit=200, cursor=cursor)
        messages.extend(page["messages"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
    return sorted({m["ts"]: m for m in messages}.values(), key=lambda m: float(m["ts"]))


async def channel_name(client: AsyncWebClient, channel: str) -> str:
    """The channel's name, or its id when Slack will not say (the example's source still points at it)."""
    return (await channel_info(client, channel))[0]


async def channel_info(client: AsyncWebClient, channel: str) -> tuple[str, str]:
    """(name, kind) of a channel; (its id, UNKNOWN) when Slack will not say. Kind: core.states.ChannelKind."""
    try:
        info = (await client.conversations_info(channel=channel))["channel"]
    except SlackApiError:
        return channel, ChannelKind.UNKNOWN
    return info.get("name") or channel, channel_kind(info)


def channel_kind(info: dict[str, Any]) -> str:
    """Who can read a channel, from conversations.info's flags. Shared first: a Slack Connect channel is also
    `is_channel`, and people of another organisation read it. A group DM counts as a DM."""
    if info.get("is_ext_shared") or info.get("is_shared") or info.get("is_pending_ext_shared"):
        return ChannelKind.SHARED
    if info.get("is_im") or info.get("is_mpim"):
        return ChannelKind.DM
    if info.get("is_private") or info.get("is_group"):
        return ChannelKind.PRIVATE
    if info.get("is_channel"):
        return ChannelKind.PUBLIC
    return ChannelKind.UNKNOWN


class People:
    """Display names and bot-ness of Slack users, looked up once each."""

    def __init__(self, client: AsyncWebClient):
        self.client = client
        self.names: dict[str, str] = {}
        self.bots: set[str] = set()

    async def learn(self, messages: list[dict[str, Any]]) -> None:
        wanted = {m.get("user") for m in messages} | {u for m in messages for u in _MENTION.findall(m.get("text", ""))}
        for uid in sorted(u for u in wanted if u and u not in self.names):
            try:
                user = (await self.client.users_info(user=uid))["user"]
            except Exception:  # noqa: BLE001  (a deleted or foreign user: keep the id)
                self.names[uid] = uid
                continue
            profile = user.get("profile") or {}
            self.names[uid] = profile.get("display_name") or profile.get("real_name") or user.get("name") or uid
            if user.get("is_bot"):
                self.bots.add(uid)
