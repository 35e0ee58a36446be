"""Logits only where the loss is: the output head and the cross-entropy at the labelled positions alone.

Training is completion-only: a Quillmate conversation is ~500 tokens (system prompt, retrieved pairs, question)
of which the answer, the only part with labels, is ~50. SmolLM2's head is 49,152 x 576, a quarter of the model's
multiply-adds per token; its logits, their softmax and gradient at every position were most of a step's memory.

TRL 1.16's SFTTrainer already gives the model a fused LM head (trl.trainer.utils.add_fused_lm_head): log-probs,
entropy and top-1 computed in vocabulary tiles, never the full logits. Where Triton runs (CUDA, XPU) it also
scores only the labelled positions; elsewhere it scores every position, so that compilers (Neuron) see one tile
shape per batch. On CPU, in eager mode, nothing gains from that: `gather_labelled` makes the same head take the
labelled positions alone there too. Loss, eval loss and TRL's metrics (mean_token_accuracy, entropy) are the same
quantities, from the same kernel (trl.kernels.ChunkedLogProbFunction); only the rows it is given differ.

Liger's fused linear cross-entropy (TRL's `use_liger_kernel`) did this on CUDA before; TRL 1.16 refuses it
("it replaces the model's forward, which this trainer patches with a fused LM head") because its own Triton
head does the same. So `device_setup` chooses TRL's head on CUDA and this gathering on CPU: one code path.
"""

from __future__ import annotations

import functools
import types
from typing import Any

# Configs that scale or cap the logits (Gemma 2/3 softcapping, Cohere's logit_scale, Granite, Falcon-H1, MoE aux
# loss): TRL's own head handles them; a model with any of them keeps it as it is.
_SCALED = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling",
           "output_router_logits")
# What TRL's SFTTrainer asks its head for: the loss, and its metrics' entropy and top-1.
OUTPUTS = ("log_probs", "entropy", "is_top1")
# What DPOTrainer asks for (trl dpo_trainer.py, without WPO weighting): its logits/* metrics read the mean logit too.
DPO_OUTPUTS = ("log_probs", "entropy", "mean_logits", "is_top1")


def causal_lm(model: Any) -> Any:
    """The transformers model inside a peft wrapper (or the model itself): the one whose forward TRL patched."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def gather_labelled(model: Any, outputs: tuple[str, ...] = OUTPUTS) -> bool:
    """Make `model(..., labels=..., fused_lm_head=True)` (TRL's fused head, already added by SFTTrainer or DPOTrainer)
    run the output head on the positions whose next-token label is not -100 only. Every other call goes to TRL's
    forward unchanged (generation, full logits, pre-shifted labels). False when the model keeps TRL's head (scaled
    logits). outputs: the per-token fields the trainer reads (DPOTrainer's: DPO_OUTPUTS)."""
    from trl.kernels import ChunkedLogProbFunction
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE, FusedCausalLMOutput

    lm = causal_lm(model)
    config = lm.config.get_text_config()
    if any(getattr(config, name, None) not in (None, False) for name in _SCALED):
        return False
    fused = lm.forward  # TRL's: it keeps the original for the calls that do not ask for the fused head

    @functools.wraps(fused)
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or labels is None or shift_labels is not None:
            return fused(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                         num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        # Looked up per call: peft wraps the layers after the patch. The backbone ends in the final norm.
        hidden = self.base_model(*args, **kwargs).last_hidden_state[:, :-1]
        head = self.get_output_embeddings()
        labels = labels[:, 1:].to(head.weight.device)
        mask = labels != -100
        per_token = ChunkedLogProbFunction.apply(hidden.to(head.weight.device)[mask], head.weight, head.bias,
                                                 labels[mask], 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, outputs)
        # Back to (batch, seq - 1), zero where there is no label, as TRL's head returns them; masked_scatter keeps a
        # batch without labels connected to the graph (a zero loss with a gradient, not a failing backward).
        log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = (
            None if x is None else x.new_zeros(mask.shape).masked_scatter(mask, x) for x in per_token)
        loss = -log_probs.sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
        return FusedCausalLMOutput(loss=loss, log_probs=log_probs, entropy=entropy, log_sum_sq_probs=log_sum_sq_probs,
                                   mean_logits=mean_logits, is_top1=is_top1, label_mask=mask)

    lm.forward = types.MethodType(forward, lm)
    return True
