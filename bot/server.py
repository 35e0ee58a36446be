"""`ft bot`: HTTP on aiohttp (POST /slack/events, GET /healthz, GET /readyz, GET /metrics), or Socket Mode."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Callable, Mapping

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import Clock, SignatureVerifier

from bot.deps import Deps
from bot.metrics import BotMetrics

log = logging.getLogger("ftbot.bot")

# Slack's signatures are "v0=" and 64 hex digits; its timestamps are seconds. Anything else is refused before
# slack_sdk's check sees it: hmac.compare_digest raises on a non-ASCII string, int() on a timestamp that is no number.
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class _At(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def signed_by_slack(raw: bytes, headers: Mapping[str, str], secret: str, now: float | None = None) -> bool:
    """Slack's v0 signature over the raw bytes (slack_sdk's SignatureVerifier, which also refuses a request signed
    more than 5 minutes from now), checked before anything reads them. A malformed header, or bytes that are no
    UTF-8, make a request simply unsigned."""
    timestamp, signature = headers.get("X-Slack-Request-Timestamp", ""), headers.get("X-Slack-Signature", "")
    if not secret.strip() or not _SIGNATURE.fullmatch(signature) or not _TIMESTAMP.fullmatch(timestamp):
        return False
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    verifier = SignatureVerifier(secret) if now is None else SignatureVerifier(secret, clock=_At(now))
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


# The fields Slack always sends as objects, and those it sends as lists of objects. Bolt's own middleware reads
# them before any listener runs (`req.body.get("event", {}).get("bot_id")`), so a signed body with another
# shape would fail inside Bolt; it is refused with 400 instead.
_OBJECTS = ("event", "container", "view", "message", "enterprise", "item", "previous_message", "state", "bot_profile")
_OBJECT_LISTS = ("authorizations", "actions", "blocks")
_IDS = ("type", "subtype", "user", "channel", "team", "ts", "thread_ts", "text", "event_id", "command",
        "callback_id", "action_id", "trigger_id", "response_url", "token", "reaction")


def slack_shaped(body: object, depth: int = 0) -> bool:
    """Whether a parsed body has the shape of what Slack sends, as far as Bolt and the listeners read it."""
    if not isinstance(body, dict):
        return False
    for key, value in body.items():
        if key in _OBJECTS and not (isinstance(value, dict) and (depth > 3 or slack_shaped(value, depth + 1))):
            return False
        if key in _OBJECT_LISTS and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return False
        # "user", "channel", "team": an id or an object
        if key in _IDS and value is not None and not isinstance(value, (str, dict)):
            return False
    return depth > 0 or _complete(body)


# What the listeners take for granted, per event type and per interactive payload type: Slack always sends these.
# A dotted name is a field of an object ("item.channel"); "item.channel?" only when item.type is "message".
_EVENT_NEEDS = {"app_mention": ("channel", "user", "ts"), "message": ("channel", "ts"),
                "reaction_added": ("user", "reaction", "item.type", "item.channel?", "item.ts?"),
                "reaction_removed": ("user", "reaction", "item.type", "item.channel?", "item.ts?"),
                "app_home_opened": ("user",)}
_PAYLOAD_NEEDS = {"block_actions": ("user.id", "trigger_id", "actions.0.action_id"),
                  "view_submission": ("user.id", "view.id"),
                  "message_action": ("user.id", "trigger_id", "channel.id", "message.ts"),
                  "shortcut": ("user.id", "trigger_id")}


def _complete(body: dict) -> bool:
    event = body.get("event")
    if isinstance(event, dict):
        return _has(event, _EVENT_NEEDS.get(event.get("type"), ()))
    return _has(body, _PAYLOAD_NEEDS.get(body.get("type"), ())) if "command" not in body else True


def _has(obj: dict, needs: tuple[str, ...]) -> bool:
    for need in needs:
        if need.endswith("?"):
            if (obj.get("item") or {}).get("type") != "message":
                continue
            need = need[:-1]
        value: object = obj
        for part in need.split("."):
            if isinstance(value, list) and part.isdigit():
                value = value[int(part)] if len(value) > int(part) else None
            else:
                value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            return False
    return True


def _bad(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status)


def web_app(app: AsyncApp, deps: Deps, metrics: BotMetrics, *, signing_secret: str | None = None) -> web.Application:
    """signing_secret: SLACK_SIGNING_SECRET; None: the one the Bolt app was built with (Bolt names it no other way).
    Empty (Socket Mode): POST /slack/events refuses everything. deps.periodic (ftbot.wiring builds it: the
    announcer, the draft sweeper, the event ids forgotten) runs while the app does."""
    secret = getattr(app, "_signing_secret", "") if signing_secret is None else signing_secret
    routes = _Routes(app, deps, metrics, secret)
    web_application = web.Application()
    web_application.router.add_post("/slack/events", routes.slack_events)
    web_application.router.add_get("/healthz", routes.healthz)
    web_application.router.add_get("/readyz", routes.readyz)
    web_application.router.add_get("/metrics", routes.metrics_page)
    web_application.on_startup.append(routes.open_http)
    web_application.on_shutdown.append(routes.drain)
    return web_application


def _no_challenge(parsed: dict) -> bool:
    """A url_verification without a challenge to echo (Bolt would echo whatever is there: null, or a dict)."""
    challenge = parsed.get("challenge")
    return parsed.get("type") == "url_verification" and not (isinstance(challenge, str) and challenge)


class _Routes:
    """The bot's HTTP routes and its start and stop, over one Bolt app."""

    def __init__(self, app: AsyncApp, deps: Deps, metrics: BotMetrics, secret: str) -> None:
        self.app, self.deps, self.metrics, self.secret = app, deps, metrics, secret

    def _refused(self, status: int, kind: str, reason: str) -> web.Response:
        self.metrics.events.labels(kind=kind, outcome="refused").inc()
        return _bad(status, reason)

    async def slack_events(self, request: web.Request) -> web.Response:
        # The signature first, over the raw bytes: Bolt parses the body before it verifies, so anyone could
        # make it fail (and log a traceback) with a body that is no JSON.
        raw = await request.read()
        if not signed_by_slack(raw, request.headers, self.secret):
            return self._refused(401, "unsigned", "invalid_signature")
        try:
            text = raw.decode("utf-8")
            parsed = parse_body(text, request.headers.get("Content-Type"))
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            parsed = None
        if not slack_shaped(parsed) or _no_challenge(parsed):
            return self._refused(400, "malformed", "malformed_body")
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=dict(request.headers))
        try:
            return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))
        except Exception as exc:  # noqa: BLE001  (a signed body Bolt cannot route: one line, no traceback)
            log.warning("refused a signed request Bolt could not handle: %s: %s", exc.__class__.__name__,
                        str(exc)[:200])
            return self._refused(400, "malformed", "malformed_body")

    async def healthz(self, _: web.Request) -> web.Response:
        # Liveness only: the process serves HTTP. What a question needs is /readyz (bot.readiness).
        return web.json_response({"ok": True})

    async def readyz(self, _: web.Request) -> web.Response:
        from bot.readiness import readiness

        ready, body = await readiness(self.deps)
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(self, _: web.Request) -> web.Response:
        from storage.stats import status

        counts = await self.deps.db(status)
        for state, n in counts["examples"].items():
            self.metrics.examples.labels(status=state).set(n)
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def open_http(self, _: web.Application) -> None:
        # One pooled session for every Web API call: slack_sdk otherwise opens a connection per call,
        # which dominated the cost of a label in a burst.
        if self.app.client.session is None:
            self.app.client.session = aiohttp.ClientSession()
        for work in self.deps.periodic:
            work.start()

    async def drain(self, _: web.Application) -> None:
        # Within deps.shutdown_grace_s in all (bot.shutdown): aiohttp has stopped listening before this runs.
        from bot.shutdown import Deadline, listener_tasks, settle

        deadline = Deadline(self.deps.shutdown_grace_s)
        for work in self.deps.periodic:
            await work.stop()
        await settle(listener_tasks(), deadline.left())
        await self.deps.backlog.drain(timeout=deadline.left())
        await self.deps.model.close()
        if self.app.client.session is not None:
            await self.app.client.session.close()


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
            import signal

            runner = web.AppRunner(web_app(app, deps, metrics))
            await runner.setup()
            await web.TCPSite(runner, "0.0.0.0", port).start()
            stop = asyncio.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            handler = AsyncSocketModeHandler(app, app_token)
            await handler.connect_async()
            await stop.wait()
            await handler.close_async()  # no more events; the runner's cleanup drains what runs (bounded)
            await runner.cleanup()

        asyncio.run(socket_mode())
    else:
        web_application = web_app(app, deps, metrics)
        if on_start:
            async def started(_: web.Application) -> None:
                on_start(deps)

            web_application.on_startup.append(started)
        log.info("ftbot listening on :%d (POST /slack/events)", port)
        # SIGTERM and SIGINT: stop listening, then drain() within deps.shutdown_grace_s. A request handler is an ack
        # (Slack wants it within 3 s), so aiohttp's own wait for them after that is short.
        web.run_app(web_application, port=port, print=None, shutdown_timeout=1.0)
