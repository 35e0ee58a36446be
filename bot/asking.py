"""Asking the bot (@mention, `/ft ask`; DMs are bot.agent's) and the 👍/👎 feedback on its answers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.deps import Deps
from bot.markup import strip_emoji, to_plain
from bot.metrics import BotMetrics
from bot.render import answer as render
from bot.tell import tell
from core.prompt import prompt_messages
from core.states import AnswerOutcome, ChannelKind, ChannelMode, ExampleSource, Rating
from serving import answering
from serving.client import ModelClient, ModelServerError, ModelServerUnavailable
from storage import channels, feedback
from storage.audience import link_scope
from storage.versions import deployed

log = logging.getLogger("ftbot.bot")

# The served base model's name, asked once per client (it only changes when the server is redeployed).
_base_names: "weakref.WeakKeyDictionary[ModelClient, str]" = weakref.WeakKeyDictionary()


def question_text(text: str, bot_user_id: str | None) -> str:
    """The message without the bot's own mention, as plain text."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text or "")
    return to_plain(text)


def deployed_name(session: Session) -> str | None:
    version = deployed(session)
    return version.name if version else None


async def _base_model(client: ModelClient) -> str:
    name = _base_names.get(client)
    if name is None:
        name = _base_names[client] = await client.base_model()
    return name


@dataclass
class Composed:
    """One question answered as the bot answers it, before anything is posted: the mention, a draft card and an
    auto answer all start here, so a draft is exactly what the bot would have sent."""

    question: str
    model: str  # the served name that answered ("" when the server could not be reached)
    version_name: str | None  # the deployed version; None: the base model
    hits: list | None  # the retrieved pairs (None: retrieval off or failed)
    reply: answering.Answer | None
    outcome: AnswerOutcome  # the metrics' label
    error: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)  # what the model was asked
    channel: str | None = None  # where it was asked: it decides what may be retrieved and linked

    @property
    def text(self) -> str:
        return "" if self.error or self.reply is None else self.reply.text

    @property
    def declined(self) -> bool:
        return self.reply is not None and self.reply.declined

    def source(self, **where: Any) -> dict[str, Any]:
        """The Feedback row's source: where it was asked, what answered, what it drew on and the verdict."""
        src = {**where, "model": self.model or None, "context": [h.source_key for h in self.hits or []]}
        if self.reply is not None and self.reply.grounding is not None:
            src["grounding"] = self.reply.grounding.to_json()
            src["model_answer"] = self.reply.model_answer
        if self.error:
            src["error"] = self.error[:500]
        return src


async def compose(deps: Deps, question: str, *, channel: str | None = None,
                  on_text: Callable[[str], Awaitable[None]] | None = None) -> Composed:
    """Retrieval, the model and the grounding check for one (plain-text) question; never raises for the model
    server's failures: they come back as the outcome. channel: where it was asked. on_text: the model's text,
    streamed to it piece by piece before the check (serving.answering.answer)."""
    version_name = await deps.db(deployed_name)
    hits = await retrieve(deps, question, channel=channel)
    context = [(h.question, h.answer) for h in hits] if hits is not None else None
    composed = Composed(question=question, model=version_name or "", version_name=version_name, hits=hits,
                        reply=None, outcome=AnswerOutcome.OK, channel=channel,
                        messages=prompt_messages(deps.system_prompt, question, context))
    try:
        composed.model = version_name or await _base_model(deps.model)
        composed.reply = await answering.answer(deps.model, composed.model, question, hits,
                                                system_prompt=deps.system_prompt, max_tokens=deps.answer_max_tokens,
                                                timeout_s=deps.answer_timeout_s, grounding=deps.grounding,
                                                on_text=on_text)
        if not composed.reply.model_answer:
            composed.outcome, composed.error = AnswerOutcome.ERROR, "the model returned an empty answer"
        elif composed.reply.declined:
            composed.outcome = AnswerOutcome.DECLINED
    except ModelServerUnavailable as exc:
        composed.outcome, composed.error = AnswerOutcome.UNAVAILABLE, str(exc)
    except ModelServerError as exc:
        composed.outcome, composed.error = AnswerOutcome.ERROR, str(exc)
        if not version_name:
            _base_names.pop(deps.model, None)  # the server may now serve another base model
    except Exception as exc:  # a malformed reply: the person still gets a sentence
        log.exception("unexpected reply from the model server")
        composed.outcome, composed.error = AnswerOutcome.ERROR, f"{exc.__class__.__name__}: {exc}"
    if composed.error:
        log.warning("no answer for a question (%s): %s", composed.outcome, composed.error)
    return composed


