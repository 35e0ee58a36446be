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


def test_answers_stop_where_the_model_server_stops_them(tiny_base):
    """The evaluation gets what the bot gets: an answer ends before the first stop string it writes, and a batch whose
    answers have all stopped generates no further (its tokens are what a stopped answer costs)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.evaluate import generate

    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    prompts = [prompt_messages("sys", q) for q in ("where is my ticket?", "how late is the last ferry?")]
    counted = []
    original = model.generate

    def counting(**kw):
        ids = original(**kw)
        counted.append(ids.shape[1] - kw["input_ids"].shape[1])
        return ids

    model.generate = counting
    free = generate(model, tokenizer, prompts, max_new_tokens=24)
    assert counted == [24] and all(len(text) > 12 for text in free)  # a random model rambles to the limit
    # A stop string each answer reaches early: each is cut before it, and generation ends there.
    stops = [free[0][6:12], free[1][6:12]]
    stopped = generate(model, tokenizer, prompts, max_new_tokens=24, stop=stops)
    assert stopped == [text[:min(i for i in (text.find(s) for s in stops) if i >= 0)].strip() for text in free]
    assert counted[1] < 24
    # Only the answer's own text counts: a stop string the prompt's end and the answer's start make together does not.
    prompt_end = tokenizer.apply_chat_template(prompts[0], add_generation_prompt=True, tokenize=False)[-3:]
    assert generate(model, tokenizer, prompts[:1], max_new_tokens=24, stop=[prompt_end + free[0][:2]]) == free[:1]
