"""Live evaluation: the deployed version and the new one on the newest real questions the team answered.

The held-out set is small and frozen; what customers ask this week is neither. So while a version is
evaluated, the worker also answers, without posting anything, the newest questions of watched channels
whose final answer the team sent: drafts sent unchanged, sent after an edit, or superseded by a hand
reply (Draft.sent_text is that final answer). Both models answer in the process that already has them
loaded for the held-out evaluation (trainer.evaluate's on_model), asked exactly as the bot asks: the
nearest approved pairs in front (core.nearest through trainer.context.TrainIndex: the bot's spec, its
stored rows), greedy, then the bot's grounding check (core.grounding). What the bot would send is
compared with what the team sent by the held-out evaluation's key-fact judgement (core.facts):

- agrees: sent, and it states the key facts (numbers, codes, else names) of what the team sent;
- other: sent, stating something else;
- declined: the grounding check or the model said it does not know;
- unchecked: sent, but what the team sent has no key fact to compare (counted, so the four add up to n).

Leave-one-out: the pair the team's answer became (Draft.example_id) and pairs labelled in the same thread
are kept out of the index, as they did not exist when the customer asked. The new version may still
have been trained on them; `n_trained` says for how many questions (there its figures flatter it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sqlmodel import Session, col, select

from core.contract import GroundingSpec, LiveEval, LiveExample, LiveOutcomes
from core.facts import carries_key_fact
from core.grounding import declines
from core.prompt import DONT_KNOW, prompt_messages
from core.states import DraftStatus, ExampleStatus, LiveOutcome
from core.text import clip
from storage.audience import scope_for, shareable_channels
from storage.models import Draft, Example, SlackChannel

if TYPE_CHECKING:
    from trainer.config import TrainConfig
    from trainer.context import Scored, TrainIndex

log = logging.getLogger("ftbot.trainer")

# The newest questions answered: enough to show a rate beside the held-out figures, and a fixed cost however
# busy the channels are (at most 2 x 50 greedy answers, batched as the evaluation batches; not measured yet).
LIVE_MAX = 50
SHOWN = 3  # questions shown side by side in the approval request
KEEP_CHARS = 500  # text kept per shown answer in ModelVersion.metrics (the approval request clips further)
TEAM_ANSWERED = (DraftStatus.SENT, DraftStatus.EDITED, DraftStatus.SUPERSEDED)


def shared_knowledge(channel: SlackChannel | None, shareable: frozenset[str] = frozenset()) -> bool:
    """Whether a channel's questions may judge the shared model (and be shown in the approvals channel): the rule of
    storage.audience, asked as the shared adapter asks it (from no channel in particular)."""
    return channel is not None and scope_for(None, shareable).allows(channel.kind, channel.id)


def live_drafts(session: Session, limit: int = LIVE_MAX) -> list[Draft]:
    """The newest drafts whose final answer the team sent, from channels whose knowledge the shared model may use."""
    shareable = shareable_channels(session)
    channels = [c.id for c in session.exec(select(SlackChannel)) if shared_knowledge(c, shareable)]
    if not channels:
        return []
    return list(session.exec(
        select(Draft).where(col(Draft.channel_id).in_(channels), col(Draft.status).in_(TEAM_ANSWERED),
                            col(Draft.sent_text).is_not(None), Draft.sent_text != "", Draft.question != "")
        .order_by(col(Draft.asked_at).desc(), col(Draft.id).desc()).limit(limit)))


@dataclass
class LiveQuestions:
    """The live questions of one job, their retrieved pairs, and each model's answers as they come."""

    questions: list[str]
    team: list[str]  # what the team sent
    hits: list[Scored] | None  # the pairs the bot would retrieve; None: retrieval off, asked plainly
    trained: int = 0  # questions whose team answer the new version was trained on
    system_prompt: str = ""
    max_new_tokens: int = 96
    answers: dict[str, list[str]] = field(default_factory=dict)  # "base" | "deployed" | "new" → one per question
    compared: str = "base"  # the model standing for what customers get now: "deployed", or "base" when none is
    deployed_name: str | None = None
    to_retrieve: tuple | None = None  # (pool, stored vectors, each question's own pair ids) until retrieve_live
    model_dirs: dict[str, Any] = field(default_factory=dict)  # set by hook()
    answers_dir: Path | None = None

    @property
    def prompts(self) -> list[list[dict[str, str]]]:
        contexts = [[(q, a) for q, a, _ in h] for h in self.hits] if self.hits is not None else [None] * len(self)
        return [prompt_messages(self.system_prompt, q, c) for q, c in zip(self.questions, contexts)]

    def __len__(self) -> int:
        return len(self.questions)

    def hook(self, deployed_name: str | None, *, model_dirs: dict[str, Any] | None = None,
             answers_dir: Path | None = None) -> Callable[[str, Any, Any], None] | None:
        """trainer.evaluate's on_model: answers with the new model and the one customers get now (the deployed
        version when it is loaded for comparison, else the base model), while each is loaded anyway.
        model_dirs ("base" | "deployed" | "new" → its directory) and answers_dir: each model's answers are kept there,
        as the evaluation keeps its own (trainer.evaluate.answered_once): a question answered before is not again."""
        self.compared, self.deployed_name = ("deployed", deployed_name) if deployed_name else ("base", None)
        self.model_dirs, self.answers_dir = dict(model_dirs or {}), answers_dir
        return self._answer if self.questions else None

    def _kept(self, name: str) -> Path | None:
        from trainer.evaluate import answers_file

        directory = self.model_dirs.get(name)
        return answers_file(self.answers_dir, directory, self.max_new_tokens, "live") \
            if self.answers_dir is not None and directory else None

    def _answer(self, name: str, model: Any, tokenizer: Any) -> None:
        from trainer.evaluate import answer_as_bot, answered_once

        if name in ("new", self.compared) and name not in self.answers:
            self.answers[name] = answered_once(
                self.prompts, lambda todo: answer_as_bot(model, tokenizer, todo, max_new_tokens=self.max_new_tokens),
                self._kept(name))

    def judge(self, cfg: TrainConfig, new_adapter: str | Path, deployed_adapter: str | Path | None) -> LiveEval:
        """The figures for the approval request. A model the evaluation did not load for us (its answers were
        cached) is loaded here; normally none is."""
        if not self.questions:
            return LiveEval()
        from trainer.evaluate import answer_as_bot, answered_once

        adapters = {"base": None, "deployed": deployed_adapter, "new": new_adapter}
        for name in ("new", self.compared):
            if name not in self.answers:  # the evaluation did not load it (its own answers were kept)

                def load_and_answer(todo: list, name: str = name) -> list[str]:
                    log.info("live evaluation: loading %s again (the evaluation did not)", name)
                    model, tokenizer = _load(cfg.base_model, adapters[name])
                    return answer_as_bot(model, tokenizer, todo, max_new_tokens=self.max_new_tokens)

                self.answers[name] = answered_once(self.prompts, load_and_answer, self._kept(name))
        judged = {name: [outcome(q, a, t, h, cfg.grounding) for q, a, t, h in
                         zip(self.questions, self.answers[name], self.team, self.hits or [None] * len(self))]
                  for name in ("new", self.compared)}
        result = LiveEval(n=len(self), n_trained=self.trained, deployed_name=self.deployed_name,
                          deployed=_count(judged[self.compared]), new=_count(judged["new"]))
        # Shown first: questions where the two differ, newest first.
        order = sorted(range(len(self)), key=lambda i: judged["new"][i][0] == judged[self.compared][i][0])
        result.examples = [LiveExample(question=_keep(self.questions[i]), team=_keep(self.team[i]),
                                       deployed=_keep(judged[self.compared][i][1]), new=_keep(judged["new"][i][1]),
                                       deployed_outcome=judged[self.compared][i][0],
                                       new_outcome=judged["new"][i][0]) for i in order[:SHOWN]]
        return result


