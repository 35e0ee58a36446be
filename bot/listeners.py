"""One Bolt action listener per button that shares a handler: the handler is written once, each button names its
action id and what it adds."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from slack_bolt.async_app import AsyncApp


def on_actions(app: AsyncApp, handler: Callable[..., Awaitable[None]], extras: dict[str, Any]) -> None:
    """For each `action_id: extra`, a listener that calls handler(ack, body, respond, client, extra).

    A closure, not functools.partial: Bolt fills a listener's arguments by their names, and would take the bound
    one for an argument of its own."""
    for action_id, extra in extras.items():
        app.action(action_id)(_listener(handler, extra))


def _listener(handler: Callable[..., Awaitable[None]], extra: Any) -> Callable[..., Awaitable[None]]:
    async def listener(ack, body, respond, client) -> None:
        await handler(ack, body, respond, client, extra)

    return listener
