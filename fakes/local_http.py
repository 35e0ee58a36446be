"""Serving a test's aiohttp app on a free local port (the fake Slack Web API, the model server stub)."""

from __future__ import annotations

from aiohttp import web


async def start(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    """(runner to clean up, base URL)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