def live_questions(session: Session, cfg: TrainConfig, trained_rows: Sequence[Any] = (), *,
                   limit: int = LIVE_MAX, embedder: Any | None = None) -> LiveQuestions:
    """The live questions, with the pairs the bot would retrieve for each (leave-one-out, see the module docstring).
    trained_rows: the new version's training rows (anything with an example_id), to count n_trained."""
    return retrieve_live(read_live(session, cfg, trained_rows, limit=limit), embedder)


def read_live(session: Session, cfg: TrainConfig, trained_rows: Sequence[Any] = (), *,
              limit: int = LIVE_MAX) -> LiveQuestions:
    """The live questions and what their retrieval needs, read in one go (retrieve_live embeds afterwards, with no
    session open: a job's transactions stay short)."""
    drafts = live_drafts(session, limit)
    live = LiveQuestions([d.question for d in drafts], [d.sent_text or "" for d in drafts], None,
                         system_prompt=cfg.system_prompt, max_new_tokens=cfg.max_new_tokens)
    if not drafts:
        return live
    approved = list(session.exec(select(Example).where(Example.status == ExampleStatus.APPROVED)))
    own = [_own_pairs(d, approved) for d in drafts]
    trained_ids = {r.example_id for r in trained_rows}
    live.trained = sum(bool(ids & trained_ids) for ids in own)
    if cfg.retrieval:
        from trainer.context import Row, stored_vectors

        pool = [Row(e.id, e.source_key, e.question, e.answer) for e in approved]
        live.to_retrieve = (pool, stored_vectors(session, pool), own)
    log.info("live evaluation: %d question(s) the team answered (%d trained on)", len(live), live.trained)
    return live


