"""`ft bot`: HTTP on aiohttp (POST /slack/events, GET /healthz, GET /metrics), or Socket Mode."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.metrics import BotMetrics

log = logging.getLogger("ftbot.bot")


def web_app(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> web.Application:
    from bot.approvals import Announcer
    from bot.drafting import Sweeper

    announcer = Announcer(deps, app.client, every_s=deps.announce_every_s)
    sweeper = Sweeper(deps, app.client, metrics)  # drafts nobody acted on expire (FT_DRAFT_TTL_H)

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def metrics_page(_: web.Request) -> web.Response:
        from storage.stats import status

        counts = await deps.db(status)
        for state, n in counts["examples"].items():
            metrics.examples.labels(status=state).set(n)
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def open_http(_: web.Application) -> None:
        # One pooled session for every Web API call: slack_sdk otherwise opens a connection per call,
        # which dominated the cost of a label in a burst.
        if app.client.session is None:
            app.client.session = aiohttp.ClientSession()
        announcer.start()  # training progress and approval requests in FT_APPROVALS_CHANNEL
        sweeper.start()

    async def drain(_: web.Application) -> None:
        await announcer.stop()
        await sweeper.stop()
        await deps.backlog.drain()
        await deps.model.close()
        if app.client.session is not None:
            await app.client.session.close()

    web_application = web.Application()
    web_application.router.add_post("/slack/events", slack_events)
    web_application.router.add_get("/healthz", healthz)
    web_application.router.add_get("/metrics", metrics_page)
    web_application.on_startup.append(open_http)
    web_application.on_shutdown.append(drain)
    return web_application


async def serve_http(app: AsyncApp, deps: Deps, metrics: BotMetrics, host: str = "127.0.0.1",
                     port: int = 0) -> tuple[web.AppRunner, str]:
    """The bot's HTTP surface started in the running loop (port 0: a free one): (runner to clean up, base URL).
    The offline demo, the benchmarks and the tests start it this way."""
    runner = web.AppRunner(web_app(app, deps, metrics), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, f"http://{host}:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


def run(app: AsyncApp, deps: Deps, metrics: BotMetrics, *, port: int, app_token: str = "",
        on_start: Callable[[Deps], None] | None = None) -> None:
    """Serve the app that ftbot.wiring built until stopped; with an app token (SLACK_APP_TOKEN), over Socket Mode.
    on_start runs inside the event loop (the composition root starts the training scheduler there: bot/
    itself does not import the trainer)."""
    if app_token:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        async def socket_mode() -> None:
            # /healthz and /metrics still answer over HTTP in Socket Mode.
            if on_start:
                on_start(deps)
            runner = web.AppRunner(web_app(app, deps, metrics))
            await runner.setup()
            await web.TCPSite(runner, "0.0.0.0", port).start()
            await AsyncSocketModeHandler(app, app_token).start_async()

        asyncio.run(socket_mode())
    else:
        web_application = web_app(app, deps, metrics)
        if on_start:
            async def started(_: web.Application) -> None:
                on_start(deps)

            web_application.on_startup.append(started)
        log.info("ftbot listening on :%d (POST /slack/events)", port)
        web.run_app(web_application, port=port, print=None)
