"""What the bot says, in one place: short, plain sentences."""

from __future__ import annotations

UNLABEL_TOO_LATE = ("That answer is already part of a training snapshot, so it stays; "
                    "a curator can reject it with `/ft review`.")


def label_skipped(reason: str) -> str:
    if reason.startswith("label on the question"):
        return "Thanks! Put the ✅ on the reply that answers the question, not on the question itself."
    return f"I couldn't store that label: {reason}."


def label_flagged(flags: list[dict[str, str]]) -> str:
    reasons = "; ".join(f["reason"] for f in flags)
    return f"Saved for review, but not as an approved answer: {reasons}."


def label_duplicate(example_id: int | None) -> str:
    return f"That question and answer are already stored (example {example_id})."