def retrieve_live(live: LiveQuestions, embedder: Any | None = None) -> LiveQuestions:
    """The pairs the bot would retrieve for each live question (embeds; reads nothing)."""
    if live.to_retrieve is not None:
        from trainer.context import TrainIndex

        pool, stored, own = live.to_retrieve
        live.hits, live.to_retrieve = search(TrainIndex(pool, stored, embedder), live.questions, own), None
    return live


def _own_pairs(draft: Draft, approved: Sequence[Example]) -> set[int]:
    """The approved pairs that came from this question's thread: its sent answer, and replies labelled there."""
    ids = {e.id for e in approved if e.source.get("channel_id") == draft.channel_id
           and e.source.get("thread_ts") == draft.question_ts}
    return ids | ({draft.example_id} if draft.example_id is not None else set())


def search(index: TrainIndex, questions: Sequence[str], exclude: Sequence[set[int]]) -> list[Scored]:
    """index.search, each question leaving out its own pairs (rows zeroed while it searches: a zero row never scores
    the threshold)."""
    from core.nearest import nearest

    position = {row.example_id: n for n, row in enumerate(index.pool)}
    queries = index.embedder.embed([index.spec.query_text(q) for q in questions])
    out: list[Scored] = []
    for query, ids in zip(queries, exclude):
        rows = [position[i] for i in ids if i in position]
        kept = index.matrix[rows].copy()
        index.matrix[rows] = 0.0
        try:
            found = nearest(query, index.matrix, k=index.spec.k, min_score=index.spec.min_score)
        finally:
            index.matrix[rows] = kept
        out.append([(index.pool[i].question, index.pool[i].answer, score) for i, score in found])
    return out


def outcome(question: str, answer: str, team: str, hits: Scored | None, grounding: GroundingSpec) -> tuple[str, str]:
    """(agrees | other | declined | unchecked, what the bot would send) for one answer."""
    from trainer.evaluate import sends

    sent = not declines(answer) if hits is None else sends(question, answer, hits, grounding)
    if not sent:
        return LiveOutcome.DECLINED, DONT_KNOW
    fact = carries_key_fact(answer, team, question)
    return (LiveOutcome.UNCHECKED if fact is None else LiveOutcome.AGREES if fact else LiveOutcome.OTHER), answer


def _count(judged: Sequence[tuple[str, str]]) -> LiveOutcomes:
    kinds = [kind for kind, _ in judged]
    return LiveOutcomes(**{kind: kinds.count(kind) for kind in LiveOutcome})


def _keep(text: str) -> str:
    return clip(text, KEEP_CHARS)


def _load(base_model: str, adapter: str | Path | None) -> tuple[Any, Any]:
    """A model as trainer.evaluate loads it (merged adapter, bf16 on CUDA), and its tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if cuda else torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.to("cuda" if cuda else "cpu").eval(), AutoTokenizer.from_pretrained(base_model)
