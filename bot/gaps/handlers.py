"""The knowledge-gaps surface's listeners: "Write the answer" opens the form (the support team only), and the form's
submission stores the pair and offers it to the gap's waiting drafts (bot.drafts' cards)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.capture import render as capture
from bot.drafts.flow import offer_card
from bot.gaps import render, rules
from bot.gaps.finding import home_cache
from bot.slack.post import tell
from storage import gap_answers

log = logging.getLogger("ftbot.bot")


async def _say(body: dict, respond, client, text: str) -> None:
    """Ephemeral where the button was (a list or the digest), a DM from App Home (which has no response_url)."""
    if body.get("response_url"):
        await respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        await tell(client, body["user"]["id"], text, failed="could not answer a knowledge-gap button")


async def on_write(ack, body, respond, client, context):
    """"Write the answer": the form with the gap's questions as they are stored now."""
    await ack()
    deps, user = context["deps"], body["user"]["id"]
    if not deps.is_team(user):
        context["metrics"].events.labels(kind="gaps", outcome="refused").inc()
        await _say(body, respond, client, render.ONLY_TEAM)
        return
    t = rules.unpack(body["actions"][0].get("value"))
    members = await deps.db(lambda s: gap_answers.members(s, t.refs)) if t else []
    if not members:
        await _say(body, respond, client, render.STALE)
        return
    question = rules.common_question([m.question for m in members])
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=render.write_modal(members, question, t))
    except SlackApiError as exc:  # the trigger lives 3 s
        log.warning("could not open the knowledge-gap form: %s", exc.response.get("error"))
        await _say(body, respond, client, render.FORM_TOO_SLOW)


async def on_write_submit(ack, body, view, client, context):
    """The written answer: checked in the form (an error keeps what was typed), then one transaction stores the
    pair and offers it; the cards follow, and the writer is told what happened."""
    deps, user = context["deps"], body["user"]["id"]
    question, answer = capture.submitted(view)
    t = rules.unpack(view.get("private_metadata"))
    errors = rules.form_errors(question, answer, deps.max_answer_chars)
    if not errors and not deps.is_team(user):
        errors = {capture.ANSWER: render.ONLY_TEAM}
    if not errors and t is None:
        errors = {capture.ANSWER: render.STALE}
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    curator = deps.is_curator(user)
    written = await deps.db(lambda s: gap_answers.answer_gap(s, t.refs, question=question, answer=answer, by=user,
                                                             curator=curator, viewer=t.channel))
    await ack()
    context["metrics"].events.labels(kind="gaps", outcome=f"written:{written.outcome}").inc()
    home_cache(deps).forget()
    for draft, drafts_channel in written.offered:
        await offer_card(deps, client, draft, drafts_channel)
    await tell(client, user, render.written(written, curator=curator), failed="could not confirm a written answer")
