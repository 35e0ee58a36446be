"""bench/trust_questions.jsonl: the held-out paraphrases bench/trust.py asks besides the snapshot's validation side.
Each must count: a reference with no key item would be left out of right / wrong silently (core.facts)."""

import json
from pathlib import Path

from core.facts import carries_key_fact

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _rows(name):
    return [json.loads(line) for line in (BENCH / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_written_question_has_a_fact_to_check_and_is_asked_once():
    rows = _rows("trust_questions.jsonl")
    assert len(rows) >= 60  # issue 29: 25 held-out questions were too few to see 2 wrong answers move
    questions = [r["question"] for r in rows]
    assert len(set(questions)) == len(questions)
    assert not set(questions) & {r["question"] for r in _rows("offstore_questions.jsonl")}
    for r in rows:
        assert r["fact"].startswith("F") and r["fact"][1:].isdigit(), r
        assert carries_key_fact("", r["reference"], r["question"]) is False, r  # it has key items; "" states none
        assert carries_key_fact(r["reference"], r["reference"], r["question"]) is True, r
