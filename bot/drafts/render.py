"""Draft cards for the team (Send / Edit & send / Discard, or Answer when the bot declined), their forms, the
hand-off card of auto mode, and what the bot says about drafts and channel modes."""

from __future__ import annotations

from typing import Any

from bot.asking.render import reused_by
from bot.slack.blocks import SECTION_LIMIT, button, context, escape, section
from bot.slack.permalinks import permalink
from core.modes import policy
from core.states import ChannelMode, DiscardReason, DraftStatus, GroundingReason, ModeProblem
from core.text import clip
from storage.channels import Ladder, ModeChange
from storage.models import Draft

SEND, EDIT, DISCARD, ANSWER = "draft_send", "draft_edit", "draft_discard", "draft_answer"
EDIT_MODAL, DISCARD_MODAL = "draft_edit_modal", "draft_discard_modal"
TEXT, REASON, VALUE = "text", "reason", "value"  # block ids, and the action id inside each
FIELD_LIMIT = 3000  # the most a plain_text_input holds

REASONS = {DiscardReason.WRONG: "Wrong", DiscardReason.OUTDATED: "Outdated",
           DiscardReason.NOT_A_QUESTION: "Not a question", DiscardReason.OTHER: "Other"}
_GROUNDING = {GroundingReason.GROUNDED: "backed by an approved answer",
              GroundingReason.NO_CONTEXT: "no approved answer is close",
              GroundingReason.MODEL_DECLINED: "the model said it does not know",
              GroundingReason.UNSUPPORTED: "states something no approved answer states",
              GroundingReason.WEAK_SOURCE: "the approved answer behind it is only loosely related",
              GroundingReason.FAR_FROM_BEST: "it follows a weaker match than the best one"}

ONLY_TEAM = "Only the support team (agents, curators and admins) can act on drafts; nothing changed."
FORM_TOO_SLOW = "Slack took too long to open the form; please press the button again."
POST_FAILED = "I couldn't post in the customer's thread ({error}); the draft is waiting again, so try once more."
HANDOFF_REPLY = ("I don't have an approved answer for this yet, so I've passed your question to the support team; "
                 "someone will follow up here.")
SOLVED_THANKS = "Glad it helped — thanks for letting us know!"
SOLVED_ONLY_ASKER = "Only the person who asked can mark this as solved."


def thread_link(workspace_url: str, channel: str, ts: str) -> str:
    if not workspace_url:
        return f"<#{channel}>"
    return f"<{permalink(workspace_url, channel, ts)}|thread in <#{channel}>>"


def _who(draft: Draft) -> str:
    if draft.reused:  # no model wrote it: an approved answer, given as it is (core.reuse)
        return reused_by(draft.reused.get("approved_by"), draft.reused.get("link"))
    if draft.written_by:
        return f"written by <@{draft.written_by}> for a knowledge gap (`/ft gaps`)"
    return f"drafted by {escape(draft.version_name)}" if draft.version_name else \
        f"drafted by the base model {escape(draft.model or '')}".rstrip()


def _verdict(draft: Draft) -> str:
    g = draft.grounding or {}
    if not g:
        return "grounding: not checked (retrieval is off)"
    reason = _GROUNDING.get(g.get("reason", ""), g.get("reason", ""))
    score = f", best match {g['top_score']:.2f}" if isinstance(g.get("top_score"), (int, float)) else ""
    return f"grounding: {'send' if g.get('send') else 'decline'} — {reason}{score}"


def card(draft: Draft, *, sources: list[str], workspace_url: str = "") -> dict[str, Any]:
    """The draft card in the drafts channel: question, draft, sources, verdict, version, and the buttons."""
    asker = f"<@{draft.asker}>" if draft.asker else "someone"
    blocks = [_question(draft, workspace_url)]
    if draft.written_by:  # the bot declined; a person wrote the answer for the gap it belongs to
        blocks += _answer(draft.answer)
    elif draft.status == DraftStatus.FAILED:
        blocks.append(section(":warning: *The model server gave no answer* (see the bot's log). Answer it here; "
                              "the question also waits in the curators' queue (`/ft review`)."))
    elif draft.declined:
        blocks.append(section(":grey_question: *No approved answer backs a reply.* The question also waits in "
                              "the curators' queue (`/ft review`)."))
    else:
        blocks += _answer(draft.answer)
    line = f"{_who(draft)} · {_verdict(draft)}"
    if sources and not draft.reused:
        line += " · sources: " + ", ".join(sources)
    blocks.append(context(line))
    blocks.append(_actions(draft))
    text = f"Draft for a question from {asker}" if _sendable(draft) else f"Question from {asker} needs an answer"
    return {"text": text, "blocks": blocks}


def _sendable(draft: Draft) -> bool:
    """The card offers an answer to send: the model's, or one written for a knowledge gap."""
    return not draft.declined or bool(draft.written_by)


