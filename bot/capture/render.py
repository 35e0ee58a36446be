"""The question/answer form (shortcut capture, curator edit) and what the bot says about a capture."""

from __future__ import annotations

import json
from typing import Any

from bot.slack.blocks import context
from bot.slack.markup import strip_emoji
from core.states import ExampleStatus
from storage.examples import CREATED, DUPLICATE, EXISTS, UPGRADED
from storage.models import Example

CAPTURE_MODAL = "add_to_training_modal"
QUESTION, ANSWER, VALUE = "question", "answer", "value"  # block ids, and the one action id inside each
FIELD_LIMIT = 3000  # the most a plain_text_input holds

CANNOT_READ = ("I couldn't read that thread. If it is in a private channel or one I'm not in, "
               "invite me there and try again.")
FORM_TOO_SLOW = "Slack took too long to open the form; please try the shortcut again."


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _input(block_id: str, label: str, value: str, hint: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                               "max_length": FIELD_LIMIT}
    if value:
        element["initial_value"] = value[:FIELD_LIMIT]
    return {"type": "input", "block_id": block_id, "label": _plain(label), "element": element, "hint": _plain(hint)}


def qa_inputs(question: str, answer: str) -> list[dict[str, Any]]:
    """Two editable fields; a note when a text had to be shortened to fit Slack's field."""
    blocks = []
    if len(question) > FIELD_LIMIT or len(answer) > FIELD_LIMIT:
        blocks.append(context(f":warning: The text is longer than a Slack form holds; it is shown cut to "
                              f"{FIELD_LIMIT} characters, and that is what will be saved."))
    blocks.append(_input(QUESTION, "Question", question, "What the customer asked, readable on its own."))
    blocks.append(_input(ANSWER, "Answer", answer, "The answer the model should learn to give."))
    return blocks


def capture_modal(question: str, answer: str, *, channel: str, ts: str, channel_name: str) -> dict[str, Any]:
    intro = (f"From #{channel_name}. Tidy the pair so it reads well on its own; "
             "curators review it before it is used for training.")
    return {
        "type": "modal",
        "callback_id": CAPTURE_MODAL,
        "private_metadata": json.dumps({"channel": channel, "ts": ts, "channel_name": channel_name}),
        "title": _plain("Add to training data"),
        "submit": _plain("Add"),
        "close": _plain("Cancel"),
        "blocks": [context(intro), *qa_inputs(question, answer)],
    }


def submitted(view: dict[str, Any]) -> tuple[str, str]:
    """The question and answer as typed in a submitted form."""
    values = (view.get("state") or {}).get("values") or {}

    def read(block_id: str) -> str:
        return ((values.get(block_id) or {}).get(VALUE) or {}).get("value") or ""

    return read(QUESTION).strip(), read(ANSWER).strip()


def field_errors(question: str, answer: str) -> dict[str, str]:
    """Slack shows these under the fields and keeps the form open."""
    errors = {}
    if not strip_emoji(question):
        errors[QUESTION] = "Write the question; it can't be empty or only emoji."
    if not strip_emoji(answer):
        errors[ANSWER] = "Write the answer; it can't be empty or only emoji."
    return errors


def skipped(reason: str) -> str:
    if reason.startswith("label on the question"):
        return ("Use “Add to training data” on the reply that answers the question, "
                "not on the question itself.")
    return f"I couldn't make a question and answer from that message: {reason}."


def stored(outcome: str, example: Example | None, *, by_curator: bool) -> str:
    """What happened to a submitted pair, in one sentence or two."""
    ex_id = example.id if example is not None else None
    if outcome == DUPLICATE:
        return f"That question and answer are already stored (example {ex_id}); nothing new was added."
    if outcome == EXISTS:
        return f"That reply is already in the training data (example {ex_id}, {example.status}); nothing changed."
    if outcome == UPGRADED:
        return (f"That reply was already stored as a candidate (example {ex_id}); it is now approved. "
                "The text stored earlier was kept; edit it from `/ft review` if needed.")
    if outcome == CREATED and example.status == ExampleStatus.APPROVED:
        return f"Added to the training data as an approved example (example {ex_id}). Thanks!"
    if outcome == CREATED and by_curator and example.flags:
        reasons = "; ".join(f["reason"] for f in example.flags)
        return f"Saved as example {ex_id} for review, but not approved: {reasons}."
    return f"Added as a candidate (example {ex_id}); a curator will review it. Thanks!"
