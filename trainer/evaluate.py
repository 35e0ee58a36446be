"""Evaluation: does the new adapter answer held-out questions better than the base and the deployed version,
without forgetting what the base model knew?

Every validation question is answered greedily, in the prompt shape training used (system prompt +
question, the base model's chat template), by (a) the base model, (b) the deployed adapter when
there is one, (c) the new adapter. Each answer is scored against the approved reference:

- rougeL: ROUGE-L F1 over lower-cased word tokens (longest common subsequence; core.overlap);
- key_fact: the share of answers that carry the reference's key fact (core.facts: its numbers,
  codes, else names, minus what the question already says; at least half of them stated).
  References without any key item are left out of this share.

The probe (trainer/probe.jsonl, a dozen general questions: capitals, arithmetic, the sky) is
answered the same way; `probe` is its key-fact share (each probe lists acceptable key words, any
one counts). A fine-tune that teaches support answers but loses the probe has forgotten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from core.contract import GROUNDING, EvalScores, GroundingSpec, Outcomes, RetrievalScores, Sample, Scores
from core.facts import carries_key_fact
from core.grounding import judge
from core.machine import peft_wraps_quietly
from core.overlap import rouge_l_f1
from core.prompt import ANSWER_STOPS, DONT_KNOW, prompt_messages, without_echo
from trainer.data import field_of

if TYPE_CHECKING:
    from trainer.context import Scored

PROBE_FILE = Path(__file__).with_name("probe.jsonl")
OFFSTORE_FILE = Path(__file__).with_name("offstore.jsonl")  # product questions no store answers; never taught
SAMPLES = 5  # validation answers recorded with a version: the deployment smoke test asks them (serving.smoke)


def probe_hit(answer: str, keys: Sequence[str]) -> bool:
    return any(re.search(r"(?<!\w)" + re.escape(k.lower()) + r"(?!\w)", answer.lower()) for k in keys)


def load_probe(path: Path = PROBE_FILE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def offstore_questions(path: Path = OFFSTORE_FILE) -> list[str]:
    return [row["question"] for row in load_probe(path)]


@dataclass
class Evaluation:
    metrics: EvalScores  # base, deployed (or None), new
    samples: list[Sample]  # side-by-side answers; the deployment smoke test asks them again
    answers: dict[str, list[str]] = field(default_factory=dict)  # per model, validation then probe


def score(answers: Sequence[str], questions: Sequence[str], references: Sequence[str],
          probe_answers: Sequence[str], probe: Sequence[dict[str, Any]]) -> Scores:
    rouge = [rouge_l_f1(a, r) for a, r in zip(answers, references)]
    facts = [carries_key_fact(a, r, q) for a, r, q in zip(answers, references, questions)]
    checked = [f for f in facts if f is not None]
    probe_hits = [probe_hit(a, p["key"]) for a, p in zip(probe_answers, probe)]
    return Scores(
        rougeL=round(sum(rouge) / len(rouge), 4) if rouge else None,
        key_fact=round(sum(checked) / len(checked), 4) if checked else None,
        key_fact_hits=sum(checked),
        probe=round(sum(probe_hits) / len(probe_hits), 4) if probe_hits else None,
        probe_rougeL=round(sum(rouge_l_f1(a, p["answer"]) for a, p in zip(probe_answers, probe))
                           / len(probe), 4) if probe else None,
    )


def sends(question: str, answer: str, hits: Scored, grounding: GroundingSpec = GROUNDING) -> bool:
    """Whether the bot would send this answer, given the pairs retrieved for the question (core.grounding)."""
    return judge(question, answer, [(a, s) for _, a, s in hits], min_score=grounding.min_score,
                 max_gap=grounding.max_gap).send


def sent_text(question: str, answer: str, hits: Scored, grounding: GroundingSpec = GROUNDING) -> str:
    """What the bot would send for this answer: it, or "I don't know" when no retrieved answer backs it."""
    return answer if sends(question, answer, hits, grounding) else DONT_KNOW


def outcomes(questions: Sequence[str], references: Sequence[str], answers: Sequence[str], hits: Sequence[Scored],
             offstore: Sequence[str], offstore_answers: Sequence[str], offstore_hits: Sequence[Scored],
             grounding: GroundingSpec = GROUNDING) -> Outcomes:
    """Right / wrong / don't know of what the bot would send, over the validation questions whose reference has a
    key fact; and how many off-store questions it refuses."""
    out = Outcomes(n_offstore=len(offstore))
    for q, ref, ans, h in zip(questions, references, answers, hits):
        fact = carries_key_fact(ans, ref, q)
        if fact is None:
            continue
        out.n += 1
        if not sends(q, ans, h, grounding):
            out.dont_know += 1
        elif fact:
            out.right += 1
        else:
            out.wrong += 1
    out.offstore_refused = sum(not sends(q, ans, h, grounding)
                               for q, ans, h in zip(offstore, offstore_answers, offstore_hits))
    return out


def answer_as_bot(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, str]]], *,
                  max_new_tokens: int) -> list[str]:
    """Greedy answers as the bot gets them from its model server (serving.answering): stopped at its stop strings
    (a refusal ends at its first words, an echo of the prompt's shape ends the answer), the echoed "A:" taken off.
    Besides being what a customer would get, it ends generation sooner: a batch runs until its longest answer stops."""
    return [without_echo(said) for said in generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                                    stop=ANSWER_STOPS)]


def generate(model: Any, tokenizer: Any, prompts: Sequence[list[dict[str, str]]], *, max_new_tokens: int,
             batch_size: int = 16, batch_tokens: int = 4096, stop: Sequence[str] = ()) -> list[str]:
    """Greedy answers, batched with left padding; each cut before the first of `stop` it reaches, as the model server
    cuts them (an answer that reached one generates no further).

    Batches of 16 (at most 4096 prompt tokens, padding included): the demo job's 46 evaluation prompts (SmolLM2-135M,
    64 new tokens, one thread, 2-core CPU shared with other work) took 48 s against 58-64 s in batches of 8 (2048
    tokens) and 67 s in one batch of 46 (padding every prompt to the longest), the same answers each time."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    # Similar lengths batched together (little padding); a long prompt goes alone, not padded 8 times over.
    batches: list[list[int]] = []
    for i in sorted(range(len(texts)), key=lambda i: lengths[i]):
        if batches and len(batches[-1]) < batch_size and (len(batches[-1]) + 1) * lengths[i] <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    out: dict[int, str] = {}
    device = next(model.parameters()).device
    for idx in batches:
        batch = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(device) for k, v in batch.items()}
        criteria = [_stops(tokenizer, batch["input_ids"].shape[1], stop)] if stop else None
        with torch.inference_mode():
            ids = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id,
                                 stopping_criteria=criteria)
        for i, row in zip(idx, ids[:, batch["input_ids"].shape[1]:]):
            text = tokenizer.decode(row, skip_special_tokens=True)
            cut = min((at for at in (text.find(s) for s in stop) if at >= 0), default=len(text))
            out[i] = text[:cut].strip()
    tokenizer.padding_side = side
    return [out[i] for i in range(len(texts))]


