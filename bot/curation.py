"""Curation: Approve / Edit / Reject buttons on the review list, for curators and admins only."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlmodel import Session

from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.render import capture, review
from bot.render.review import CLASH, DONE, GONE, STALE
from storage.examples import edit, list_examples, same_content, set_status
from storage.models import Example, ExampleStatus
from storage.stats import status as store_status

log = logging.getLogger("ftbot.bot")


async def review_message(deps: Deps, limit: int = 5, *, note: str | None = None) -> dict[str, Any]:
    """The oldest candidates with their buttons: `{"text", "blocks"}`, ready to send ephemerally."""
    limit = max(1, min(limit, 10))  # four blocks each, and a message holds at most 50

    def load(s: Session) -> tuple[list[Example], int]:
        return list_examples(s, ExampleStatus.CANDIDATE, limit), store_status(s)["examples"][ExampleStatus.CANDIDATE]

    candidates, total = await deps.db(load)
    return review.review_list(candidates, total, note)


def decide(session: Session, ex_id: int, status: str, by: str) -> tuple[str, Example | None]:
    """Approve or reject one candidate; a decided or deleted example is left as it is."""
    ex = session.get(Example, ex_id, with_for_update=True)  # two curators clicking at once: one wins
    if ex is None:
        return GONE, None
    if ex.status != ExampleStatus.CANDIDATE:
        return STALE, ex
    set_status(session, [ex_id], status, by)
    return DONE, ex


def save_edit(session: Session, ex_id: int, question: str, answer: str, by: str) -> tuple[str, Example | None]:
    """A curator's edit of a candidate, approved in the same transaction."""
    ex = session.get(Example, ex_id, with_for_update=True)
    if ex is None:
        return GONE, None
    if ex.status != ExampleStatus.CANDIDATE:
        return STALE, ex
    other = same_content(session, question, answer)
    if other is not None and other.id != ex_id:
        return CLASH, other  # the unique dedup_key would refuse it at commit
    edit(session, ex_id, question, answer)
    set_status(session, [ex_id], ExampleStatus.APPROVED, by)
    return DONE, ex


def _example_id(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    # (curator, example id) → the response_url of the review list an Edit came from, so saving
    # the form can refresh that list. Best effort: lost on restart, then a DM says it instead.
    edit_origins: dict[tuple[str, int], str] = {}

    async def refused(body: dict, respond, action_id: str) -> bool:  # noqa: ANN001
        """Server-side role check; a refusal is said ephemerally and nothing changes."""
        if deps.is_curator(body["user"]["id"]):
            return False
        metrics.events.labels(kind="curation", outcome="refused").inc()
        await respond(text=review.only_curators(action_id), response_type="ephemeral", replace_original=False)
        return True

    async def on_decision(ack, body, respond, action_id: str, status: str) -> None:  # noqa: ANN001
        await ack()
        if await refused(body, respond, action_id):
            return
        ex_id = _example_id(body["actions"][0].get("value"))
        if ex_id is None:
            await respond(text="That button does not point at an example.", replace_original=False)
            return
        outcome, ex = await deps.db(lambda s: decide(s, ex_id, status, body["user"]["id"]))
        metrics.events.labels(kind="curation", outcome=f"{status}:{outcome}").inc()
        note = review.decided_note(outcome, ex_id, ex, status)
        await respond(replace_original=True, **await review_message(deps, note=note))

    @app.action(review.APPROVE)
    async def on_approve(ack, body, respond):  # noqa: ANN001
        await on_decision(ack, body, respond, review.APPROVE, ExampleStatus.APPROVED)

    @app.action(review.REJECT)
    async def on_reject(ack, body, respond):  # noqa: ANN001
        await on_decision(ack, body, respond, review.REJECT, ExampleStatus.REJECTED)

    @app.action(review.EDIT)
    async def on_edit(ack, body, respond, client):  # noqa: ANN001
        await ack()
        if await refused(body, respond, review.EDIT):
            return
        user, ex_id = body["user"]["id"], _example_id(body["actions"][0].get("value"))
        if ex_id is None:
            await respond(text="That button does not point at an example.", replace_original=False)
            return
        ex = await deps.db(lambda s: s.get(Example, ex_id))
        if ex is None or ex.status != ExampleStatus.CANDIDATE:
            note = review.stale(ex) if ex else review.decided_note(GONE, ex_id, None, "")
            await respond(replace_original=True, **await review_message(deps, note=note))
            return
        if body.get("response_url"):
            edit_origins[(user, ex_id)] = body["response_url"]
        await client.views_open(trigger_id=body["trigger_id"], view=review.edit_modal(ex))

    @app.view(review.EDIT_MODAL)
    async def on_edit_submit(ack, body, view, client):  # noqa: ANN001
        user, ex_id = body["user"]["id"], _example_id(view.get("private_metadata"))
        question, answer = capture.submitted(view)
        errors = capture.field_errors(question, answer)
        if not errors and not deps.is_curator(user):
            errors = {capture.ANSWER: review.only_curators(review.EDIT)}
        if not errors and ex_id is None:
            errors = {capture.ANSWER: "This form no longer points at an example; close it and try again."}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        # Saved before the ack (one short transaction) so that a clash or a stale example is
        # shown in the form itself, where the curator can still act on it.
        outcome, ex = await deps.db(lambda s: save_edit(s, ex_id, question, answer, user))
        metrics.events.labels(kind="curation", outcome=f"edit:{outcome}").inc()
        if outcome != DONE:
            message = (review.clash(ex.id) if outcome == CLASH else review.stale(ex) if outcome == STALE
                       else review.decided_note(GONE, ex_id, None, ""))
            await ack(response_action="errors", errors={capture.ANSWER: message})
            return
        await ack()
        await _after_edit(deps, client, user, ex_id, edit_origins.pop((user, ex_id), None))


async def _after_edit(deps: Deps, client, user: str, ex_id: int, origin: str | None) -> None:  # noqa: ANN001
    """Refresh the review list the Edit came from; a DM when that list cannot be reached."""
    if origin:
        try:
            reply = await AsyncWebhookClient(origin).send(
                replace_original=True, **await review_message(deps, note=review.edit_saved(ex_id)))
            if reply.status_code == 200:
                return
        except Exception as exc:  # noqa: BLE001  (an expired response_url: fall back to a DM)
            log.warning("could not refresh the review list: %s", exc)
    try:
        await client.chat_postMessage(channel=user, text=review.edit_saved(ex_id))
    except SlackApiError as exc:
        log.warning("could not confirm an edit: %s", exc.response.get("error"))
