"""Retrieved context in training and evaluation: leave-one-out neighbours from the stored vectors."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import select

from storage.embeddings import embedded_text, put, text_hash
from storage.examples import NewExample, add_examples
from storage.models import Example, ExampleStatus
from storage.prompt import CONTEXT_HEADER, DONT_KNOW, NO_CONTEXT
from tests.trainer.conftest import ROWS
from trainer.context import Row, contexts
from trainer.data import build_data, fact_groups

MODEL = "test-embedder"


def _vec(*xs: float) -> bytes:
    v = np.array(xs + (0.0,) * (8 - len(xs)), dtype="<f4")
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def _store_rows(store) -> list[Row]:
    with store.session() as s:
        add_examples(s, [NewExample(f"slack:C1:{i}.0", q, a, status=ExampleStatus.APPROVED) for i, (q, a) in
                         enumerate(ROWS)])
        rows = [Row(e.id, e.source_key, e.question, e.answer) for e in s.exec(select(Example).order_by(Example.id))]
        # The two trial questions point the same way, the two QM-E42 ones too; the rest are apart.
        directions = {0: (1, .2), 1: (1, .25), 6: (0, 0, 1, .1), 7: (0, 0, 1, .15)}
        put(s, [(r.example_id, MODEL, 8, text_hash(embedded_text(r.question, r.answer)),
                 _vec(*directions.get(n, (0,) * (3 + n % 4) + (1,)))) for n, r in enumerate(rows) if n != 5])
    return rows


def test_neighbours_leave_one_out_threshold_and_missing_vectors(store):
    rows = _store_rows(store)
    with store.session() as s:
        found = contexts(s, MODEL, rows, rows, k=3, min_score=0.5, leave_one_out=True)
        [self_included] = contexts(s, MODEL, rows[:1], rows, k=1, min_score=0.5, leave_one_out=False)
    assert found[0] == [(rows[1].question, rows[1].answer)]  # the other trial question, never itself
    assert found[6] == [(rows[7].question, rows[7].answer)]
    assert found[3] == []  # nothing close enough
    assert found[5] is None  # never embedded: no context rather than a wrong one
    assert self_included == [(rows[0].question, rows[0].answer)]

    with store.session() as s:  # an edited question: its stored vector no longer describes it
        ex = s.get(Example, rows[1].example_id)
        ex.question = "How many days of trial do I get?"
        edited = Row(ex.id, ex.source_key, ex.question, ex.answer)
    with store.session() as s:
        assert contexts(s, MODEL, [edited], rows, k=3, min_score=0.5, leave_one_out=True) == [None]


def test_training_data_teaches_the_retrieval_shape_and_i_dont_know(store, tiny_base):
    from transformers import AutoTokenizer

    rows = _store_rows(store)
    with store.session() as s:
        ctx = contexts(s, MODEL, rows, rows, k=3, min_score=0.5, leave_one_out=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    plain = [{"source_key": r.source_key, "question": r.question, "answer": r.answer} for r in rows]
    data = build_data(plain, [], tokenizer, system_prompt="S", max_length=512, every_phrasing=False,
                      contexts={r.source_key: c for r, c in zip(rows, ctx)})
    users = [c["prompt"][-1]["content"] for c in data.train]
    answers = [c["completion"][0]["content"] for c in data.train]
    # Every support pair is taught with its fact in the context: the model learns to find it and say it.
    assert data.n_context == len(ROWS) and all(u.startswith(CONTEXT_HEADER) for u in users[:len(ROWS)])
    assert users[0] == f"{CONTEXT_HEADER}\nQ: {rows[1].question}\nA: {rows[1].answer}\n\nQuestion: {rows[0].question}"
    # Nothing close and no other pair with its fact: its own pair stands in (a fact stated once).
    assert users[3] == f"{CONTEXT_HEADER}\nQ: {rows[3].question}\nA: {rows[3].answer}\n\nQuestion: {rows[3].question}"
    groups = fact_groups(plain)
    for i, user in enumerate(users[:len(ROWS)]):  # the taught answer's fact is always there to be found
        assert any(f"A: {ROWS[j][1]}" in user for j in [i, *groups[i]])
    unknown = [(u, a) for u, a in zip(users, answers) if a == DONT_KNOW]
    assert data.n_unknown == len(unknown) >= 20
    # Asked with nothing close, or with neighbours that do not answer it: either way "I don't know".
    assert {u.split("\n")[0] for u, _ in unknown} == {NO_CONTEXT, CONTEXT_HEADER}
    # Without unknown_with_context, "I don't know" is taught only where nothing close was found.
    empty_only = build_data(plain, [], tokenizer, system_prompt="S", max_length=512, every_phrasing=False,
                            contexts={r.source_key: c for r, c in zip(rows, ctx)}, unknown_with_context=False)
    taught = [c["prompt"][-1]["content"] for c in empty_only.train if c["completion"][0]["content"] == DONT_KNOW]
    assert len(taught) == empty_only.n_unknown < data.n_unknown and all(u.startswith(NO_CONTEXT) for u in taught)

    no_retrieval = build_data(plain, [], tokenizer, system_prompt="S", max_length=512, every_phrasing=False)
    assert no_retrieval.n_context == no_retrieval.n_unknown == 0


def test_training_retrieves_with_the_bots_threshold():
    from serving.retrieval import THRESHOLD
    from trainer.config import TrainConfig

    assert TrainConfig().retrieval_min_score == THRESHOLD  # taught as it will be asked


def test_refuse_without_fact_teaches_the_same_question_both_ways(tiny_base):
    from transformers import AutoTokenizer

    from tests.trainer.conftest import rows
    from trainer.config import TrainConfig

    plain = rows()
    pair = [(r["question"], r["answer"]) for r in plain]
    contexts = {"k0": [pair[1], pair[2], pair[3]],  # pair 1 states the trial's 21 days too
                "k4": [pair[2]],
                "k6": [pair[7], pair[5]],  # pair 7: QM-E42 again
                "k7": [pair[6]]}  # only its fact: nothing is left to refuse behind
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    kw = dict(system_prompt="S", max_length=512, every_phrasing=False, contexts=contexts, unknown_with_context=False)
    base = build_data(plain, [], tokenizer, **kw)
    data = build_data(plain, [], tokenizer, refuse_without_fact=1.0, **kw)
    added = data.train[len(base.train):]
    taught = {(c["prompt"][-1]["content"].rsplit("Question: ", 1)[1], c["completion"][0]["content"]): c
              for c in added}
    assert set(taught) == {(plain[0]["question"], DONT_KNOW), (plain[4]["question"], DONT_KNOW),
                           (plain[6]["question"], DONT_KNOW)}
    assert data.n_unknown == base.n_unknown + 3
    for (question, _), conv in taught.items():
        user = conv["prompt"][-1]["content"]
        n = [r["question"] for r in plain].index(question)
        assert user.startswith(CONTEXT_HEADER) and f"A: {plain[n]['answer']}" not in user
    assert "21-day" not in taught[(plain[0]["question"], DONT_KNOW)]["prompt"][-1]["content"]
    assert f"A: {pair[5][1]}" in taught[(plain[6]["question"], DONT_KNOW)]["prompt"][-1]["content"]
    assert "QM-E42" not in taught[(plain[6]["question"], DONT_KNOW)]["prompt"][-1]["content"].split("Question:")[0]
    # The same questions are still taught with their fact in front, answered.
    assert all(c in data.train for c in base.train)
    with pytest.raises(ValueError, match="refuse_without_fact"):
        TrainConfig(refuse_without_fact=1.5)
