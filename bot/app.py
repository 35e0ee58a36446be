"""The Bolt app: one register() per Slack surface, retries dropped, one error handler."""

from __future__ import annotations

import logging
from collections import OrderedDict

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.metrics import BotMetrics

log = logging.getLogger("ftbot.bot")


def build_app(deps: Deps, *, token: str, signing_secret: str, api_url: str = "",
              metrics: BotMetrics | None = None) -> AsyncApp:
    from bot import agent, approvals, asking, changes, commands, curation, drafting, home, labelling, shortcut

    client = AsyncWebClient(token=token, base_url=api_url) if api_url else AsyncWebClient(token=token)
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)
    metrics = metrics or BotMetrics()

    recent_ids: OrderedDict[str, None] = OrderedDict()

    @app.middleware
    async def drop_retries(body, next):
        """An event_id seen before is acknowledged and ignored (Slack retries what it thinks was lost).

        Checked in memory here, so acks stay fast in a burst; event listeners also check the
        database (deps.first_delivery) after the ack, for retries that reach another replica.
        """
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

    # changes before agent and drafting: Bolt runs the first listener that matches, and an edit is a "message" too;
    # agent before home: both listen to app_home_opened (the Messages tab and the Home tab).
    for surface in (labelling, shortcut, changes, agent, curation, home, asking, drafting, commands, approvals):
        surface.register(app, deps, metrics)
    changes.register_fallback(app)  # after every surface: Bolt runs the first listener that matches

    @app.error
    async def on_error(error, body, respond, logger):
        # Never a traceback in Slack: log it, tell the person in one sentence.
        log.exception("unhandled error in a Slack listener", exc_info=error)
        if respond is not None and isinstance(body, dict) and body.get("response_url"):
            try:
                await respond(text="Sorry, something went wrong on our side; it has been logged.",
                              response_type="ephemeral", replace_original=False)
            except Exception:  # noqa: BLE001  (the error is logged above; telling the person is best effort)
                log.warning("could not tell the user about the error")

    return app
