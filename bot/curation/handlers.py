"""Curation: Approve / Edit / Reject on the review list's candidates, Answer / Dismiss on the questions the bot
could not answer; for curators and admins only."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlmodel import Session

from bot.capture import render as capture
from bot.commands.render import share_notes
from bot.curation import render as review
from bot.deps import Deps
from bot.metrics import BotMetrics
from bot.slack.post import tell
from core.states import CurationOutcome, ExampleStatus
from storage import audience, feedback
from storage.examples import edit, list_examples, same_content, set_status
from storage.models import Example, Feedback
from storage.stats import status as store_status

log = logging.getLogger("ftbot.bot")
SHARE_NOTES_DAYS = 7  # how long /ft review shows a sharing mark set or taken back


async def review_message(deps: Deps, limit: int = 5, *, note: str | None = None) -> dict[str, Any]:
    """The oldest candidates with their buttons: `{"text", "blocks"}`, ready to send ephemerally."""
    limit = max(1, min(limit, 10))  # four blocks each, and a message holds at most 50

    def load(s: Session) -> tuple[list[Example], int, list[Feedback], list]:
        return (list_examples(s, ExampleStatus.CANDIDATE, limit, drafts_first=True),
                store_status(s)["examples"][ExampleStatus.CANDIDATE],
                feedback.unanswered(s, limit), audience.recent_share_changes(s, since_days=SHARE_NOTES_DAYS))

    candidates, total, unanswered, shared = await deps.db(load)
    # Sharing marks set or taken back lately: what each one moved (storage.audience).
    notes = "\n".join(n for n in (note, share_notes(shared)) if n) or None
    return review.review_list(candidates, total, notes, unanswered)


def decide(session: Session, ex_id: int, status: str, by: str) -> tuple[CurationOutcome, Example | None]:
    """Approve or reject one candidate; a decided or deleted example is left as it is."""
    ex = session.get(Example, ex_id, with_for_update=True)  # two curators clicking at once: one wins
    if ex is None:
        return CurationOutcome.GONE, None
    if ex.status != ExampleStatus.CANDIDATE:
        return CurationOutcome.STALE, ex
    set_status(session, [ex_id], status, by)
    return CurationOutcome.DONE, ex


def save_edit(session: Session, ex_id: int, question: str, answer: str, by: str
              ) -> tuple[CurationOutcome, Example | None]:
    """A curator's edit of a candidate, approved in the same transaction."""
    ex = session.get(Example, ex_id, with_for_update=True)
    if ex is None:
        return CurationOutcome.GONE, None
    if ex.status != ExampleStatus.CANDIDATE:
        return CurationOutcome.STALE, ex
    other = same_content(session, question, answer)
    if other is not None and other.id != ex_id:
        return CurationOutcome.CLASH, other  # the unique dedup_key would refuse it at commit
    edit(session, ex_id, question, answer)
    set_status(session, [ex_id], ExampleStatus.APPROVED, by)
    return CurationOutcome.DONE, ex


