"""The asking listeners: a mention answered in its thread (DMs are bot.agent's), and the feedback buttons (and the
older 👍/👎) with the correction form."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.asking import render
from bot.asking.answer import answer_question
from bot.asking.rules import answers_mention, streams_mention
from bot.asking.streamed import answer_streamed
from bot.slack.ids import parse_id
from bot.slack.markup import strip_emoji
from bot.slack.post import tell
from bot.slack.questions import is_customer_question, question_text
from core.states import Rating
from storage import channels, feedback

log = logging.getLogger("ftbot.bot")


async def on_mention(event, body, client, context):
    deps = context["deps"]
    mode = await deps.db(lambda s: channels.mode_of(s, event.get("channel", "")))
    from_team = deps.is_team(event.get("user"))
    if not answers_mention(mode, from_team=from_team):  # counted: a mention left alone is still seen
        context["metrics"].events.labels(kind="mention", outcome=f"not answered in {mode} mode").inc()
    elif await deps.first_delivery(body):
        await _ask(event, client, context, streamed=streams_mention(mode, from_team=from_team))


async def _ask(event: dict, client, context, *, streamed: bool) -> None:
    deps, bot_user_id = context["deps"], context.get("bot_user_id")
    if not is_customer_question(event, bot_user_id):
        return
    # The channel's kind, recorded now, gives a correction of this answer its audience (storage.audience).
    await deps.channels.learn(client, event["channel"], deps.db)
    where = {"user": event["user"], "channel": event["channel"], "thread_ts": event.get("thread_ts") or event["ts"],
             "ts": event["ts"]}
    question = question_text(event.get("text", ""), bot_user_id)
    if streamed and strip_emoji(question):  # the team member reads it as it is written; the channel, once checked
        await answer_streamed(deps, client, context["metrics"], question=question, shared=True, **where)
    else:
        await answer_question(deps, client, context["metrics"], question=event.get("text", ""),
                              bot_user_id=bot_user_id, **where)


async def on_up(ack, body, respond, context):
    """👍 on an answer sent before the feedback buttons."""
    await ack()
    await thumbs_up(context, parse_id(body["actions"][0].get("value")), body["user"]["id"], respond)


async def on_down(ack, body, respond, client, context):
    """👎 on an answer sent before the feedback buttons."""
    await ack()
    await thumbs_down(context, client, parse_id(body["actions"][0].get("value")), body["trigger_id"], respond)


async def on_feedback(ack, body, respond, client, context):
    """Slack's feedback buttons under an answer: the value says which was pressed."""
    await ack()
    which, fb_id = render.feedback_click(body["actions"][0].get("value"))
    if which == "up":
        await thumbs_up(context, fb_id, body["user"]["id"], respond)
    else:
        await thumbs_down(context, client, fb_id, body["trigger_id"], respond)


async def thumbs_up(context, fb_id: int | None, user: str, respond) -> None:
    """The answer's rating, and thanks (ephemeral)."""
    deps = context["deps"]
    fb = await deps.db(lambda s: feedback.rate(s, fb_id, Rating.UP, user)) if fb_id else None
    context["metrics"].events.labels(kind="feedback", outcome="up" if fb else "gone").inc()
    await respond(text=render.THANKS if fb else render.NOT_FOUND, response_type="ephemeral", replace_original=False)


async def thumbs_down(context, client, fb_id: int | None, trigger_id: str, respond) -> None:
    """The correction form (rated 👎 when it is sent)."""
    fb = await context["deps"].db(lambda s: feedback.get(s, fb_id)) if fb_id else None
    if fb is None:
        await respond(text=render.NOT_FOUND, response_type="ephemeral", replace_original=False)
        return
    try:
        await client.views_open(trigger_id=trigger_id, view=render.correction_modal(fb))
    except SlackApiError as exc:  # the trigger lives 3 s
        log.warning("could not open the correction form: %s", exc.response.get("error"))
        await respond(text=render.FORM_TOO_SLOW, response_type="ephemeral", replace_original=False)


async def on_correction(ack, body, view, client, context):
    deps, user, fb_id = context["deps"], body["user"]["id"], parse_id(view.get("private_metadata"))
    correction = render.submitted_correction(view)
    if not strip_emoji(correction):
        await ack(response_action="errors",
                  errors={render.CORRECTION: "Write the right answer; it can't be empty or only emoji."})
        return
    # Stored before the ack (one short transaction) so a vanished answer is said in the form itself.
    outcome, fb, example = await deps.db(lambda s: feedback.correct(s, fb_id, correction, user)) \
        if fb_id else (feedback.GONE, None, None)
    context["metrics"].events.labels(kind="feedback", outcome=f"down:{outcome}").inc()
    if fb is None:
        await ack(response_action="errors", errors={render.CORRECTION: render.correction_stored(outcome, None)})
        return
    await ack()
    await tell(client, user, render.correction_stored(outcome, example), channel=fb.source.get("channel"),
               thread_ts=fb.source.get("thread_ts"), failed="could not confirm a correction")
