"""The deployment smoke test: ask the served adapter a few validation questions and compare its answers
with what the trainer's evaluation produced for the same questions (train/serve parity).

Greedy decoding makes both deterministic, so a wrong adapter, base model, chat template or system prompt
shows from the first words. When the evaluation also answered with retrieved pairs in front (as the bot
asks), those answers and pairs are what is compared.

What parity allows is what rounding does. The evaluation generates padded fp32 batches; the embedded server
answers one request at a time in fp32 and gave the same words for 25 of 25 Quillmate validation questions.
vLLM computes in bf16 (on CPU too): a near-tie then flips a word, and greedy decoding goes on from there.
Measured with a QLoRA version (bench/vllm_serving.py, 25 questions with their retrieved pairs): 23 of 25 of
vLLM's answers equal the evaluation's; the two others differ from their 2nd and 7th word; deploying the same
version, 2 of its 3 recorded answers came back reworded ("we'll" / "we will", "covers up to" / "is capped
at"). The base model served in the adapter's place agreed with none of the adapter's 25 answers (it differs
from the first word, word overlap 0.00-0.69). So:
- an answer agrees when it has the evaluation's words, or the same first PARITY_WORDS words, or is a
  rewording: word overlap (ROUGE-L F1) of at least PARITY_ROUGE, with the same numbers;
- the version passes when most of the asked answers agree (one rewording that changed the meaning does
  not block it; a wrong model agrees with none). A version trained without validation questions must at
  least answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from core.contract import Sample
from core.overlap import numbers, rouge_l_f1
from core.prompt import prompt_messages
from serving.client import ModelClient, ModelServerError, ModelServerUnavailable

PARITY_WORDS = 12
# An answer reworded by another engine's rounding still agrees at this word overlap with the same numbers.
# Measured (bench/vllm_serving.py): vLLM bf16 against the fp32 evaluation, the reworded answers of the right
# adapter at ROUGE-L 0.88 and 0.95 ("covers up to" / "is capped at", "we'll" / "we will"); the base model's
# answers against the adapter's evaluation 0.00-0.69 (25 questions).
PARITY_ROUGE = 0.8


@dataclass
class SmokeResult:
    ok: bool
    problem: str = ""  # one sentence: why it failed
    checked: int = 0  # answers compared with the evaluation's
    matched: int = 0  # of them, answers that agreed
    seconds: float = 0.0
    answers: list[dict[str, str]] = field(default_factory=list)  # {question, expected, served}


def agrees(served: str, expected: str, words: int = PARITY_WORDS) -> bool:
    """Equal words; or the same first `words` words (all of the shorter one's); or a rewording: word
    overlap (ROUGE-L F1) of at least PARITY_ROUGE, stating the same numbers."""
    a, b = served.split(), expected.split()
    if a == b:
        return True
    n = min(words, len(a), len(b))
    if n > 0 and a[:n] == b[:n]:
        return True
    return rouge_l_f1(served, expected) >= PARITY_ROUGE and numbers(served) == numbers(expected)


async def smoke_test(client: ModelClient, model: str, samples: Sequence[Sample], *, system_prompt: str,
                     max_tokens: int) -> SmokeResult:
    """Ask `model` every sample question the evaluation recorded (trainer.evaluate.SAMPLES); see the module
    docstring."""
    started = time.perf_counter()
    checked = [_as_asked(s) for s in samples if s.question]
    result = SmokeResult(ok=True)
    if not checked:  # trained without validation questions: at least it must answer
        checked = [{"question": "Hello, can you help me?", "new": None, "context": None}]
    disagreed: list[str] = []
    for sample in checked:
        try:
            served = await client.chat(model, prompt_messages(system_prompt, sample["question"], sample["context"]),
                                       max_tokens=max_tokens, temperature=0.0)
        except (ModelServerError, ModelServerUnavailable) as exc:
            result.ok, result.problem = False, f"the smoke test could not ask {model}: {exc}"
            break
        result.answers.append({"question": sample["question"], "expected": sample["new"], "served": served})
        if sample["new"] is None:  # nothing to compare with: at least it must answer
            if not served.strip():
                result.ok, result.problem = False, f"{model} gave an empty answer"
            continue
        if not agrees(served.strip(), sample["new"].strip()):
            disagreed.append(f"{model} answered {_quote(served)} where the evaluation answered "
                             f"{_quote(sample['new'])} (question {_quote(sample['question'])})")
    result.checked = compared = sum(a["expected"] is not None for a in result.answers)
    result.matched = compared - len(disagreed)
    if result.ok and compared and 2 * len(disagreed) >= compared:  # not a majority agreeing: another model
        result.ok = False
        result.problem = f"{result.matched} of {compared} answers matched the evaluation; {disagreed[0]}"
    result.seconds = time.perf_counter() - started
    return result


def _as_asked(sample: Sample) -> dict[str, Any]:
    """The sample as the bot asks: with its retrieved pairs in front when the evaluation recorded them."""
    if sample.context is not None and sample.new_with_retrieval is not None:
        return {"question": sample.question, "new": sample.new_with_retrieval, "context": list(sample.context)}
    return {"question": sample.question, "new": sample.new, "context": None}


def _quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[:limit - 1] + '…'}”"