def _stops(tokenizer: Any, start: int, stop: Sequence[str]) -> Any:
    """A stopping criterion ending each answer once its own text holds a stop string. transformers' stop_strings
    also match across the prompt's end: an answer opening with "Q:" after the prompt's last newline stopped at once
    on "\nQ:", where the model server (which looks at the answer alone) goes on."""
    import torch
    from transformers import StoppingCriteria

    class Stops(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            said = tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
            return torch.tensor([any(s in text for s in stop) for text in said], device=input_ids.device)

    return Stops()


def answers_file(answers_dir: Path, model_dir: str | Path, max_new_tokens: int, dtype: str) -> Path:
    """The file that keeps one model's greedy answers: a base model or adapter directory (a version's adapter is never
    rewritten: a new version gets a new name), as it was on disk, answering with these settings."""
    path = Path(model_dir).resolve()
    weights = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.glob("*.safetensors"))
    key = json.dumps([str(path), weights, max_new_tokens, dtype, ANSWER_STOPS])  # answers kept before the stops differ
    return Path(answers_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def answered_once(prompts: Sequence[list[dict[str, str]]], answer: Any, kept: Path | None = None) -> list[str]:
    """answer(prompts) → answers, asked only for the distinct prompts that `kept` (a JSON file of this model's
    answers, by prompt) does not hold yet; new answers are added to it."""
    keys = [hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest() for p in prompts]
    known: dict[str, str] = json.loads(kept.read_text(encoding="utf-8")) if kept and kept.is_file() else {}
    todo = {k: p for k, p in zip(keys, prompts) if k not in known}
    if todo:
        known.update(zip(todo, answer(list(todo.values()))))
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
            partial = kept.with_suffix(f".{os.getpid()}.tmp")  # two workers may evaluate at once: whole files only
            partial.write_text(json.dumps(known), encoding="utf-8")
            partial.replace(kept)
    return [known[k] for k in keys]


def evaluate(base_model: str, val_rows: Sequence[Any], new_adapter: str | Path, *, system_prompt: str,
             deployed_adapter: str | Path | None = None, max_new_tokens: int = 96,
             probe: Sequence[dict[str, Any]] | None = None, threads: int = 0,
             base_answers: Sequence[str] | None = None, val_hits: Sequence[Scored] | None = None,
             offstore_hits: Mapping[str, Scored] | None = None, grounding: GroundingSpec = GROUNDING,
             on_model: Callable[[str, Any, Any], None] | None = None, answers_dir: Path | None = None
             ) -> Evaluation:
    """Answers and scores of base, deployed (when given) and new adapter; see the module docstring.

    answers_dir: where each model's greedy answers are kept (answered_once): a prompt the base model or the
    deployed version answered in an earlier evaluation (the deployed one as that job's new version) is not
    answered again, and a prompt asked twice in one evaluation is answered once.

    base_answers: the base model's answers to these same prompts (validation, then probe, then
    validation with retrieval, then off-store), when already known; greedy decoding makes them the same
    every time. val_hits: the retrieved pairs (with their cosines) for each validation question
    (trainer.context); given, every model also answers the validation questions with them in front, as
    the bot asks, scored under "with_retrieval", and what the bot would send after its grounding check
    (core.grounding) is counted right / wrong / don't know under "sent", with the share of
    offstore_hits' questions (off-store, never taught) it refuses. on_model(name, model, tokenizer) is called
    while each model is loaded, so other questions are answered without loading it again (trainer.live).
    """
    import torch

    from core.machine import physical_cores

    cuda = torch.cuda.is_available()
    before = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(threads or physical_cores())
    try:
        return _evaluate(base_model, val_rows, new_adapter, system_prompt=system_prompt,
                         deployed_adapter=deployed_adapter, max_new_tokens=max_new_tokens, probe=probe,
                         base_answers=base_answers, cuda=cuda, val_hits=val_hits, offstore_hits=offstore_hits,
                         grounding=grounding, on_model=on_model, answers_dir=answers_dir)
    finally:
        torch.set_num_threads(before)


def _evaluate(base_model: str, val_rows: Sequence[Any], new_adapter: str | Path, *, system_prompt: str,
              deployed_adapter: str | Path | None, max_new_tokens: int, probe: Sequence[dict[str, Any]] | None,
              base_answers: Sequence[str] | None, cuda: bool, val_hits: Sequence[Scored] | None = None,
              offstore_hits: Mapping[str, Scored] | None = None, grounding: GroundingSpec = GROUNDING,
              on_model: Callable[[str, Any, Any], None] | None = None, answers_dir: Path | None = None
              ) -> Evaluation:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    probe = list(probe if probe is not None else load_probe())
    questions = [str(field_of(r, "question")) for r in val_rows]
    references = [str(field_of(r, "answer")) for r in val_rows]
    prompts = [prompt_messages(system_prompt, q) for q in questions + [p["question"] for p in probe]]
    hits = [list(h) for h in val_hits] if val_hits is not None else None
    contexts = [[(q, a) for q, a, _ in h] for h in hits] if hits is not None else None
    offstore = dict(offstore_hits or {}) if hits is not None else {}
    if contexts is not None:  # as the bot asks: retrieved pairs in front (none close: the "no answer" shape)
        prompts += [prompt_messages(system_prompt, q, c) for q, c in zip(questions, contexts)]
        prompts += [prompt_messages(system_prompt, q, [(cq, ca) for cq, ca, _ in h]) for q, h in offstore.items()]

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    dtype = torch.bfloat16 if cuda else torch.float32

    def load(adapter: str | Path | None):
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
        if adapter is not None:  # merged: generation runs at the base model's speed
            with peft_wraps_quietly():
                model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        return model.to("cuda" if cuda else "cpu").eval()

    answers: dict[str, list[str]] = {}
    if base_answers is not None and len(base_answers) == len(prompts):
        answers["base"] = list(base_answers)
    models = ([("base", None)] if "base" not in answers else []) + \
        ([("deployed", deployed_adapter)] if deployed_adapter else []) + [("new", new_adapter)]
    for name, adapter in models:
        def answer(todo: list[list[dict[str, str]]], adapter: str | Path | None = adapter, name: str = name
                   ) -> list[str]:
            model = load(adapter)  # only when something is left to answer
            try:
                said = answer_as_bot(model, tokenizer, todo, max_new_tokens=max_new_tokens)
                if on_model is not None:  # the live questions, while this model is loaded (trainer.live)
                    on_model(name, model, tokenizer)
                return said
            finally:
                del model

        kept = answers_file(answers_dir, adapter or base_model, max_new_tokens, str(dtype)) if answers_dir else None
        answers[name] = answered_once(prompts, answer, kept)

    n, n_probe = len(questions), len(probe)
    metrics = EvalScores(n_validation=n, n_probe=n_probe,
                         n_key_fact=sum(carries_key_fact("", r, q) is not None for r, q in zip(references, questions)),
                         n_with_context=sum(bool(c) for c in contexts) if contexts is not None else None)
    for name in ("base", "deployed", "new"):
        if name not in answers:
            continue
        plain, probe_answers = answers[name][:n], answers[name][n:n + n_probe]
        scores = score(plain, questions, references, probe_answers, probe)
        if hits is not None:
            rag_answers = answers[name][n + n_probe:n + n_probe + n]
            rag = score(rag_answers, questions, references, [], [])
            scores.with_retrieval = RetrievalScores(key_fact=rag.key_fact, key_fact_hits=rag.key_fact_hits,
                                                    rougeL=rag.rougeL)
            scores.sent = outcomes(questions, references, rag_answers, hits, list(offstore),
                                   answers[name][n + n_probe + n:], list(offstore.values()), grounding)
        setattr(metrics, name, scores)
    samples = []
    for i in range(min(SAMPLES, n)):
        sample = Sample(question=questions[i], reference=references[i], base=answers["base"][i],
                        deployed=answers["deployed"][i] if "deployed" in answers else None, new=answers["new"][i])
        if contexts is not None:  # what the bot would answer: the deployment smoke test asks this way
            sample.context = [tuple(pair) for pair in contexts[i]]
            sample.new_with_retrieval = answers["new"][n + n_probe + i]
            sample.base_with_retrieval = answers["base"][n + n_probe + i]
            sample.sent = sent_text(questions[i], sample.new_with_retrieval, hits[i], grounding)
        samples.append(sample)
    return Evaluation(metrics=metrics, samples=samples, answers=answers)
