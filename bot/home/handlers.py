"""The Home tab's listener and what it reads."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.home.render import home_view
from storage import examples, feedback, jobs, stats, versions
from storage.outcomes import outcomes

log = logging.getLogger("ftbot.bot")
NEWEST = 5


def overview(session: Session, resolution_window_h: float) -> dict[str, Any]:
    return {"stats": stats.status(session), "examples": examples.recent(session, NEWEST),
            "jobs": jobs.recent(session, NEWEST), "deployed": versions.deployed(session),
            "unanswered": feedback.unanswered(session, NEWEST),
            "outcomes": outcomes(session, resolution_window_h=resolution_window_h)}


async def on_home_opened(event, client, context):
    if event.get("tab") != "home":
        return  # the Messages tab needs nothing from us
    deps, user = context["deps"], event["user"]
    window = deps.resolution_window_h
    view = home_view(**await deps.db(lambda s: overview(s, window)), is_curator=deps.is_curator(user))
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("could not publish App Home: %s", exc.response.get("error"))
