"""What kind each Slack channel is (public, private, DM, shared), asked of Slack and recorded for storage.audience."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from bot.slack.api import channel_info
from core.states import ChannelKind
from storage import audience

RECHECK_S = 600.0  # a channel made private or shared is noticed within this


class ChannelKinds:
    """conversations.info once per channel (and again after RECHECK_S), recorded in SlackChannel; a change of
    kind moves the channel's examples with it (storage.audience.remember)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, str, float]] = {}

    async def learn(self, client: Any, channel: str, db: Callable[[Callable], Awaitable[Any]],
                    kind_hint: str | None = None) -> tuple[str, str]:
        """(name, kind). kind_hint: what the event already says (a DM's channel_type "im"): no call to Slack."""
        known = self._known.get(channel)
        if known is not None and time.monotonic() - known[2] < RECHECK_S:
            return known[0], known[1]
        if kind_hint:
            name, kind = channel, kind_hint
        else:
            name, kind = await channel_info(client, channel)
        if kind != ChannelKind.UNKNOWN:
            await db(lambda s: audience.remember(s, channel, kind, name if name != channel else None))
        self._known[channel] = (name, kind, time.monotonic())
        return name, kind
