"""What happens to a watched channel's question, step by step: a draft card for the team or the bot's own answer
with a hand-off when it declines (as core.modes says for the channel's mode), a draft sent, cards closed, drafts
expired.

The listener is thin: Bolt acks the event first, the row for the question is made once (a retry finds it), the
answer comes from the same path as a mention (bot.asking.compose), and every click moves the draft in one
transaction that checks where it stands, so two agents pressing Send together post once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from slack_sdk.errors import SlackApiError

from bot.asking.answer import answer_blocks, reused_link, source_links
from bot.asking.compose import compose
from bot.deps import Deps
from bot.drafts import render
from bot.drafts.rules import first_status
from bot.drafts.writing import CardWriter
from bot.metrics import BotMetrics
from bot.periodic import Periodic
from bot.slack.markup import strip_emoji
from bot.slack.post import post
from bot.slack.questions import question_text
from core.modes import ModePolicy, policy
from core.states import DraftStatus
from storage import channels, drafts, feedback
from storage.models import Draft, utcnow

log = logging.getLogger("ftbot.bot")


def _ts_time(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


async def handle_question(deps: Deps, client, metrics: BotMetrics, event: dict, mode: str,
                          drafts_channel: str | None, bot_user_id: str | None) -> Draft | None:
    """A customer's new top-level message in a draft or auto channel: one Draft row, answered as a mention would
    be; then the card (draft), or the answer or hand-off (auto). None when it is no question or already handled."""
    channel, ts, user = event["channel"], event["ts"], event.get("user")
    question = question_text(event.get("text", ""), bot_user_id)
    if not strip_emoji(question):
        return None
    draft = await deps.db(lambda s: drafts.open_draft(s, mode=mode, channel_id=channel, question_ts=ts, asker=user,
                                                      question=question, asked_at=_ts_time(ts)))
    if draft is None:  # this question already has its draft (a retry that reached another replica)
        return None
    return await answer_draft(deps, client, metrics, draft, drafts_channel, question)


async def answer_draft(deps: Deps, client, metrics: BotMetrics, draft: Draft, drafts_channel: str | None,
                       question: str | None = None) -> Draft:
    """Answer a draft whose row is made: a new question (as asked), or one the bot stopped answering (recover(),
    from the stored, redacted question). Cancelled (a shutdown's grace ran out), the draft is marked for the next
    sweep to answer."""
    try:
        return await _answer(deps, client, metrics, draft, drafts_channel, question or draft.question)
    except asyncio.CancelledError:
        await deps.db(lambda s: drafts.abandon(s, draft.id))
        log.warning("stopped while answering draft %s; the next sweep or restart answers it", draft.id)
        raise


async def _answer(deps: Deps, client, metrics: BotMetrics, draft: Draft, drafts_channel: str | None,
                  question: str) -> Draft:
    channel, ts, user, mode = draft.channel_id, draft.question_ts, draft.asker, draft.mode
    rules = policy(mode)
    writer = CardWriter(client, drafts_channel, draft, workspace_url=deps.workspace_url) \
        if rules.streams_card and drafts_channel else None
    if writer:
        await writer.start()
        if writer.ts:  # known before its buttons show: a click or an expiry the moment they do closes this card
            await deps.db(lambda s: drafts.note_card(s, draft.id, drafts_channel, writer.ts))
    composed = await compose(deps, question, channel=channel, on_text=writer.write if writer else None)
    status = first_status(rules, failed=bool(composed.error), declined=composed.declined)
    fb_source = composed.source(channel=channel, thread_ts=ts, ts=ts, draft_id=draft.id, mode=mode)
    reused = composed.reused_record()
    if reused:  # the card says whose approved answer it is, and links to where it was given
        reused["link"] = await reused_link(deps, client, composed)

    def store(s) -> Draft:
        # Every question is a Feedback row too: a declined one waits in the curators' queue, an auto answer
        # collects 👍/👎 there.
        fb = feedback.record(s, question=question, answer=composed.text, user=user,
                             version_name=composed.version_name, source=fb_source,
                             declined=composed.declined or bool(composed.error))
        return drafts.record_answer(
            s, draft.id, status=status, answer=composed.text, model_answer=composed.reply.model_answer
            if composed.reply else "", declined=composed.declined or bool(composed.error),
            grounding=composed.reply.grounding.to_json() if composed.reply and composed.reply.grounding else {},
            context=[h.source_key for h in composed.hits or []], prompt=composed.messages,
            version_name=composed.version_name, model=composed.model, feedback_id=fb.id, reused=reused)

    draft = await deps.db(store)
    metrics.answers.labels(outcome=composed.outcome).inc()
    await _first_response(deps, client, draft, composed, rules, drafts_channel, writer)
    draft = await deps.db(lambda s: drafts.get(s, draft.id))  # with the time its first response reached Slack
    metrics.draft_outcome(draft)
    return draft


async def _first_response(deps: Deps, client, draft: Draft, composed, rules: ModePolicy,
                          drafts_channel: str | None, writer: CardWriter | None) -> None:
    """What the channel's mode does with an answered question: the team's card (in place of the one written in
    front of them), the bot's answer, or the hand-off (a reply to the customer and a card for the team)."""
    channel, ts = draft.channel_id, draft.question_ts
    if rules.drafts_card:
        sources = [] if draft.declined else await source_links(deps, client, composed.hits or [], channel)
        await _post_card(deps, client, draft, drafts_channel, render.card(draft, sources=sources,
                                                                          workspace_url=deps.workspace_url),
                         writer=writer)
    elif draft.status == DraftStatus.ANSWERED:
        message = await answer_blocks(deps, client, composed, draft.feedback_id, solved_id=draft.id)
        if await post(client, channel, ts, **message) is not None:
            await deps.db(lambda s: drafts.posted(s, draft.id))
    else:
        if await post(client, channel, ts, text=render.HANDOFF_REPLY) is not None:
            await deps.db(lambda s: drafts.posted(s, draft.id))
        await _post_card(deps, client, draft, drafts_channel,
                         render.handoff_card(draft, workspace_url=deps.workspace_url), first_response=False)


async def _post_card(deps: Deps, client, draft: Draft, drafts_channel: str | None, message: dict,
                     first_response: bool = True, writer: CardWriter | None = None) -> None:
    if not drafts_channel:
        log.warning("channel %s has no drafts channel; draft %s is stored but not shown", draft.channel_id, draft.id)
        return
    ts = await writer.finish(message) if writer else await post(client, drafts_channel, **message)
    if ts is not None:
        if first_response:
            await deps.db(lambda s: drafts.posted(s, draft.id, card_channel=drafts_channel, card_ts=ts))
        else:
            await deps.db(lambda s: drafts.note_card(s, draft.id, drafts_channel, ts))


async def close_card(client, draft: Draft, blocks: list | None = None) -> None:
    """Replace the card's buttons with what became of the draft (no second click can act on it)."""
    if not (draft.drafts_channel and draft.card_ts):
        return
    shown = blocks if blocks else render.card(draft, sources=[])["blocks"] if policy(draft.mode).drafts_card \
        else render.handoff_card(draft)["blocks"]
    line = render.outcome_line(draft)
    try:
        await client.chat_update(channel=draft.drafts_channel, ts=draft.card_ts, text=line,
                                 blocks=render.closed(shown, line))
    except SlackApiError as exc:
        log.warning("could not update draft card %s: %s", draft.id, exc.response.get("error"))


async def send(deps: Deps, client, metrics: BotMetrics, draft_id: int, user: str, text: str | None,
               card_blocks: list | None = None) -> tuple[Draft | None, str | None]:
    """Post a claimed draft (text None: unchanged) in the customer's thread and store the pair.
    Returns (draft, None) when sent, or (the draft as it stands, why not)."""
    claimed = await deps.db(lambda s: drafts.claim(s, draft_id, user))
    if claimed is None:
        current = await deps.db(lambda s: drafts.get(s, draft_id))
        return current, render.already(current)
    body = claimed.answer if text is None else text
    ts = await post(client, claimed.channel_id, claimed.question_ts,
                     **render.sent_message(body, agent=user, draft=claimed))
    if ts is None:
        await deps.db(lambda s: drafts.release(s, draft_id))
        return claimed, render.POST_FAILED.format(error="Slack refused the message")
    draft, outcome, example = await deps.db(lambda s: drafts.sent(s, draft_id, text=body, sent_ts=ts, by=user,
                                                                  curator=deps.is_curator(user)))
    if draft.feedback_id is not None and example is not None:  # the curators' queue no longer waits on it
        await deps.db(lambda s: feedback.answered_by_draft(s, draft.feedback_id, example.id, body))
    if policy(draft.mode).hands_off_on_decline:  # a hand-off answered: still a hand-off, now with a human response
        metrics.first_response(draft, "human")
    else:
        metrics.draft_outcome(draft)
    await close_card(client, draft, card_blocks)
    return draft, None


async def offer_card(deps: Deps, client, draft: Draft, drafts_channel: str) -> None:
    """A waiting draft offered an answer written for a knowledge gap (bot.gaps, storage.drafts.offer): its card
    posted anew where the channel's cards go now, with Send / Edit & send / Discard, and the earlier card, still
    waiting, pointed at it (its buttons would act on the same draft, but the newer card is where the team looks)."""
    if draft.drafts_channel and draft.card_ts:
        try:
            await client.chat_update(channel=draft.drafts_channel, ts=draft.card_ts,
                                     **render.offered_below(draft, workspace_url=deps.workspace_url))
        except SlackApiError as exc:
            log.warning("could not update draft card %s: %s", draft.id, exc.response.get("error"))
    ts = await post(client, drafts_channel, failed="could not post a draft card",
                    **render.card(draft, sources=[], workspace_url=deps.workspace_url))
    if ts is not None:
        await deps.db(lambda s: drafts.note_card(s, draft.id, drafts_channel, ts))


async def sweep(deps: Deps, client, metrics: BotMetrics) -> list[Draft]:
    """Expire the drafts nobody acted on within FT_DRAFT_TTL_H, and say so on their cards."""
    expired = await deps.db(lambda s: drafts.expire(s, deps.draft_ttl_h))
    for draft in expired:
        metrics.draft_outcome(draft)
        await close_card(client, draft)
    return expired


# A draft with no answer this long after its row was made was left by a bot that stopped (killed, or its shutdown
# grace ran out): a live answer records within answer_timeout_s, well under this.
RECOVER_AFTER_S = 60.0


async def recover(deps: Deps, client, metrics: BotMetrics, after_s: float = RECOVER_AFTER_S) -> list[Draft]:
    """Answer the drafts a stopped bot left without an answer (each claimed once per sweep: storage.drafts)."""
    stale = await deps.db(lambda s: drafts.unanswered(s, utcnow() - timedelta(seconds=after_s)))
    answered = []
    for draft in stale:
        row = await deps.db(lambda s, channel=draft.channel_id: channels.get(s, channel))
        log.info("answering draft %s, left unanswered when the bot stopped", draft.id)
        answered.append(await answer_draft(deps, client, metrics, draft, row.drafts_channel if row else None))
    return answered


class Sweeper(Periodic):
    """Runs recover() and sweep() every `every_s` inside the bot, the first time at start (started and stopped with
    its HTTP app)."""

    what = "recovering and expiring drafts"

    def __init__(self, deps: Deps, client, metrics: BotMetrics, every_s: float = 60.0):
        super().__init__()
        self.deps, self.client, self.metrics, self.every_s = deps, client, metrics, every_s

    async def tick(self) -> list[Draft]:
        await recover(self.deps, self.client, self.metrics)
        return await sweep(self.deps, self.client, self.metrics)
