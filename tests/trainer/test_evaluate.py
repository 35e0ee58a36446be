"""The evaluation answers a prompt once per model: never twice in one evaluation, never again in the next."""

from core.prompt import prompt_messages
from trainer.evaluate import answered_once, answers_file


def test_each_model_answers_a_prompt_once(tmp_path):
    asked = []

    def answer(prompts):
        asked.append([p[-1]["content"] for p in prompts])
        return [f"answer to {p[-1]['content']}" for p in prompts]

    kept = answers_file(tmp_path / "answers", tmp_path, 64, "torch.float32")
    first = [prompt_messages("sys", q) for q in ("a", "b", "a")]
    assert answered_once(first, answer, kept) == ["answer to a", "answer to b", "answer to a"]
    assert asked == [["a", "b"]]  # the repeated prompt was answered once

    # The next evaluation (the next job: the base model again, or this version now deployed) asks only what is new.
    again = [prompt_messages("sys", q) for q in ("b", "c")]
    assert answered_once(again, answer, kept) == ["answer to b", "answer to c"]
    assert asked == [["a", "b"], ["c"]]
    assert answered_once(again, answer, kept) == ["answer to b", "answer to c"] and len(asked) == 2

    # Other settings (answer length, precision) or another model are another file.
    assert answers_file(tmp_path / "answers", tmp_path, 96, "torch.float32") != kept
    assert answers_file(tmp_path / "answers", tmp_path / "other", 64, "torch.float32") != kept
