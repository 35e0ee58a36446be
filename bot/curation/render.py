"""The curators' review list (oldest candidates with Approve / Edit / Reject, then the questions the bot could not
answer, with Answer / Dismiss) and its forms."""

from __future__ import annotations

from typing import Any

from bot.capture.render import qa_inputs
from bot.slack.blocks import button, context, escape, section
from core.states import CurationOutcome, ExampleStatus
from core.text import clip
from storage.feedback import FeedbackState
from storage.models import Example, Feedback

APPROVE, EDIT, REJECT = "example_approve", "example_edit", "example_reject"
EDIT_MODAL = "example_edit_modal"
ANSWER, DISMISS = "unanswered_answer", "unanswered_dismiss"
ANSWER_MODAL = "unanswered_answer_modal"
VERBS = {APPROVE: "approve", EDIT: "edit", REJECT: "reject", ANSWER: "answer", DISMISS: "dismiss"}


def only_curators(action_id: str) -> str:
    what = "questions" if action_id in (ANSWER, DISMISS) else "examples"
    return f"Only curators can {VERBS.get(action_id, 'review')} {what}. Ask a curator, or label with ✅."


def _example_blocks(ex: Example) -> list[dict[str, Any]]:
    who = f"<@{ex.labelled_by}>" if ex.labelled_by else "an import"
    where = ex.source.get("channel")
    origin = f"labelled by {who}" + (f" in #{escape(where)}" if where else "")
    # Section text is capped at 3000 characters by Slack: the full text is one Edit away.
    blocks = [section(f"*Example {ex.id}* · {origin}\n*Q:* {escape(clip(ex.question, 900))}\n"
                      f"*A:* {escape(clip(ex.answer, 1600))}")]
    if ex.flags:
        blocks.append(context("\n".join(f":warning: {escape(f.get('reason') or f.get('code', ''))}"
                                        for f in ex.flags)))
    blocks.append({"type": "actions", "block_id": f"example_{ex.id}", "elements": [
        button("Approve", APPROVE, ex.id, style="primary"), button("Edit", EDIT, ex.id),
        button("Reject", REJECT, ex.id, style="danger")]})
    return blocks


def _unanswered_blocks(fb: Feedback) -> list[dict[str, Any]]:
    declined = FeedbackState.of(fb).declined
    why = "the bot said it does not know" if declined else "its answer got a 👎"
    asker = f"asked by <@{fb.user}>" if fb.user else "asked"
    said = fb.source.get("model_answer") or fb.answer
    text = f"*Question {fb.id}* · {asker} · {why}\n*Q:* {escape(clip(fb.question, 900))}"
    if said and not declined:
        text += f"\n*The bot answered:* {escape(clip(said, 600))}"
    return [section(text), {"type": "actions", "block_id": f"unanswered_{fb.id}", "elements": [
        button("Answer", ANSWER, fb.id, style="primary"), button("Dismiss", DISMISS, fb.id)]}]


def review_list(candidates: list[Example], total: int, note: str | None = None,
                unanswered: list[Feedback] | None = None) -> dict[str, Any]:
    """An ephemeral message: `text` is the notification fallback, `blocks` what people see."""
    blocks = [context(note)] if note else []
    unanswered = unanswered or []
    if not candidates and not unanswered:
        text = "All caught up: no candidates are waiting for review and every question has an answer."
        return {"text": (note + " " if note else "") + text, "blocks": blocks + [section(f":tada: {text}")]}
    parts = []
    if candidates:
        shown = f"the oldest {len(candidates)} of {total}" if total > len(candidates) else f"all {total}"
        text = f"{total} candidate{'s' if total != 1 else ''} waiting for review"
        parts.append(text)
        blocks.append(section(f"*{text}* (showing {shown})"))
        for ex in candidates:
            blocks.append({"type": "divider"})
            blocks.extend(_example_blocks(ex))
    if unanswered:
        text = f"{len(unanswered)} question{'s' if len(unanswered) != 1 else ''} the bot could not answer"
        parts.append(text)
        blocks.append(section(f"*{text}* (newest first): an answer here is approved at once and used for the "
                              f"next question"))
        for fb in unanswered:
            blocks.append({"type": "divider"})
            blocks.extend(_unanswered_blocks(fb))
    return {"text": "; ".join(parts), "blocks": blocks}


def answer_modal(fb: Feedback) -> dict[str, Any]:
    return _form(ANSWER_MODAL, fb.id, f"Answer question {fb.id}", fb.question, "")


def answered_note(fb_id: int, ex_id: int | None) -> str:
    return f":white_check_mark: Answered question {fb_id}: approved as example {ex_id}; the bot uses it from now on."


def dismissed_note(fb_id: int) -> str:
    return f":wastebasket: Set question {fb_id} aside."


def decided_note(outcome: CurationOutcome, ex_id: int, ex: Example | None, status: str) -> str:
    """One line on top of the refreshed list: what the click did, or why it did nothing."""
    if outcome == CurationOutcome.GONE:
        return f"Example {ex_id} no longer exists (it was withdrawn or deleted); nothing changed."
    if outcome == CurationOutcome.STALE:
        return stale(ex)
    return f":white_check_mark: Approved example {ex_id}." if status == ExampleStatus.APPROVED \
        else f":wastebasket: Rejected example {ex_id}."


def stale(ex: Example) -> str:
    """A click on an example someone already decided."""
    if ex.status == ExampleStatus.APPROVED:
        by = f" by <@{ex.approved_by}>" if ex.approved_by else ""
        return f"Example {ex.id} was already approved{by}; nothing changed."
    return f"Example {ex.id} was already {ex.status}; nothing changed."


def edit_saved(ex_id: int) -> str:
    return f":white_check_mark: Saved and approved example {ex_id}."


def clash(other_id: int) -> str:
    return f"That question and answer are already stored as example {other_id}."


def edit_modal(ex: Example) -> dict[str, Any]:
    return _form(EDIT_MODAL, ex.id, f"Edit example {ex.id}", ex.question, ex.answer)


def _form(callback_id: str, target: int, title: str, question: str, answer: str) -> dict[str, Any]:
    """A question-and-answer form that approves what it saves."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": str(target),
        "title": {"type": "plain_text", "text": title[:24]},  # Slack's limit
        "submit": {"type": "plain_text", "text": "Save and approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": qa_inputs(question, answer),
    }


def edit_refused(outcome: str, ex, ex_id: int) -> str:
    """Why a curator's edit was not saved: a clash with another pair, already decided, or gone."""
    if outcome == CurationOutcome.CLASH:
        return clash(ex.id)
    if outcome == CurationOutcome.STALE:
        return stale(ex)
    return decided_note(CurationOutcome.GONE, ex_id, None, "")


def share_notes(changes: list) -> str | None:
    """For `/ft review`: the sharing marks set or taken back lately, and how many pairs each one moved."""
    lines = []
    for change, n in changes:
        who = f" by <@{change.by}>" if change.by and change.by.startswith(("U", "W")) else ""
        if change.new == "true":
            lines.append(f":unlock: <#{change.channel_id}> marked shareable{who} {change.at:%Y-%m-%d}: "
                         f"{n} approved pair(s) usable everywhere and in the next training snapshot")
        else:
            lines.append(f":lock: <#{change.channel_id}> no longer shareable{who} {change.at:%Y-%m-%d}: "
                         f"{n} approved pair(s) used only there again, out of the next training snapshot")
    return "\n".join(lines) or None
