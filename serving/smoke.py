"""The deployment smoke test: ask the served adapter a few validation questions and compare its answers
with what the trainer's evaluation produced for the same questions (train/serve parity).

Greedy decoding makes both deterministic, so a wrong adapter, base model, chat template or system
prompt shows from the first words. When the evaluation also answered with retrieved pairs in front (as the bot asks), those answers
and pairs are what is compared. An answer agrees when it equals the evaluation's, or when both agree on
their first PARITY_WORDS words (all of the shorter one's words, if it has fewer): the evaluation generates
padded batches, the server one request at a time, so float rounding may flip a near-tie late in an answer.

Across engines the rounding is coarser: vLLM serves in bf16 (on CPU too), the evaluation runs in fp32 on
CPU. Measured (bench/vllm_serving.py, Quillmate, 25 validation questions with their retrieved pairs, a
QLoRA version): vLLM's answers equal the evaluation's for 23 of 25, and 2 differ from their 2nd and 7th
word (a near-tie flipped; one of them then says something else); the embedded server's equal all 25. The
base model served in place of the adapter agrees with none of the adapter's 25 (they differ from the first
word). So parity is held per version, not per answer: the version passes when a majority of the asked
answers agree (a version trained without validation questions must at least answer). A right version on bf16 fails that about 0.4 % of the time with 5
questions (8 % of answers flipped); a wrong model, which agreed on 0 of 25, does not pass it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from serving.client import ModelClient, ModelServerError, ModelServerUnavailable
from storage.prompt import prompt_messages

PARITY_WORDS = 12
QUESTIONS = 5  # the evaluation records as many samples (trainer.evaluate.SAMPLES)


@dataclass
class SmokeResult:
    ok: bool
    problem: str = ""  # one sentence: why it failed
    checked: int = 0  # answers compared with the evaluation's
    matched: int = 0  # of them, answers that agreed
    seconds: float = 0.0
    answers: list[dict[str, str]] = field(default_factory=list)  # {question, expected, served}


def agrees(served: str, expected: str, words: int = PARITY_WORDS) -> bool:
    a, b = served.split(), expected.split()
    if a == b:
        return True
    n = min(words, len(a), len(b))
    return n > 0 and a[:n] == b[:n]


async def smoke_test(client: ModelClient, model: str, samples: Sequence[dict[str, Any]], *, system_prompt: str,
                     max_tokens: int, questions: int = QUESTIONS) -> SmokeResult:
    """Ask `model` up to `questions` of the evaluation's sample questions; see the module docstring."""
    started = time.perf_counter()
    checked = [_as_asked(s) for s in samples if s.get("question") and isinstance(s.get("new"), str)][:questions]
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
        result.problem = f"{compared - len(disagreed)} of {compared} answers matched the evaluation; {disagreed[0]}"
    result.seconds = time.perf_counter() - started
    return result


def _as_asked(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample as the bot asks: with its retrieved pairs in front when the evaluation recorded them."""
    if "context" in sample and isinstance(sample.get("new_with_retrieval"), str):
        return {"question": sample["question"], "new": sample["new_with_retrieval"],
                "context": [tuple(pair) for pair in sample["context"] or []]}
    return {"question": sample["question"], "new": sample["new"], "context": None}


def _quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[:limit - 1] + '…'}”"
