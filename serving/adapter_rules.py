"""What vLLM accepts in a LoRA adapter (`vllm/lora/peft_helper.py::validate_legal`, `vllm/config/lora.py`).

The embedded server refuses what vLLM would refuse, so an adapter it serves is one production serves
too; `ft serve --vllm` checks its --max-lora-rank against the same ranks. No heavy imports here.
"""

from __future__ import annotations

from typing import Any

# vLLM's `max_lora_rank` is a Literal of these (vllm/config/lora.py).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# The only modules_to_save vLLM serves.
ALLOWED_MODULES_TO_SAVE = {"classifier", "score"}


def vllm_problems(raw: dict[str, Any], max_lora_rank: int) -> list[str]:
    """Why vLLM would refuse this adapter_config.json (empty: it serves it)."""
    problems = []
    ranks = [("r", raw.get("r", 8))] + [(f"rank_pattern[{k}]", v) for k, v in (raw.get("rank_pattern") or {}).items()]
    for where, rank in ranks:
        if isinstance(rank, int) and rank > max_lora_rank:
            problems.append(f"LoRA rank {rank} ({where}) is greater than max_lora_rank {max_lora_rank}; "
                            f"restart the server with a higher --max-lora-rank")
    if raw.get("bias", "none") != "none":
        problems.append(f"bias={raw.get('bias')!r} is not supported; train with bias='none'")
    extra = sorted(set(raw.get("modules_to_save") or []) - ALLOWED_MODULES_TO_SAVE)
    if extra:
        problems.append(f"modules_to_save {extra} is not supported (only 'classifier' and 'score'); TRL adds "
                        "'lm_head' when a chat template adds tokens")
    if raw.get("use_dora"):
        problems.append("DoRA (use_dora) is not supported")
    if raw.get("lora_bias"):
        problems.append("lora_bias is not supported")
    init = raw.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().split("_")[0] in {"pissa", "olora", "corda", "loftq"}:
        problems.append(f"init_lora_weights={init!r} is not supported")
    if raw.get("layer_replication"):
        problems.append("layer_replication is not supported")
    if raw.get("alora_invocation_tokens"):
        problems.append("aLoRA is not supported")
    return problems


def module_of(key: str) -> str:
    """'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight' -> 'model.layers.0.mlp.up_proj'."""
    key = key.removeprefix("base_model.model.")
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part.startswith("lora_"):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])  # modules_to_save and the like: the module holding the tensor
