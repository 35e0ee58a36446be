"""One question answered as the bot answers it, before anything is posted: retrieval, the model and the grounding
check. A mention, a draft card and an auto answer all start here."""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from sqlmodel import Session

from bot.deps import Deps
from core.prompt import prompt_messages
from core.states import AnswerOutcome
from serving import answering
from serving.client import ModelClient, ModelServerError, ModelServerUnavailable
from storage.versions import deployed

log = logging.getLogger("ftbot.bot")

# The served base model's name, asked once per client (it only changes when the server is redeployed).
_base_names: "weakref.WeakKeyDictionary[ModelClient, str]" = weakref.WeakKeyDictionary()


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

    @property
    def reused(self) -> Any | None:
        """The retrieved pair (serving.retrieval.Hit) whose approved answer is the answer, given as it is."""
        return None if self.error or self.reply is None else self.reply.reused

    def reused_record(self) -> dict[str, Any]:
        """What the Draft and Feedback rows keep of a reused pair ({}: the model wrote the answer)."""
        hit = self.reused
        if hit is None:
            return {}
        return {"example_id": hit.example_id, "source_key": hit.source_key, "score": round(hit.score, 4),
                "approved_by": hit.approved_by}

    def source(self, **where: Any) -> dict[str, Any]:
        """The Feedback row's source: where it was asked, what answered, what it drew on and the verdict."""
        src = {**where, "model": self.model or None, "context": [h.source_key for h in self.hits or []]}
        if self.reply is not None and self.reply.grounding is not None:
            src["grounding"] = self.reply.grounding.to_json()
            src["model_answer"] = self.reply.model_answer
        if self.reused is not None:
            src["reused"] = self.reused_record()
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
                                                on_text=on_text, reuse=deps.reuse)
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
