"""The bot's answer to a question (text, who answered, Slack's feedback buttons) and the 👎 correction form."""

from __future__ import annotations

import re
from typing import Any

from bot.slack.blocks import button, context, escape, markdown, section
from core.text import clip
from storage.examples import CREATED, DUPLICATE, EXISTS
from storage.feedback import GONE, UPDATED
from storage.models import Example, Feedback

UP, DOWN = "feedback_up", "feedback_down"  # the 👍/👎 buttons of answers sent before the feedback buttons
FEEDBACK = "feedback"  # Slack's feedback buttons; their values are "up:<feedback id>" and "down:<feedback id>"
MARKDOWN_LIMIT = 12_000  # what Slack shows of a message's markdown blocks together
SOLVED = "draft_solved"  # bot.drafts answers it
CORRECTION_MODAL = "feedback_correction"
CORRECTION, VALUE = "correction", "value"  # block id, and the action id inside it
FIELD_LIMIT = 3000  # the most a plain_text_input holds

USAGE = "Ask me a question after the mention, for example: “@ftbot how long is the free trial?”"
UNAVAILABLE = ("I couldn't get an answer from the model right now — your question is saved and "
               "a curator will see it.")
THANKS = "Thanks for the feedback!"
NOT_FOUND = "That answer is no longer stored, so it can't be rated."
FORM_TOO_SLOW = "Slack took too long to open the form; please press 👎 again."
SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")  # a Slack user id (approvers from the command line are "cli:<name>")


def answered_by(model: str, version_name: str | None) -> str:
    who = version_name or f"the base model {model}"
    return f"Answered by {escape(who)} · ftbot"


def reused_by(approved_by: str | None, link: str | None) -> str:
    """Who approved the answer given as it is (core.reuse), linked to the message it was first given in."""
    who = f"<@{approved_by}>" if approved_by and SLACK_USER.fullmatch(approved_by) else \
        escape(approved_by) if approved_by else "the team"
    similar = f"<{link}|a similar question>" if link else "a similar question"
    return f":recycle: The answer {who} approved for {similar}"


def answer_message(answer: str, *, model: str, version_name: str | None, feedback_id: int,
                   sources: list[str] | None = None, solved_id: int | None = None,
                   reused: str | None = None) -> dict[str, Any]:
    """`{"text", "blocks"}` for chat.postMessage; the answer is escaped so it cannot ping or link anyone.
    sources: mrkdwn links to the threads whose approved answers were given to the model. reused: reused_by()'s line
    when the answer is an approved one, given as it is."""
    text = answer.strip()
    blocks = [markdown(escape(clip(text, MARKDOWN_LIMIT)))]
    blocks += answer_tail(model=model, version_name=version_name, feedback_id=feedback_id, sources=sources,
                          solved_id=solved_id, reused=reused)
    return {"text": clip(escape(text), 3000), "blocks": blocks}


def answer_tail(*, model: str, version_name: str | None, feedback_id: int, sources: list[str] | None = None,
                solved_id: int | None = None, reused: str | None = None) -> list[dict[str, Any]]:
    """What follows the answer's text: who answered and its sources (or whose approved answer it is), then the
    feedback buttons (a streamed answer ends with these blocks under the text it streamed)."""
    line = f"{reused} · ftbot" if reused else answered_by(model, version_name)
    if sources and not reused:
        line += " · drawn from " + ", ".join(sources)
    blocks = [context(line), feedback_buttons(feedback_id)]
    if solved_id is not None:  # auto mode: the asker confirms a resolution
        blocks.append({"type": "actions", "block_id": f"solved_{solved_id}",
                       "elements": [button("This solved it", SOLVED, str(solved_id), emoji=True)]})
    return blocks


def feedback_buttons(feedback_id: int) -> dict[str, Any]:
    """Slack's 👍/👎 under an AI answer (a context_actions block); a click arrives as a block action whose value
    is the pressed button's."""
    def half(label: str, value: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": label}, "value": f"{value}:{feedback_id}",
                "accessibility_label": f"Mark this answer as {label.lower()}"}

    return {"type": "context_actions", "block_id": f"feedback_{feedback_id}",
            "elements": [{"type": "feedback_buttons", "action_id": FEEDBACK,
                          "positive_button": half("Good", "up"), "negative_button": half("Bad", "down")}]}


def feedback_click(value: str | None) -> tuple[str | None, int | None]:
    """A feedback button's value: ("up" | "down", the feedback id), or (None, None) when it is not one."""
    which, _, number = (value or "").partition(":")
    if which not in ("up", "down") or not number.isdigit():
        return None, None
    return which, int(number)


def correction_modal(fb: Feedback) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CORRECTION_MODAL,
        "private_metadata": str(fb.id),
        "title": {"type": "plain_text", "text": "Correct the answer"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"*Question:* {escape(clip(fb.question, 1200))}"),
            section(f"*The bot answered:* {escape(clip(fb.answer, 1500))}"),
            {"type": "input", "block_id": CORRECTION,
             "label": {"type": "plain_text", "text": "The right answer"},
             "element": {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                         "max_length": FIELD_LIMIT},
             "hint": {"type": "plain_text",
                      "text": "Write it as our support team would. A curator reviews it before it is used "
                              "for training."}},
        ],
    }


def submitted_correction(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return (((values.get(CORRECTION) or {}).get(VALUE) or {}).get("value") or "").strip()


_CORRECTION_STORED = {
    GONE: "That answer is no longer stored, so the correction could not be saved.",
    CREATED: "Thanks! Your answer is saved as a candidate example (example {id}); a curator will review it before "
             "it is used for training.",
    UPDATED: "Thanks! The suggested answer (example {id}) now has your wording; a curator will review it.",
    DUPLICATE: "Thanks! That answer is already stored (example {id}).",
    EXISTS: "Thanks! A correction of this answer was already reviewed (example {id}, {status}); yours is kept with "
            "the feedback.",
}


def correction_stored(outcome: str, example: Example | None) -> str:
    template = _CORRECTION_STORED.get(outcome, "Thanks! Your correction is saved.")
    return template.format(id=example.id if example else None, status=example.status if example else "")
