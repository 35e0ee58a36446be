"""Conversations in the base model's own chat template, loss on the answer only, long examples reported."""

import logging

from tests.trainer.conftest import rows
from trainer.data import build_data, conversation
from trainer.train import build_trainer


def test_loss_mask_covers_only_the_answer(tiny_cfg, tmp_path):
    data = rows()
    trainer, built, _ = build_trainer(tiny_cfg, data, [], tmp_path)
    tokenizer = trainer.processing_class
    example = trainer.train_dataset[0]
    batch = trainer.data_collator([example])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    trained = [i for i, label in zip(ids, labels) if label != -100]
    masked = [i for i, label in zip(ids, labels) if label == -100]
    # The whole rendered conversation uses the model's own template, system prompt first...
    full = tokenizer.decode(ids)
    assert full.startswith("<|im_start|>system\n" + tiny_cfg.system_prompt)
    # ...and the loss sees the answer and the end-of-turn token, nothing of the prompt.
    answer = built.train[0]["completion"][0]["content"]  # TRL keeps the order of the rows
    assert tokenizer.decode(trained).strip() == answer + "<|im_end|>"
    assert tiny_cfg.system_prompt in tokenizer.decode(masked) and "<|im_start|>assistant" in tokenizer.decode(masked)
    assert labels[:len(masked)] == [-100] * len(masked)  # the prompt is a prefix; the answer follows it


def test_loss_on_all_trains_the_question_too(tiny_cfg, tmp_path):
    import dataclasses

    trainer, built, _ = build_trainer(dataclasses.replace(tiny_cfg, loss_on="all"), rows(), [], tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    trained = [i for i, label in zip(batch["input_ids"][0].tolist(), batch["labels"][0].tolist()) if label != -100]
    assert built.train[0]["prompt"][-1]["content"] in trainer.processing_class.decode(trained)


def test_long_examples_are_reported_not_cut(tiny_base, caplog):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    data = rows()
    long_answer = "Billing " * 200
    data.append({"source_key": "long-1", "question": "Tell me everything about billing?", "answer": long_answer})
    with caplog.at_level(logging.WARNING, logger="ftbot.trainer"):
        built = build_data(data, rows(prefix="v")[:2], tokenizer, system_prompt="Be brief.", max_length=128,
                           every_phrasing=False)
    assert [(e["source_key"], e["side"]) for e in built.long_examples] == [("long-1", "train")]
    assert built.long_examples[0]["tokens"] > 128
    assert "long-1" in caplog.text
    assert all(long_answer not in c["completion"][0]["content"] for c in built.train)
    assert len(built.train) == len(data) - 1 and len(built.validation) == 2


def test_every_phrasing_adds_pairs_only_from_training_rows(tiny_base):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    built = build_data(rows(), rows(prefix="v"), tokenizer, system_prompt="Be brief.", max_length=256)
    assert built.n_approved == 8 and built.n_phrasing == 4 and len(built.train) == 12
    assert len(built.validation) == 8  # validation is never augmented
    assert conversation("S", "Q?", "A.") == {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}],
        "completion": [{"role": "assistant", "content": "A."}]}


def test_replay_pairs_are_the_base_models_own_answers_cached_per_adapter(tiny_cfg, tmp_path):
    import dataclasses
    import json

    from trainer.replay import replay_questions

    cfg = dataclasses.replace(tiny_cfg, replay=True)
    trainer, built, _ = build_trainer(cfg, rows(), [], tmp_path)
    cached = json.loads((tmp_path / "replay.json").read_text())
    # A random tiny model rarely finishes an answer; cut-off answers are dropped, so few or none survive.
    assert built.n_replay == cfg.replay_weight * len(cached) and len(cached) <= len(replay_questions())
    assert len(built.train) == 8 + 4 + built.n_replay
    questions = {c["prompt"][-1]["content"] for c in built.train}
    assert {q for q, _ in cached} <= questions
    # A resumed job trains on the same replay answers: they are read back, not generated again.
    (tmp_path / "replay.json").write_text(json.dumps([["What is 1 + 1?", "2"]]))
    _, again, _ = build_trainer(cfg, rows(), [], tmp_path)
    assert again.n_replay == cfg.replay_weight and again.train[-1]["completion"][0]["content"] == "2"
