"""The Home tab's listener and what it reads."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.gaps import render as gaps_render
from bot.gaps.finding import home_cache
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
    """The Home tab at once; for curators, with the week's knowledge gaps as last found (bot.gaps.finding), or, when
    none were found lately, published again once they are (finding takes seconds)."""
    if event.get("tab") != "home":
        return  # the Messages tab needs nothing from us
    deps, user = context["deps"], event["user"]
    window, curator = deps.resolution_window_h, deps.is_curator(user)
    found = await deps.db(lambda s: overview(s, window))
    cache = home_cache(deps) if curator and deps.retriever is not None else None
    gaps = cache.fresh() if cache else None
    section = gaps_render.home_section(gaps) if cache else []
    await _publish(client, user, home_view(**found, is_curator=curator, gaps=section))
    if cache is None or gaps is not None:
        return
    try:
        section = gaps_render.home_section(await cache.refresh(deps))
    except Exception:  # the rest of the tab stands; the log says why
        log.exception("could not find the knowledge gaps for App Home")
        section = gaps_render.home_section(None, failed=True)
    await _publish(client, user, home_view(**found, is_curator=curator, gaps=section))


async def _publish(client, user: str, view: dict[str, Any]) -> None:
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("could not publish App Home: %s", exc.response.get("error"))
