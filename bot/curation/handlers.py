"""The curators' listeners: each checks the role server-side, changes one row in one transaction
(storage.examples.decide / save_edit, storage.feedback) and shows the review list again."""

from __future__ import annotations

import logging

from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.capture import render as capture
from bot.curation import render as review
from bot.curation.review import review_message
from bot.deps import Deps
from bot.slack.ids import parse_id
from bot.slack.post import tell
from core.states import CurationOutcome, ExampleStatus
from storage import feedback
from storage.examples import decide, save_edit
from storage.models import Example

log = logging.getLogger("ftbot.bot")
DECISIONS = {review.APPROVE: ExampleStatus.APPROVED, review.REJECT: ExampleStatus.REJECTED}
NO_EXAMPLE = "That button does not point at an example."


async def _refused(context, body: dict, respond) -> bool:
    """Server-side role check; a refusal is said ephemerally and nothing changes."""
    if context["deps"].is_curator(body["user"]["id"]):
        return False
    context["metrics"].events.labels(kind="curation", outcome="refused").inc()
    await respond(text=review.only_curators(body["actions"][0]["action_id"]), response_type="ephemeral",
                  replace_original=False)
    return True


async def on_decision(ack, body, respond, context):
    await ack()
    if await _refused(context, body, respond):
        return
    deps, action_id = context["deps"], body["actions"][0]["action_id"]
    ex_id, status = parse_id(body["actions"][0].get("value")), DECISIONS[action_id]
    if ex_id is None:
        await respond(text=NO_EXAMPLE, replace_original=False)
        return
    outcome, ex = await deps.db(lambda s: decide(s, ex_id, status, body["user"]["id"]))
    context["metrics"].events.labels(kind="curation", outcome=f"{status}:{outcome}").inc()
    note = review.decided_note(outcome, ex_id, ex, status)
    await respond(replace_original=True, **await review_message(deps, note=note))


async def on_edit(ack, body, respond, client, context):
    await ack()
    if await _refused(context, body, respond):
        return
    deps, user, ex_id = context["deps"], body["user"]["id"], parse_id(body["actions"][0].get("value"))
    if ex_id is None:
        await respond(text=NO_EXAMPLE, replace_original=False)
        return
    ex = await deps.db(lambda s: s.get(Example, ex_id))
    if ex is None or ex.status != ExampleStatus.CANDIDATE:
        note = review.stale(ex) if ex else review.decided_note(CurationOutcome.GONE, ex_id, None, "")
        await respond(replace_original=True, **await review_message(deps, note=note))
        return
    if body.get("response_url"):  # saving the form refreshes the list it came from
        deps.memory.edit_origins[(user, "example", ex_id)] = body["response_url"]
    await client.views_open(trigger_id=body["trigger_id"], view=review.edit_modal(ex))


async def _read_form(ack, body, view, deps: Deps, action_id: str) -> tuple[str, int, str, str] | None:
    """(curator, id, question, answer) of a submitted Edit or Answer form; None once the form shows why not."""
    user, target = body["user"]["id"], parse_id(view.get("private_metadata"))
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


def _form(action_id: str):
    """A view listener that reads the submitted form (_read_form) and, when it passes, calls
    handler(ack, client, context, curator, id, question, answer)."""
    def wrap(handler):
        async def listener(ack, body, view, client, context):
            fields = await _read_form(ack, body, view, context["deps"], action_id)
            if fields is not None:
                await handler(ack, client, context, *fields)
        return listener
    return wrap


@_form(review.EDIT)
async def on_edit_submit(ack, client, context, user: str, ex_id: int, question: str, answer: str) -> None:
    deps = context["deps"]
    # Saved before the ack (one short transaction) so that a clash or a stale example is
    # shown in the form itself, where the curator can still act on it.
    outcome, ex = await deps.db(lambda s: save_edit(s, ex_id, question, answer, user))
    context["metrics"].events.labels(kind="curation", outcome=f"edit:{outcome}").inc()
    if outcome != CurationOutcome.DONE:
        await ack(response_action="errors", errors={capture.ANSWER: review.edit_refused(outcome, ex, ex_id)})
        return
    await ack()
    await _after_edit(deps, client, user, deps.memory.edit_origins.pop((user, "example", ex_id), None),
                      review.edit_saved(ex_id))


async def on_answer(ack, body, respond, client, context):
    await ack()
    if await _refused(context, body, respond):
        return
    deps, fb_id = context["deps"], parse_id(body["actions"][0].get("value"))
    fb = await deps.db(lambda s: feedback.get(s, fb_id)) if fb_id is not None else None
    if fb is None or not feedback.waiting(fb):
        note = f"Question {fb_id} was already answered or set aside; nothing changed."
        await respond(replace_original=True, **await review_message(deps, note=note))
        return
    if body.get("response_url"):
        deps.memory.edit_origins[(body["user"]["id"], "question", fb.id)] = body["response_url"]
    await client.views_open(trigger_id=body["trigger_id"], view=review.answer_modal(fb))


@_form(review.ANSWER)
async def on_answer_submit(ack, client, context, user: str, fb_id: int, question: str, answer: str) -> None:
    deps = context["deps"]
    outcome, fb, ex = await deps.db(lambda s: feedback.answer(s, fb_id, answer, user, question))
    context["metrics"].events.labels(kind="curation", outcome=f"answer:{outcome}").inc()
    if fb is None:
        await ack(response_action="errors", errors={capture.ANSWER: f"Question {fb_id} no longer exists."})
        return
    await ack()
    note = review.answered_note(fb_id, ex.id if ex else None)
    await _after_edit(deps, client, user, deps.memory.edit_origins.pop((user, "question", fb_id), None), note)


async def on_dismiss(ack, body, respond, context):
    await ack()
    if await _refused(context, body, respond):
        return
    deps, fb_id = context["deps"], parse_id(body["actions"][0].get("value"))
    fb = await deps.db(lambda s: feedback.dismiss(s, fb_id, body["user"]["id"])) if fb_id is not None else None
    context["metrics"].events.labels(kind="curation", outcome=f"dismiss:{'ok' if fb else 'gone'}").inc()
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