def _answer(answer: str) -> list[dict[str, Any]]:
    text = answer.strip()
    return [section(("*Draft:*\n" if i == 0 else "") + escape(text[i:i + SECTION_LIMIT]))
            for i in range(0, max(len(text), 1), SECTION_LIMIT)]


def writing_card(draft: Draft, text: str, *, workspace_url: str = "") -> dict[str, Any]:
    """The card while the model writes the draft: the question and the words so far. The finished card (card())
    replaces it, with the grounding check's verdict and the buttons."""
    asker = f"<@{draft.asker}>" if draft.asker else "someone"
    so_far = escape(clip(text.strip(), SECTION_LIMIT - 40))
    return {"text": f"Drafting an answer to a question from {asker}…", "blocks": [
        _question(draft, workspace_url),
        section(f"*Drafting…*\n{so_far} ▍" if so_far else "*Drafting…*"),
        context("The grounding check reads the whole draft once it is written; Send comes with it."),
    ]}


def _question(draft: Draft, workspace_url: str) -> dict[str, Any]:
    asker = f"<@{draft.asker}>" if draft.asker else "someone"
    return section(f"*Question* from {asker} · {thread_link(workspace_url, draft.channel_id, draft.question_ts)}\n"
                   f">{escape(clip(draft.question, 1200)).replace(chr(10), chr(10) + '>')}")


def _actions(draft: Draft) -> dict[str, Any]:
    if not _sendable(draft):
        elements = [button("Answer", ANSWER, draft.id, style="primary", emoji=True),
                    button("Discard", DISCARD, draft.id, emoji=True)]
    else:
        elements = [button("Send", SEND, draft.id, style="primary", emoji=True),
                    button("Edit & send", EDIT, draft.id, emoji=True),
                    button("Discard", DISCARD, draft.id, style="danger", emoji=True)]
    return {"type": "actions", "block_id": f"draft_{draft.id}", "elements": elements}


def handoff_card(draft: Draft, *, workspace_url: str = "") -> dict[str, Any]:
    """Auto mode declined: the team is asked to answer; Answer posts in the customer's thread."""
    asker = f"<@{draft.asker}>" if draft.asker else "someone"
    return {"text": f"Hand-off: a question from {asker} needs an answer", "blocks": [
        section(f":raising_hand: *Hand-off* · question from {asker} · "
                f"{thread_link(workspace_url, draft.channel_id, draft.question_ts)}\n"
                f">{escape(clip(draft.question, 1200)).replace(chr(10), chr(10) + '>')}"),
        context(f"The bot told the asker the team will follow up ({_verdict(draft)}). Answer here, or reply in "
                "the thread."),
        {"type": "actions", "block_id": f"draft_{draft.id}", "elements": [button("Answer", ANSWER, draft.id,
                                                                                 style="primary", emoji=True)]}]}


def offered_below(draft: Draft, *, workspace_url: str = "") -> dict[str, Any]:
    """The earlier card of a draft offered a written answer (bot.drafts.flow.offer_card): pointed at the newer one."""
    line = (f":memo: <@{draft.written_by}> wrote an answer for this question's knowledge gap; it waits in a newer "
            "card below.")
    return {"text": line, "blocks": closed([_question(draft, workspace_url)], line)}


