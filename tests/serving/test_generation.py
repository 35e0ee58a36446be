"""The engine's greedy decoding with prompt lookup: the same answer as plain greedy decoding, fewer passes."""

from __future__ import annotations

import torch

from storage.prompt import prompt_messages

CONTEXT = [("How long is the trial?", "The free trial lasts 21 days, no card needed, and you keep your data."),
           ("Can I change plans?", "Yes, switch plans any time under Settings > Billing; the price is prorated.")]


def test_greedy_answers_equal_plain_greedy_decoding_in_fewer_forward_passes(tiny):
    from transformers import GenerationConfig

    from serving.generation import Engine

    engine = Engine(tiny["base"], max_lora_rank=8)
    engine.load_adapter("a1", tiny["a1"])
    messages = prompt_messages("You are the support assistant.", "How long does the trial last?", CONTEXT)
    passes = {}
    for model in ("tiny-llama", "a1"):
        calls = []
        hook = engine.base.register_forward_hook(lambda *_: calls.append(1))
        try:
            got = engine.generate(model, messages, max_tokens=48, temperature=0, ignore_eos=True)
        finally:
            hook.remove()
        assert got.completion_tokens == 48 and got.finish_reason == "length"

        # What transformers makes of the same prompt, token by token, without drafting from the prompt.
        ids = torch.tensor([engine.prompt_ids(messages)])
        plain = GenerationConfig(max_new_tokens=48, min_new_tokens=48, do_sample=False, pad_token_id=engine.pad_id,
                                 eos_token_id=engine.eos_ids)
        with torch.inference_mode():
            model_now = engine._merge("a1" if model == "a1" else None)
            out = model_now.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=plain)
        assert got.text == engine.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        passes[model] = len(calls)
    # Plain greedy decoding takes a forward pass per token. The tiny random base model falls into a loop
    # of its own earlier tokens, so drafts from the text so far are accepted several at a time (a real
    # model does the same when it copies a retrieved answer); a1's noise never repeats: no fewer passes.
    assert passes["tiny-llama"] < 40, passes
    assert passes["a1"] <= 48, passes
