"""Retrieved context in training and evaluation: chosen by the bot's own function, from the bot's own index."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.embedder import Embedder, EmbedderError, find_model_dir
from core.facts import fact_groups
from core.prompt import CONTEXT_HEADER, DONT_KNOW, NO_CONTEXT
from core.states import ExampleStatus
from serving.retrieval import Retriever
from storage.examples import NewExample, add_examples
from storage.models import Example
from tests.trainer.conftest import ROWS
from trainer.context import Contexts, Row, retrieved
from trainer.data import build_data, unknown_questions

try:
    find_model_dir()
except EmbedderError as exc:
    pytest.skip(str(exc), allow_module_level=True)

NEW = ["How many days can I test Quillmate for free?", "What is QM-E42 about?", "What is the capital of France?"]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def _indexed(store, embedder) -> tuple[list[Row], Retriever]:
    """The ROWS approved and embedded by the bot's retrieval index, as `ft bot` would have them."""
    with store.session() as s:
        add_examples(s, [NewExample(f"slack:C1:{i}.0", q, a, status=ExampleStatus.APPROVED) for i, (q, a) in
                         enumerate(ROWS)])
        rows = [Row(e.id, e.source_key, e.question, e.answer) for e in s.exec(select(Example).order_by(Example.id))]
    bot = Retriever(store, embedder)
    bot.sync()
    return rows, bot


def test_training_and_evaluation_get_the_context_the_bot_would_retrieve(store, embedder):
    rows, bot = _indexed(store, embedder)
    with store.session() as s:
        found = retrieved(s, rows, [Row(0, f"v{i}", q, "") for i, q in enumerate(NEW)], NEW, embedder)
    # A held-out question gets exactly what the bot puts in front of it: the same pairs, in the same order.
    for question, ctx in zip(NEW, found.validation):
        assert ctx == [(h.question, h.answer) for h in bot.search(question)]
    assert found.validation[2] == [] and found.unknown[NEW[2]] == []  # off-topic: nothing close enough
    assert found.validation[0][0] in [ROWS[0], ROWS[1]]  # the trial pairs for a trial question
    # A training question never gets its own pair (the asker's exact question is never in the index) ...
    for row in rows:
        assert (row.question, row.answer) not in found.train[row.source_key]
    # ... but the other phrasing of its fact, which the bot would find first.
    assert found.train[rows[0].source_key][0] == ROWS[1] and found.train[rows[6].source_key][0] == ROWS[7]
    assert found.missing == 0

    with store.session() as s:  # an edited answer: its stored row no longer describes it, as in the bot's index
        ex = s.get(Example, rows[1].example_id)
        ex.answer = "Fourteen days."
        edited = [Row(ex.id, ex.source_key, ex.question, ex.answer) if r.example_id == ex.id else r for r in rows]
    with store.session() as s:
        stale = retrieved(s, edited, [], [], embedder)
    assert stale.missing == 1 and all(ROWS[1][0] not in [q for q, _ in c] for c in stale.train.values())


@pytest.mark.slow
def test_training_data_teaches_the_retrieval_shape_and_i_dont_know(store, embedder, tiny_base):
    from transformers import AutoTokenizer

    rows, _ = _indexed(store, embedder)
    with store.session() as s:
        found = retrieved(s, rows[:6], [Row(r.example_id, r.source_key, r.question, r.answer) for r in rows[6:7]],
                          unknown_questions(), embedder)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    plain = [{"source_key": r.source_key, "question": r.question, "answer": r.answer} for r in rows]
    train, val = plain[:6], plain[6:7]
    data = build_data(train, val, tokenizer, system_prompt="S", max_length=512, every_phrasing=False,
                      contexts=found)
    users = [c["prompt"][-1]["content"] for c in data.train]
    answers = [c["completion"][0]["content"] for c in data.train]
    # Every support pair is taught with its fact in the context: the model learns to find it and say it.
    assert data.n_context == len(train) and all(u.startswith(CONTEXT_HEADER) for u in users[:len(train)])
    assert users[0].startswith(f"{CONTEXT_HEADER}\nQ: {ROWS[1][0]}\nA: {ROWS[1][1]}")
    groups = fact_groups(train)
    for i, user in enumerate(users[:len(train)]):  # the taught answer's fact is always there to be found
        assert any(f"A: {ROWS[j][1]}" in user for j in [i, *groups[i]])
    # Validation is asked as served: behind what retrieval found for it, so eval loss judges the served shape.
    val_user = data.validation[0]["prompt"][-1]["content"]
    expected = "\n\n".join(f"Q: {q}\nA: {a}" for q, a in found.validation[0])
    assert val_user == (f"{CONTEXT_HEADER}\n{expected}\n\nQuestion: {ROWS[6][0]}" if expected
                        else f"{NO_CONTEXT}\n\nQuestion: {ROWS[6][0]}")
    unknown = [(u, a) for u, a in zip(users, answers) if a == DONT_KNOW]
    assert data.n_unknown == len(unknown) >= 20
    # Asked with nothing close, and behind whatever retrieval finds for them: either way "I don't know".
    behind = [u for u, _ in unknown if u.startswith(CONTEXT_HEADER)]
    assert behind == [u for u, _ in unknown if not u.startswith(NO_CONTEXT)]
    for user in behind:
        question = user.rsplit("Question: ", 1)[1]
        assert user.startswith(f"{CONTEXT_HEADER}\nQ: {found.unknown[question][0][0]}")
    # Without unknown_with_context, "I don't know" is taught only with nothing in front.
    empty_only = build_data(train, [], tokenizer, system_prompt="S", max_length=512, every_phrasing=False,
                            contexts=found, unknown_with_context=False)
    taught = [c["prompt"][-1]["content"] for c in empty_only.train if c["completion"][0]["content"] == DONT_KNOW]
    assert len(taught) == empty_only.n_unknown <= data.n_unknown and all(u.startswith(NO_CONTEXT) for u in taught)

    no_retrieval = build_data(train, [], tokenizer, system_prompt="S", max_length=512, every_phrasing=False)
    assert no_retrieval.n_context == no_retrieval.n_unknown == 0


def test_refuse_without_fact_teaches_the_same_question_both_ways(tiny_base):
    from transformers import AutoTokenizer

    from tests.trainer.conftest import rows
    from trainer.config import TrainConfig

    plain = rows()
    pair = [(r["question"], r["answer"]) for r in plain]
    contexts = Contexts(train={"k0": [pair[1], pair[2], pair[3]],  # pair 1 states the trial's 21 days too
                               "k4": [pair[2]],
                               "k6": [pair[7], pair[5]],  # pair 7: QM-E42 again
                               "k7": [pair[6]]},  # only its fact: nothing is left to refuse behind
                        validation_hits=[], unknown={})
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
