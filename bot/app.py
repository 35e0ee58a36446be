"""The Bolt app: it only composes. Retries dropped, deps and metrics put in every listener's context, one
register() per Slack surface, one error handler."""

from __future__ import annotations

import logging
from collections import OrderedDict

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.metrics import BotMetrics

log = logging.getLogger("ftbot.bot")


def surfaces() -> list:
    """Each surface's package, in the order Bolt tries their listeners (it runs the first that matches): changes
    before asking and drafts, since an edit is a "message" too; changes' fallback comes after all of them."""
    # agent before home: both listen to app_home_opened (the Messages tab and the Home tab).
    from bot import agent, approvals, asking, capture, changes, commands, curation, drafts, gaps, home, labelling

    return [labelling, capture, changes, agent, curation, home, asking, drafts, gaps, commands, approvals]


def build_app(deps: Deps, *, token: str, signing_secret: str, api_url: str = "",
              metrics: BotMetrics | None = None) -> AsyncApp:
    from bot.changes import register_fallback

    client = AsyncWebClient(token=token, base_url=api_url) if api_url else AsyncWebClient(token=token)
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)
    metrics = metrics or BotMetrics()
    app.middleware(drop_retries(metrics))
    app.middleware(with_deps(deps, metrics))
    for surface in surfaces():
        surface.register(app, deps, metrics)
    register_fallback(app)  # after every surface: Bolt runs the first listener that matches
    app.error(on_error)
    return app


def drop_retries(metrics: BotMetrics):
    """An event_id seen before is acknowledged and ignored (Slack retries what it thinks was lost).

    Checked in memory here, so acks stay fast in a burst; event listeners also check the database
    (deps.first_delivery) after the ack, for retries that reach another replica.
    """
    recent_ids: OrderedDict[str, None] = OrderedDict()

    async def middleware(body, next):
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id:
            if event_id in recent_ids:
                metrics.events.labels(kind="event", outcome="duplicate").inc()
                return BoltResponse(status=200, body="")
            recent_ids[event_id] = None
            if len(recent_ids) > 50_000:
                recent_ids.popitem(last=False)
        metrics.events.labels(kind=body.get("type") or ("command" if body.get("command") else "other"),
                              outcome="handled").inc()
        await next()

    return middleware


def with_deps(deps: Deps, metrics: BotMetrics):
    """Listeners live at module level and take `context`: context["deps"] and context["metrics"] are what they
    use (Bolt fills listener arguments by name, so this is how they reach them)."""

    async def middleware(context, next):
        context["deps"], context["metrics"] = deps, metrics
        await next()

    return middleware


async def on_error(error, body, respond, logger):
    # Never a traceback in Slack: log it, tell the person in one sentence.
    log.exception("unhandled error in a Slack listener", exc_info=error)
    if respond is not None and isinstance(body, dict) and body.get("response_url"):
        try:
            await respond(text="Sorry, something went wrong on our side; it has been logged.",
                          response_type="ephemeral", replace_original=False)
        except Exception:  # noqa: BLE001  (the error is logged above; telling the person is best effort)
            log.warning("could not tell the user about the error")