def closed(blocks: list[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    """The card once acted on: the buttons give way to what happened."""
    kept = [b for b in blocks or [] if b.get("type") != "actions"]
    return kept + [context(outcome)]


def outcome_line(draft: Draft) -> str:
    by = f"<@{draft.acted_by}>" if draft.acted_by else "someone"
    if draft.status == DraftStatus.SENT:
        return f":white_check_mark: Sent unchanged by {by}."
    if draft.status == DraftStatus.EDITED:
        change = "answered" if draft.declined else f"sent after an edit ({draft.edit_chars} characters changed)"
        return f":pencil2: {change[:1].upper() + change[1:]} by {by}."
    if draft.status == DraftStatus.DISCARDED:
        return f":wastebasket: Discarded by {by}: {REASONS.get(draft.discard_reason or '', 'other').lower()}."
    if draft.status == DraftStatus.SUPERSEDED:
        return f":speech_balloon: Answered by hand in the thread by {by}."
    if draft.status == DraftStatus.EXPIRED:
        return ":hourglass: Expired: nobody acted on it in time."
    if draft.status == DraftStatus.HANDED_OFF and draft.sent_ts:
        return f":white_check_mark: Answered by {by}."
    return f"Now {draft.status.replace('_', ' ')}."


def already(draft: Draft | None) -> str:
    """A click on a draft someone else acted on first (or that is gone)."""
    if draft is None:
        return "That draft no longer exists; nothing changed."
    if draft.status == DraftStatus.SENDING:
        return f"<@{draft.acted_by}> is sending this draft right now; nothing changed."
    return f"Too late: {outcome_line(draft)[0].lower() + outcome_line(draft)[1:]} Nothing changed."


def sent_message(text: str, *, agent: str, draft: Draft) -> dict[str, Any]:
    """The answer in the customer's thread, posted as the bot, naming the agent who sent it."""
    body = text.strip()
    blocks = [section(escape(body[i:i + SECTION_LIMIT])) for i in range(0, len(body), SECTION_LIMIT)]
    blocks.append(context(f"Sent by <@{agent}> · ftbot"))
    return {"text": clip(escape(body), 3000), "blocks": blocks}


def _text_input(label: str, value: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                               "max_length": FIELD_LIMIT}
    if value:
        element["initial_value"] = value[:FIELD_LIMIT]
    return {"type": "input", "block_id": TEXT, "label": {"type": "plain_text", "text": label}, "element": element}


def edit_modal(draft: Draft) -> dict[str, Any]:
    """Edit & send (prefilled with the draft) or Answer (empty): what is submitted is posted as it is."""
    answering = not _sendable(draft) or not draft.answer
    return {
        "type": "modal", "callback_id": EDIT_MODAL, "private_metadata": str(draft.id),
        "title": {"type": "plain_text", "text": "Answer the customer" if answering else "Edit and send"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [section(f"*Question:* {escape(clip(draft.question, 1500))}"),
                   _text_input("Your answer" if answering else "The answer to send",
                               "" if answering else draft.answer)],
    }


def discard_modal(draft: Draft) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": label}, "value": value} for value, label in REASONS.items()]
    return {
        "type": "modal", "callback_id": DISCARD_MODAL, "private_metadata": str(draft.id),
        "title": {"type": "plain_text", "text": "Discard the draft"},
        "submit": {"type": "plain_text", "text": "Discard"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "input", "block_id": REASON, "label": {"type": "plain_text", "text": "Why?"},
                    "element": {"type": "radio_buttons", "action_id": VALUE, "options": options}}],
    }


def submitted_text(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return (((values.get(TEXT) or {}).get(VALUE) or {}).get("value") or "").strip()


def submitted_reason(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    chosen = ((values.get(REASON) or {}).get(VALUE) or {}).get("selected_option") or {}
    return chosen.get("value") or ""


# --- channel modes -----------------------------------------------------------------------------------------

_MODE_SAYS = {ChannelMode.OFF: "off: the bot stays silent here",
              ChannelMode.MENTION: "mention: the bot answers when someone mentions it",
              ChannelMode.DRAFT: "draft: customers' questions get a draft the team sends, edits or discards",
              ChannelMode.AUTO: "auto: the bot answers customers' questions itself and hands off what it can't"}



def channel_status(channel: str, mode: str, drafts_channel: str | None, record: tuple[int, int]) -> str:
    unchanged, acted = record
    lines = [f"<#{channel}> runs in *{_MODE_SAYS.get(mode, mode)}*."]
    if drafts_channel:
        lines.append(f"Drafts and hand-offs go to <#{drafts_channel}>.")
    lines.append(f"Record: {unchanged} of the last {acted} drafts acted on were sent unchanged." if acted
                 else "Record: no drafts acted on yet.")
    return "\n".join(lines)


def mode_change(channel: str, mode: str, change: ModeChange, ladder: Ladder) -> str:
    if change.problem == ModeProblem.NEEDS_DRAFTS_CHANNEL:
        return ("Draft and auto modes need a drafts channel for the team's cards, e.g. "
                "`/ft channel mode draft #support-drafts` (a private channel I'm in).")
    if change.problem == ModeProblem.SAME_CHANNEL:
        return "The drafts channel must be another channel: customers would see the team's drafts."
    if change.problem == ModeProblem.NOT_EARNED:
        unchanged, judged = change.record
        shown = f"{unchanged} of the last {judged} drafts judged were sent unchanged" if judged else \
            "no drafts acted on yet"
        return (f":warning: <#{channel}> has not earned auto mode yet: {shown} (auto asks for at least "
                f"{round(ladder.min_unchanged * 100)}% of at least {ladder.min_drafts}). To switch anyway, run "
                f"`/ft channel mode auto confirm`; the change is recorded with your name and this record.")
    where = f" Drafts go to <#{change.drafts_channel}>." if change.drafts_channel and \
        policy(mode).needs_drafts_channel else ""
    return f":white_check_mark: <#{channel}> now runs in *{_MODE_SAYS[mode]}*.{where}" + \
        (f" ({change.note})" if change.note else "")


def form_for(action_id: str, draft: Draft) -> dict[str, Any]:
    """The form a card's button opens: Edit & send and Answer share the edit form; Discard asks for a reason."""
    return discard_modal(draft) if action_id == DISCARD else edit_modal(draft)