def _example_id(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    # (curator, "example" | "question", id) → the response_url of the review list an Edit or Answer came from, so
    # saving the form can refresh that list. Best effort: lost on restart, then a DM says it instead.
    edit_origins: dict[tuple[str, str, int], str] = {}

    async def refused(body: dict, respond, action_id: str) -> bool:
        """Server-side role check; a refusal is said ephemerally and nothing changes."""
        if deps.is_curator(body["user"]["id"]):
            return False
        metrics.events.labels(kind="curation", outcome="refused").inc()
        await respond(text=review.only_curators(action_id), response_type="ephemeral", replace_original=False)
        return True

    async def on_decision(ack, body, respond, action_id: str, status: str) -> None:
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
    async def on_approve(ack, body, respond):
        await on_decision(ack, body, respond, review.APPROVE, ExampleStatus.APPROVED)

    @app.action(review.REJECT)
    async def on_reject(ack, body, respond):
        await on_decision(ack, body, respond, review.REJECT, ExampleStatus.REJECTED)

    @app.action(review.EDIT)
    async def on_edit(ack, body, respond, client):
        await ack()
        if await refused(body, respond, review.EDIT):
            return
        user, ex_id = body["user"]["id"], _example_id(body["actions"][0].get("value"))
        if ex_id is None:
            await respond(text="That button does not point at an example.", replace_original=False)
            return
        ex = await deps.db(lambda s: s.get(Example, ex_id))
        if ex is None or ex.status != ExampleStatus.CANDIDATE:
            note = review.stale(ex) if ex else review.decided_note(CurationOutcome.GONE, ex_id, None, "")
            await respond(replace_original=True, **await review_message(deps, note=note))
            return
        if body.get("response_url"):
            edit_origins[(user, "example", ex_id)] = body["response_url"]
        await client.views_open(trigger_id=body["trigger_id"], view=review.edit_modal(ex))

    async def read_form(ack, body, view, action_id: str) -> tuple[str, int, str, str] | None:
        """(curator, id, question, answer) of a submitted Edit or Answer form; None once the form shows why not."""
        user, target = body["user"]["id"], _example_id(view.get("private_metadata"))
        question, answer = capture.submitted(view)
        errors = capture.field_errors(question, answer)
        if not errors and not deps.is_curator(user):
            errors = {capture.ANSWER: review.only_curators(action_id)}
        if not errors and target is None:
            errors = {capture.ANSWER: "This form no longer points at anything; close it and try again."}
        if errors:
            await ack(response_action="errors", errors=errors)
            return None
        return user, target, question, answer

    def form(callback_id: str, action_id: str):
        """Register handler(ack, client, user, id, question, answer) for a submitted form that read_form let by."""
        def register_handler(handler):
            @app.view(callback_id)
            async def submitted(ack, body, view, client):
                fields = await read_form(ack, body, view, action_id)
                if fields is not None:
                    await handler(ack, client, *fields)
            return handler
        return register_handler

    @form(review.EDIT_MODAL, review.EDIT)
    async def on_edit_submit(ack, client, user: str, ex_id: int, question: str, answer: str) -> None:
        # Saved before the ack (one short transaction) so that a clash or a stale example is
        # shown in the form itself, where the curator can still act on it.
        outcome, ex = await deps.db(lambda s: save_edit(s, ex_id, question, answer, user))
        metrics.events.labels(kind="curation", outcome=f"edit:{outcome}").inc()
        if outcome != CurationOutcome.DONE:
            message = (review.clash(ex.id) if outcome == CurationOutcome.CLASH
                       else review.stale(ex) if outcome == CurationOutcome.STALE
                       else review.decided_note(CurationOutcome.GONE, ex_id, None, ""))
            await ack(response_action="errors", errors={capture.ANSWER: message})
            return
        await ack()
        await _after_edit(deps, client, user, edit_origins.pop((user, "example", ex_id), None),
                          review.edit_saved(ex_id))

    @app.action(review.ANSWER)
    async def on_answer(ack, body, respond, client):
        await ack()
        if await refused(body, respond, review.ANSWER):
            return
        fb_id = _example_id(body["actions"][0].get("value"))
        fb = await deps.db(lambda s: feedback.get(s, fb_id)) if fb_id is not None else None
        if fb is None or not feedback.waiting(fb):
            note = f"Question {fb_id} was already answered or set aside; nothing changed."
            await respond(replace_original=True, **await review_message(deps, note=note))
            return
        if body.get("response_url"):
            edit_origins[(body["user"]["id"], "question", fb.id)] = body["response_url"]
        await client.views_open(trigger_id=body["trigger_id"], view=review.answer_modal(fb))

    @form(review.ANSWER_MODAL, review.ANSWER)
    async def on_answer_submit(ack, client, user: str, fb_id: int, question: str, answer: str) -> None:
        outcome, fb, ex = await deps.db(lambda s: feedback.answer(s, fb_id, answer, user, question))
        metrics.events.labels(kind="curation", outcome=f"answer:{outcome}").inc()
        if fb is None:
            await ack(response_action="errors", errors={capture.ANSWER: f"Question {fb_id} no longer exists."})
            return
        await ack()
        note = review.answered_note(fb_id, ex.id if ex else None)
        await _after_edit(deps, client, user, edit_origins.pop((user, "question", fb_id), None), note)

    @app.action(review.DISMISS)
    async def on_dismiss(ack, body, respond):
        await ack()
        if await refused(body, respond, review.DISMISS):
            return
        fb_id = _example_id(body["actions"][0].get("value"))
        fb = await deps.db(lambda s: feedback.dismiss(s, fb_id, body["user"]["id"])) if fb_id is not None else None
        metrics.events.labels(kind="curation", outcome=f"dismiss:{'ok' if fb else 'gone'}").inc()
        note = review.dismissed_note(fb_id) if fb else f"Question {fb_id} no longer exists; nothing changed."
        await respond(replace_original=True, **await review_message(deps, note=note))


async def _after_edit(deps: Deps, client, user: str, origin: str | None, note: str) -> None:
    """Refresh the review list the form came from, with `note` on top; a DM saying it when the list cannot be
    reached."""
    if origin:
        try:
            reply = await AsyncWebhookClient(origin).send(replace_original=True,
                                                          **await review_message(deps, note=note))
            if reply.status_code == 200:
                return
        except Exception as exc:  # noqa: BLE001  (an expired response_url: fall back to a DM)
            log.warning("could not refresh the review list: %s", exc)
    await tell(client, user, note, failed="could not confirm an edit")
