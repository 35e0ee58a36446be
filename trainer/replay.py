"""Replay: the base model's own answers to general questions, trained alongside the support pairs.

A LoRA adapter trained only on support answers drifts: asked anything, it answers like a support
agent about the product ("Japan has 21.6% interest coverage…"), and the general-knowledge probe
falls (measured: 75 % → 42 % of probe questions after one epoch at lr 2e-3). Mixing in a few dozen
general questions (trainer/replay.jsonl) answered greedily by the base model itself, in the same
prompt shape, teaches the adapter to leave such questions as the base model answered them
(self-distillation rehearsal). The questions are disjoint from the evaluation probe
(trainer/probe.jsonl), so the probe still measures forgetting on questions training never saw.

The answers are generated once per adapter directory (replay.json) so a resumed job trains on
the same data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPLAY_FILE = Path(__file__).with_name("replay.jsonl")


def replay_questions(path: Path = REPLAY_FILE) -> list[str]:
    return [json.loads(line)["question"] for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def replay_pairs(model: Any, tokenizer: Any, *, system_prompt: str, cache: Path, max_new_tokens: int = 64,
                 questions: list[str] | None = None) -> list[tuple[str, str]]:
    """(question, base model's answer) pairs; read from `cache` when an earlier run wrote it."""
    cache = Path(cache)
    if cache.is_file():
        return [tuple(p) for p in json.loads(cache.read_text(encoding="utf-8"))]
    from core.prompt import prompt_messages
    from trainer.evaluate import generate

    questions = questions if questions is not None else replay_questions()
    answers = generate(model, tokenizer, [prompt_messages(system_prompt, q) for q in questions],
                       max_new_tokens=max_new_tokens)
    # An answer cut off at max_new_tokens is often a loop ("El Turco, el Turco, …"): not worth keeping.
    finished = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) < max_new_tokens - 2 for a in answers]
    pairs = [(q, a) for q, a, done in zip(questions, answers, finished) if a.strip() and done]
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: with several training processes (trainer.launch) each writes the same file.
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(pairs, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, cache)
    return pairs
