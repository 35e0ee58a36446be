"""From snapshot rows to training conversations.

Each approved pair becomes one conversation in TRL's conversational prompt-completion format:

    {"prompt": [{"role": "system", ...}, {"role": "user", <question>}],
     "completion": [{"role": "assistant", <answer>}]}

TRL renders it with the base model's OWN chat template (the one the server answers with) and,
for prompt-completion data, computes the loss on the completion only: the model learns to
answer, not to write questions or the system prompt (tests/trainer checks the label mask).

Conversations longer than `max_length` tokens are left out and reported, never cut: a cut
answer teaches a cut answer, and a cut prompt may leave no answer at all.

**Every phrasing.** A small model taught a fact through one question recalls it from that
wording, rarely from another (measured on Quillmate, bench/train_quality.py). The store often holds several customers'
questions whose approved answers state the same fact ("21-day trial", "QM-E42 → Reconnect").
`phrasing_pairs` finds them: two training answers state the same fact when they share a
number-with-unit or a code (core.facts.fact_signature, `21 day`, `€6`, `@QM-E42`) and at
least half of their signatures, or when half of their content words are shared. For every
such pair (i, j) it adds "question i → answer j" (and j → i), so each fact is taught through
every question the store holds for it. Only direct matches are paired (no transitive chains, so
an answer stating two facts cannot bridge two unrelated groups). Validation rows are never
used: the held-out questions stay unseen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from core.contract import RETRIEVAL
from core.facts import SAME_FACT_JACCARD, carries_key_fact, content_words, fact_groups
from core.prompt import DONT_KNOW, prompt_messages  # the prompt as training shows it; serving asks alike

if TYPE_CHECKING:
    from trainer.context import Contexts

log = logging.getLogger("ftbot.trainer")
UNKNOWN_FILE = Path(__file__).with_name("unknown.jsonl")


@dataclass(frozen=True)
class Pair:
    question: str
    answer: str
    source_key: str = ""
    origin: str = "approved"  # "approved" | "phrasing" (question of one example, answer of another) | "replay"
    #                           | "unknown" (no approved answer: "I don't know")
    context: tuple[tuple[str, str], ...] | None = None  # retrieved pairs in front of the question (core.prompt)


@dataclass
class BuiltData:
    train: list[dict[str, Any]]  # conversations for SFTTrainer
    validation: list[dict[str, Any]]
    long_examples: list[dict[str, Any]] = field(default_factory=list)  # {source_key, side, tokens, max_length}
    n_approved: int = 0
    n_phrasing: int = 0  # pairs added by every-phrasing augmentation
    n_replay: int = 0  # general questions with the base model's own answers (trainer.replay)
    n_context: int = 0  # support pairs (approved and every-phrasing) taught with retrieved context in front
    n_unknown: int = 0  # questions answered "I don't know" (empty context)
    train_tokens: int = 0  # tokens in one pass over train (prompt + completion)
    longest: int = 0  # tokens in the longest training conversation (what a micro-batch pads to, at most)


def field_of(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def conversation(system_prompt: str, question: str, answer: str,
                 context: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {"prompt": prompt_messages(system_prompt, question, context),
            "completion": [{"role": "assistant", "content": answer}]}


def unknown_questions(path: Path = UNKNOWN_FILE) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def unknown_pairs(train_rows: Sequence[Any], path: Path = UNKNOWN_FILE) -> list[Pair]:
    """Questions no approved answer covers, answered "I don't know" with an empty context: the model
    learns to say so rather than invent a policy. One that shares half its content words with a
    training question is left out (this team's store may know it after all)."""
    known = [content_words(str(field_of(r, "question"))) for r in train_rows]
    pairs = []
    for i, question in enumerate(unknown_questions(path)):
        words = content_words(question)
        if any(words and len(words & k) / len(words | k) >= SAME_FACT_JACCARD for k in known):
            continue
        pairs.append(Pair(question, DONT_KNOW, f"unknown:{i}", "unknown"))
    return pairs


def phrasing_pairs(rows: Sequence[Any]) -> list[Pair]:
    """(other question in the group → this answer) for every two training rows stating the same fact."""
    pairs: list[Pair] = []
    seen = {(str(field_of(r, "question")), str(field_of(r, "answer"))) for r in rows}
    for i, near in enumerate(fact_groups(rows)):
        for j in near:
            question, answer = str(field_of(rows[j], "question")), str(field_of(rows[i], "answer"))
            if (question, answer) in seen:
                continue
            seen.add((question, answer))
            pairs.append(Pair(question, answer, f"{field_of(rows[j], 'source_key')}→{field_of(rows[i], 'source_key')}",
                              "phrasing"))
    return pairs


def count_tokens(tokenizer: Any, conv: dict[str, Any]) -> int:
    """Tokens of the whole rendered conversation, as the chat template renders it for training."""
    ids = tokenizer.apply_chat_template(conv["prompt"] + conv["completion"], tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


def grounded_contexts(rows: Sequence[Any], contexts: Mapping[str, Sequence[tuple[str, str]] | None],
                      groups: Sequence[Sequence[int]], k: int, seed: int = 0) -> list[tuple[tuple[str, str], ...]]:
    """Each training row's retrieved pairs, made sure to hold the fact its answer states.

    At answer time the bot's context usually holds an approved pair with the fact (a same-fact
    sibling: bench/retrieval.py); the model's job is to find it and say it. So training shows
    exactly that: when the row's leave-one-out neighbours hold no same-fact sibling, the nearest
    sibling (or, for a fact stated once, the row's own pair) takes the place of the last neighbour,
    at a seeded random position so the model reads every slot, not just the first."""
    import random

    rng = random.Random(seed)
    out = []
    for i, row in enumerate(rows):
        ctx = list(contexts.get(str(field_of(row, "source_key"))) or [])
        siblings = [(str(field_of(rows[j], "question")), str(field_of(rows[j], "answer"))) for j in groups[i]]
        if not any(pair in siblings for pair in ctx):
            fact = siblings[0] if siblings else (str(field_of(row, "question")), str(field_of(row, "answer")))
            ctx = ctx[:max(0, k - 1)]
            ctx.insert(rng.randint(0, len(ctx)), fact)
        out.append(tuple(ctx))
    return out


def without_fact(rows: Sequence[Any], contexts: Mapping[str, Sequence[tuple[str, str]] | None],
                 groups: Sequence[Sequence[int]], share: float, seed: int = 0) -> list[Pair]:
    """A seeded `share` of the support rows once more, with every retrieved pair stating the row's fact
    taken out of its context, answered "I don't know". The same question with and without its fact in
    front: what decides the answer is whether a pair states it, not how near the topic is. A pair
    counts as stating the fact when it is the row's own, a same-fact sibling (fact_groups), or its
    answer carries the row's key fact (core.facts); rows left with no pair are skipped."""
    import random

    rng = random.Random(seed + 1)
    out = []
    for i, row in enumerate(rows):
        if rng.random() >= share:
            continue
        question, answer = str(field_of(row, "question")), str(field_of(row, "answer"))
        stating = {(question, answer)} | {(str(field_of(rows[j], "question")), str(field_of(rows[j], "answer")))
                                          for j in groups[i]}
        rest = tuple(pair for pair in contexts.get(str(field_of(row, "source_key"))) or ()
                     if pair not in stating and not carries_key_fact(pair[1], answer, question))
        if rest:
            out.append(Pair(question, DONT_KNOW, f"{field_of(row, 'source_key')}-fact", "unknown", context=rest))
    return out


def build_data(train_rows: Iterable[Any], val_rows: Iterable[Any], tokenizer: Any, *, system_prompt: str,
               max_length: int, every_phrasing: bool = True,
               replay: Sequence[tuple[str, str]] = (),
               contexts: Contexts | None = None,
               context_k: int = RETRIEVAL.k, seed: int = 0, unknown_with_context: bool = True,
               refuse_without_fact: float = 0.0) -> BuiltData:
    """contexts (trainer.context: what retrieval puts in front of each question): given, every support pair
    (approved and every-phrasing) is taught in the retrieval shape with its fact in the context
    (grounded_contexts); validation questions are asked behind their retrieved pairs, as served, so early
    stopping and keep-best judge the served shape; unknown questions are added with no context (and, with
    unknown_with_context, once more behind what retrieval finds for them); and a refuse_without_fact share
    of the support questions once more with their fact taken out (without_fact); replay pairs stay plain."""
    train_rows, val_rows = list(train_rows), list(val_rows)
    keys = [str(field_of(r, "source_key")) for r in train_rows]
    groups = fact_groups(train_rows) if contexts is not None else []
    grounded = (grounded_contexts(train_rows, contexts.train, groups, context_k, seed)
                if contexts is not None else [None] * len(train_rows))
    by_key = dict(zip(keys, grounded))
    pairs = [Pair(str(field_of(r, "question")), str(field_of(r, "answer")), key, context=ctx)
             for r, key, ctx in zip(train_rows, keys, grounded)]
    n_approved = len(pairs)
    if every_phrasing:  # question j → answer i: asked as j is asked, so with j's context (which holds i's fact)
        pairs += [replace(p, context=by_key.get(p.source_key.split("→")[0])) for p in phrasing_pairs(train_rows)]
    n_phrasing = len(pairs) - n_approved
    pairs += [Pair(q, a, f"replay:{i}", "replay") for i, (q, a) in enumerate(replay)]
    unknown = []
    for p in unknown_pairs(train_rows) if contexts is not None else []:
        # Nothing retrieved, or only neighbours that do not answer it (retrieval finds some for a product
        # question the store cannot answer, e.g. "Can I send invoices by fax?"): either way, "I don't know".
        # The second kind taught SmolLM2 to refuse behind pairs that did answer (5 of 25 Quillmate validation
        # questions: "QM-E42", "bank feed every 4 hours"), yet without it off-store honesty fell from 3/6 to
        # 1/6: TrainConfig.unknown_with_context keeps it on by default.
        unknown.append(replace(p, context=()))
        near = contexts.unknown.get(p.question) if unknown_with_context else None
        if near:
            unknown.append(replace(p, source_key=f"{p.source_key}+context", context=tuple(near)))
    if contexts is not None and refuse_without_fact > 0:
        unknown += without_fact(train_rows, contexts.train, groups, refuse_without_fact, seed)
    pairs += unknown
    out = BuiltData(train=[], validation=[], n_approved=n_approved, n_phrasing=n_phrasing, n_replay=len(replay),
                    n_context=sum(bool(p.context) for p in pairs if p.origin in ("approved", "phrasing")),
                    n_unknown=len(unknown))
    for side, items in (("train", pairs),
                        ("validation", [Pair(str(field_of(r, "question")), str(field_of(r, "answer")),
                                             str(field_of(r, "source_key")),
                                             context=tuple(contexts.validation[i]) if contexts else None)
                                        for i, r in enumerate(val_rows)])):
        for pair in items:
            conv = conversation(system_prompt, pair.question, pair.answer, pair.context)
            n = count_tokens(tokenizer, conv)
            if n > max_length:
                out.long_examples.append({"source_key": pair.source_key, "side": side, "origin": pair.origin,
                                          "tokens": n, "max_length": max_length})
                log.warning("left out %s example %s: %d tokens > max_length %d", side, pair.source_key, n, max_length)
                continue
            (out.train if side == "train" else out.validation).append(conv)
            if side == "train":
                out.train_tokens += n
                out.longest = max(out.longest, n)
    log.info("training data: %d approved + %d every-phrasing (%d with retrieved context) + %d replay + %d unknown "
             "pairs, %d validation, %d left out as too long", n_approved, out.n_phrasing, out.n_context, out.n_replay,
             out.n_unknown, len(out.validation), len(out.long_examples))
    return out