async def answer_question(deps: Deps, client, metrics: BotMetrics, *, question: str, user: str | None,
                          channel: str, thread_ts: str | None, ts: str | None = None,
                          bot_user_id: str | None = None) -> None:
    """Answer in the thread (`thread_ts=None`: a plain message in the channel), with 👍/👎.

    Every question is kept as a Feedback row, answered or not, so a curator sees what people ask.
    """
    question = question_text(question, bot_user_id)
    if not strip_emoji(question):
        metrics.events.labels(kind="ask", outcome="empty").inc()
        await post(client, channel, thread_ts, user, text=render.USAGE)
        return
    started = time.perf_counter()
    composed = await compose(deps, question, channel=channel)
    fb = await keep(deps, metrics, composed, user=user, thread_ts=thread_ts, ts=ts, started=started)
    if composed.error:
        await post(client, channel, thread_ts, user, text=render.UNAVAILABLE)
        return
    await post(client, channel, thread_ts, user, **await answer_blocks(deps, client, composed, fb.id))


async def keep(deps: Deps, metrics: BotMetrics, composed: Composed, *, user: str | None, thread_ts: str | None,
               ts: str | None, started: float) -> feedback.Feedback:
    """The question as a Feedback row, answered or not, and the answer's metrics."""
    fb = await deps.db(lambda s: feedback.record(
        s, question=composed.question, answer=composed.text, user=user, version_name=composed.version_name,
        source=composed.source(channel=composed.channel, thread_ts=thread_ts, ts=ts), declined=composed.declined))
    metrics.answers.labels(outcome=composed.outcome).inc()
    metrics.answer_seconds.observe(time.perf_counter() - started)
    return fb


async def answer_blocks(deps: Deps, client, composed: Composed, feedback_id: int, **extra: Any
                        ) -> dict[str, Any]:
    """The answer message: the text, who answered, the threads it drew on (none for a refusal), 👍/👎."""
    sources = [] if composed.declined else await source_links(deps, client, composed.hits or [], composed.channel)
    return render.answer_message(composed.text, model=composed.model, version_name=composed.version_name,
                                 feedback_id=feedback_id, sources=sources, **extra)


async def retrieve(deps: Deps, question: str, *, channel: str | None) -> list | None:
    """The nearest approved pairs that may be used in `channel` (serving.retrieval, storage.audience), or None when
    retrieval is off or failed: then the question is asked plainly rather than not at all."""
    if deps.retriever is None:
        return None
    try:
        return await asyncio.to_thread(lambda: deps.retriever.search(question, channel=channel))
    except Exception:
        log.exception("retrieval failed; asking without context")
        return None


async def source_links(deps: Deps, client, hits: list, channel: str | None) -> list[str]:
    """Links to the Slack threads the retrieved answers came from (Slack-imported or labelled examples), when the
    asker may open them: a shareable mark shares a channel's answers, not its threads (storage.audience)."""
    hits = [h for h in hits if link_scope(channel).allows(h.audience, h.channel_id)]
    if not hits:
        return []
    if not deps.workspace_url:
        try:
            deps.workspace_url = (await client.auth_test()).get("url") or ""
        except SlackApiError:
            return []
    links = []
    for hit in hits:
        src = hit.source or {}
        if src.get("kind") == ExampleSource.SLACK and src.get("channel_id") and src.get("ts"):
            link = (f"{deps.workspace_url.rstrip('/')}/archives/{src['channel_id']}/p{src['ts'].replace('.', '')}"
                    + (f"?thread_ts={src['thread_ts']}" if src.get("thread_ts") else ""))
            links.append(f"<{link}|#{src.get('channel') or 'thread'}>")
    return links


async def post(client, channel: str, thread_ts: str | None, user: str | None, **message) -> None:
    """In the thread; as a DM when the bot may not post there (a channel it is not in)."""
    try:
        await client.chat_postMessage(channel=channel, **({"thread_ts": thread_ts} if thread_ts else {}), **message)
        return
    except SlackApiError as exc:
        log.warning("could not answer in %s: %s", channel, exc.response.get("error"))
    if user and user != channel:
        try:
            await client.chat_postMessage(channel=user, **message)
        except SlackApiError as exc:
            log.warning("could not answer by DM either: %s", exc.response.get("error"))


def _is_from_a_person(event: dict, bot_user_id: str | None) -> bool:
    """Not a bot, not the bot itself, not an edit/join/topic change."""
    return (not event.get("subtype") and not event.get("bot_id") and bool(event.get("user"))
            and event.get("user") != bot_user_id)


