"""The one prompt shape: how a question is put to the model in training, evaluation, the deployment
smoke test and the bot alike. An adapter answers best when asked exactly as it was taught.

Without retrieval (`context=None`):

    system: <system prompt>
    user:   <question>

With retrieval, the nearest approved pairs go in the user turn, before the question, most similar
first (`context` = [(question, answer), …]); when retrieval found nothing close enough
(`context=[]`) the turn says so, and the model was taught to say it does not know:

    user:   Approved answers to similar questions:
            Q: <question 1>
            A: <answer 1>

            Q: <question 2>
            A: <answer 2>

            Question: <question>

    user:   No approved answer is close to this question.

            Question: <question>

It lives in core because it is part of what a stored example means as a conversation (the `openai` JSONL
export writes the same shape), and the trainer, the servers and the bot all ask in it.
"""

from __future__ import annotations

import re
from typing import Sequence

from core.text import clip

CONTEXT_HEADER = "Approved answers to similar questions:"
NO_CONTEXT = "No approved answer is close to this question."
# What the model is taught to say when nothing close was approved (trainer/unknown.jsonl questions).
CONTEXT_ANSWER_CHARS = 700  # a retrieved answer is cut here: three long ones must not crowd out the question
DONT_KNOW = ("I don't know: none of our approved answers covers this. I've kept your question so the "
             "support team can follow up.")
# Once the model starts the taught refusal, the rest is known: asking with this stop sequence ends it there.
REFUSAL_STOP = "none of our approved answers"
# A model never taught the prompt's shape (the base model drafting before any training) continues it: "A: <answer>
# \n\nQuestion: …". The answer ends where the prompt's next part would start, and "A:" is the shape, not the answer.
ECHO_STOPS = ("\nQuestion:", "\nQ:")
# What the bot stops its answers at (serving.answering); the trainer's evaluation answers the same way.
ANSWER_STOPS = (REFUSAL_STOP, *ECHO_STOPS)
_ECHOED_SHAPE = re.compile(r"^(?:Q:[^\n]*\n+)?A:[ \t]*")


def without_echo(said: str) -> str:
    """The answer without a leading echo of the prompt's Q:/A: shape."""
    return _ECHOED_SHAPE.sub("", said.strip(), count=1).strip()


def settled_answer(said: str) -> str:
    """What of a partial answer is sure to survive without_echo, whatever the model writes next: nothing while its
    start could still be an echo of the prompt's Q:/A: shape, then the text without it. Trailing whitespace is
    kept, so that what is shown of a streamed answer only grows."""
    text = said.lstrip()
    if text in ("", "Q", "A") or (text.startswith("Q:") and not re.search(r"\n+A:", text)):
        return ""
    return _ECHOED_SHAPE.sub("", text, count=1)


def user_turn(question: str, context: Sequence[tuple[str, str]] | None = None) -> str:
    if context is None:
        return question
    if not context:
        return f"{NO_CONTEXT}\n\nQuestion: {question}"
    pairs = "\n\n".join(f"Q: {_clip(q)}\nA: {_clip(a)}" for q, a in context)
    return f"{CONTEXT_HEADER}\n{pairs}\n\nQuestion: {question}"


def _clip(text: str) -> str:
    return clip(text.strip(), CONTEXT_ANSWER_CHARS)


def prompt_messages(system_prompt: str, question: str,
                    context: Sequence[tuple[str, str]] | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": user_turn(question, context)}]
