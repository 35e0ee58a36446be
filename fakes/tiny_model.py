"""A tiny Llama-shaped model, its tokenizer and LoRA adapters, built inside the tests (no downloads).

`build_tiny_model(path)` writes an HF directory (config, safetensors weights, a byte-level BPE tokenizer
with ChatML special tokens and a ChatML chat template) that `AutoModelForCausalLM` / `AutoTokenizer`
load like any real base model. `make_lora_adapter(base_dir, out_dir, seed)` writes a PEFT LoRA
adapter for it whose lora_B is random, so the adapter really changes what the model says.
Both are deterministic: the same arguments give the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
CORPUS = [
    "How long does the free trial last? The trial lasts 21 days.",
    "Can I export my invoices as PDF? Yes, open Billing and choose Export.",
    "How do I reset my password? Use the link on the sign-in page.",
    "Which plans do you offer? Solo, Team and Enterprise.",
    "Where do I change the invoice address? Settings, then Billing, then Address.",
    "You are the support assistant of our company. Answer briefly and accurately.",
]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>",
                                   unk_token=None, bos_token=None)
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|endoftext|>"]})
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(path: str | Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """Write a tiny random Llama (hidden 32, 2 layers, 2 heads) and its ChatML tokenizer to `path`.

    Another `hidden_size` gives a model of the same family whose adapters do not fit this one.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<pad>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=2048,
                         bos_token_id=None, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=None)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_lora_adapter(base_dir: str | Path, out_dir: str | Path, seed: int, rank: int = 8,
                      **lora_kwargs: Any) -> Path:
    """Write a PEFT LoRA adapter (all linear layers) for the model at `base_dir`, with random lora_B.

    `lora_kwargs` go to LoraConfig (e.g. bias="all" or modules_to_save=["lm_head"] to build adapters
    a vLLM-compatible server must refuse).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out_dir = Path(out_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", lora_dropout=0.0,
                        task_type="CAUSAL_LM", **{"bias": "none", **lora_kwargs})
    torch.manual_seed(seed)
    model = get_peft_model(base, config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    model.save_pretrained(out_dir)
    return out_dir