def _feedback_id(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


async def thumbs_up(deps: Deps, metrics: BotMetrics, fb_id: int | None, user: str, respond) -> None:
    """The answer's rating, and thanks (ephemeral)."""
    fb = await deps.db(lambda s: feedback.rate(s, fb_id, Rating.UP, user)) if fb_id else None
    metrics.events.labels(kind="feedback", outcome="up" if fb else "gone").inc()
    await respond(text=render.THANKS if fb else render.NOT_FOUND, response_type="ephemeral", replace_original=False)


async def thumbs_down(deps: Deps, client, fb_id: int | None, trigger_id: str, respond) -> None:
    """The correction form (rated 👎 when it is sent)."""
    fb = await deps.db(lambda s: feedback.get(s, fb_id)) if fb_id else None
    if fb is None:
        await respond(text=render.NOT_FOUND, response_type="ephemeral", replace_original=False)
        return
    try:
        await client.views_open(trigger_id=trigger_id, view=render.correction_modal(fb))
    except SlackApiError as exc:  # the trigger lives 3 s
        log.warning("could not open the correction form: %s", exc.response.get("error"))
        await respond(text=render.FORM_TOO_SLOW, response_type="ephemeral", replace_original=False)


def register(app: AsyncApp, deps: Deps, metrics: BotMetrics) -> None:
    async def ask(event: dict, client, context) -> None:
        bot_user_id = context.get("bot_user_id")
        if not _is_from_a_person(event, bot_user_id):
            return
        # The channel's kind, recorded now, gives a correction of this answer its audience (storage.audience).
        await deps.channels.learn(client, event["channel"], deps.db,
                                  kind_hint=ChannelKind.DM if event.get("channel_type") == "im" else None)
        await answer_question(deps, client, metrics, question=event.get("text", ""), user=event["user"],
                              channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"],
                              ts=event["ts"], bot_user_id=bot_user_id)

    # Bolt acks events before listeners run (process_before_response=False), so a slow model holds up nothing.
    @app.event("app_mention")
    async def on_mention(event, body, client, context):
        mode = await deps.db(lambda s: channels.mode_of(s, event.get("channel", "")))
        if mode == ChannelMode.OFF:
            return  # switched off here (`/ft channel mode off`)
        if mode in (ChannelMode.DRAFT, ChannelMode.AUTO) and not deps.is_team(event.get("user")):
            return  # a customer's question here gets a draft or an auto answer (bot.drafting), not a second reply
        if await deps.first_delivery(body):
            await ask(event, client, context)

    @app.action(render.UP)
    async def on_up(ack, body, respond):
        await ack()
        await thumbs_up(deps, metrics, _feedback_id(body["actions"][0].get("value")), body["user"]["id"], respond)

    @app.action(render.DOWN)
    async def on_down(ack, body, respond, client):
        await ack()
        await thumbs_down(deps, client, _feedback_id(body["actions"][0].get("value")), body["trigger_id"], respond)

    @app.action(render.FEEDBACK)  # Slack's feedback buttons: the value says which was pressed
    async def on_feedback(ack, body, respond, client):
        await ack()
        which, fb_id = render.feedback_click(body["actions"][0].get("value"))
        if which == "up":
            await thumbs_up(deps, metrics, fb_id, body["user"]["id"], respond)
        else:
            await thumbs_down(deps, client, fb_id, body["trigger_id"], respond)

    @app.view(render.CORRECTION_MODAL)
    async def on_correction(ack, body, view, client):
        user, fb_id = body["user"]["id"], _feedback_id(view.get("private_metadata"))
        correction = render.submitted_correction(view)
        if not strip_emoji(correction):
            await ack(response_action="errors",
                      errors={render.CORRECTION: "Write the right answer; it can't be empty or only emoji."})
            return
        # Stored before the ack (one short transaction) so a vanished answer is said in the form itself.
        outcome, fb, example = await deps.db(lambda s: feedback.correct(s, fb_id, correction, user)) \
            if fb_id else (feedback.GONE, None, None)
        metrics.events.labels(kind="feedback", outcome=f"down:{outcome}").inc()
        if fb is None:
            await ack(response_action="errors", errors={render.CORRECTION: render.correction_stored(outcome, None)})
            return
        await ack()
        await tell(client, user, render.correction_stored(outcome, example), channel=fb.source.get("channel"),
                   thread_ts=fb.source.get("thread_ts"), failed="could not confirm a correction")
