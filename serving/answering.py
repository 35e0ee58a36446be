"""One question answered as the bot answers it: retrieved pairs in front, the model's answer, and the
decision to send it or say "I don't know" (core.grounding). `ft ask`, the bot and the benchmarks
call this, so what a curator tries from the command line is what a customer gets in Slack.

When the best retrieved approved answer fits the question closely (core.reuse), it is the answer and the model is
not asked: the team's own words, checked by the same grounding rules as any answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from core.contract import GROUNDING, REUSE, GroundingSpec, ReuseSpec
from core.grounding import Grounding, declines, judge
from core.prompt import ANSWER_STOPS, DONT_KNOW, prompt_messages, without_echo
from core.reuse import reused_answer
from serving.client import ModelClient


@dataclass
class Answer:
    text: str  # what is sent: the model's answer (or the reused one), or DONT_KNOW when it is not grounded
    model_answer: str  # what the model said; when an approved answer is reused, that answer (the model was not asked)
    grounding: Grounding | None  # None: asked without retrieval (nothing to check the answer against)
    reused: Any | None = None  # the retrieved pair (serving.retrieval.Hit) whose approved answer this is

    @property
    def declined(self) -> bool:
        return self.grounding is not None and not self.grounding.send


async def answer(client: ModelClient, model: str, question: str, hits: Sequence[Any] | None, *, system_prompt: str,
                 max_tokens: int, timeout_s: float | None = None, grounding: GroundingSpec = GROUNDING,
                 on_text: Callable[[str], Awaitable[None]] | None = None, reuse: ReuseSpec | None = REUSE) -> Answer:
    """hits: serving.retrieval.Hit list, best first ([]: nothing close; None: retrieval off, asked plainly).
    on_text: streamed, each piece of the model's text handed to it as it is written (a reused answer: whole, once).
    The check still judges the whole text: a caller that shows pieces must replace them when the answer is declined.
    reuse: when an approved answer is the answer itself (None: never; the model always writes).
    Raises the client's ModelServerError / ModelServerUnavailable."""
    if (reused := _reused(question, hits, reuse, grounding)) is not None:
        if on_text is not None:
            await on_text(reused.text)
        return reused
    context = [(h.question, h.answer) for h in hits] if hits is not None else None
    # A refusal is decided by its first words: the stop sequence saves generating the rest of the sentence (on the
    # CPU, two thirds of a refusal's time: nothing in the prompt lets prompt lookup draft it).
    said = without_echo(await client.complete(model, prompt_messages(system_prompt, question, context),
                                              max_tokens=max_tokens, temperature=0.0, timeout_s=timeout_s,
                                              stop=list(ANSWER_STOPS), on_text=on_text))
    if hits is None:  # nothing to check against; a refusal cut at the stop sequence is sent whole
        return Answer(DONT_KNOW if said and declines(said) else said, said, None)
    verdict = judge(question, said, [(h.answer, h.score) for h in hits], min_score=grounding.min_score,
                    max_gap=grounding.max_gap)
    return Answer(said if verdict.send else DONT_KNOW, said, verdict)


def _reused(question: str, hits: Sequence[Any] | None, reuse: ReuseSpec | None,
            grounding: GroundingSpec) -> Answer | None:
    """The best hit's approved answer as the answer (core.reuse), if the grounding check passes it as it would pass
    the model's (auto mode sends only what it passes); None: the model writes."""
    found = reused_answer(question, hits, min_score=reuse.min_score, grounding=grounding) if reuse is not None else None
    if found is None:
        return None
    chosen, verdict = found
    return Answer(chosen.text, chosen.text, verdict, reused=chosen.hit)
