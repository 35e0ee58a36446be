"""The engine's greedy decoding with prompt lookup: the same answer as plain greedy decoding, fewer passes."""

from __future__ import annotations

from core.prompt import prompt_messages

CONTEXT = [("How long is the trial?", "The free trial lasts 21 days, no card needed, and you keep your data."),
           ("Can I change plans?", "Yes, switch plans any time under Settings > Billing; the price is prorated.")]


def test_greedy_answers_equal_plain_greedy_decoding_in_fewer_forward_passes(tiny):
    from serving.generation import Engine

    messages = prompt_messages("You are the support assistant.", "How long does the trial last?", CONTEXT)
    answers, passes = {}, {}
    for lookup in (10, 0):  # 0: one token per forward pass (`ft serve --prompt-lookup 0`)
        engine = Engine(tiny["base"], max_lora_rank=8, prompt_lookup_tokens=lookup)
        engine.load_adapter("a1", tiny["a1"])
        for model in ("tiny-llama", "a1"):
            calls = []
            hook = engine.base.register_forward_hook(lambda *_, calls=calls: calls.append(1))
            try:
                got = engine.generate(model, messages, max_tokens=48, temperature=0, ignore_eos=True)
            finally:
                hook.remove()
            assert got.completion_tokens == 48 and got.finish_reason == "length"
            answers[lookup, model], passes[lookup, model] = got.text, len(calls)

    assert answers[10, "tiny-llama"] == answers[0, "tiny-llama"]
    assert answers[10, "a1"] == answers[0, "a1"] != answers[0, "tiny-llama"]
    assert passes[0, "tiny-llama"] == passes[0, "a1"] == 48  # the prompt's pass gives the first token
    # The tiny random base model falls into a loop of its own earlier tokens, so drafts from the text so
    # far are accepted several at a time (a real model does the same when it copies a retrieved answer).
    assert passes[10, "tiny-llama"] < 40, passes
