"""Logits only where the loss is (trainer.loss): the same loss and gradients as full logits, LoRA weights alone move."""

import pytest

from tests.trainer.conftest import rows, tiny_config


def _lora_model(tiny_base, checkpointing=False):
    """The tiny model as SFTTrainer holds it: LoRA on every linear layer (lora_B random, so every LoRA weight has a
    gradient), TRL's fused head added, then our gathering."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from trainer.loss import OUTPUTS, gather_labelled

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    if checkpointing:
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
        assert base.is_activation_checkpointing
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0,
                                            task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    add_fused_lm_head(model.get_base_model(), outputs=OUTPUTS)
    assert gather_labelled(model)
    model.train()
    return model


def _batch(tiny_base):
    """Two padded conversations, labels on the answers only (as completion-only training labels them)."""
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    ids, labels = [], []
    for question, answer in [("How long does the free trial last?", "The trial lasts 21 days."),
                             ("Which plans do you offer? Tell me all of them please.", "Solo, Team and Enterprise.")]:
        prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)
        p, a = tok(prompt)["input_ids"], tok(answer + "<|im_end|>")["input_ids"]
        ids.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(map(len, ids))
    pad = tok.pad_token_id
    return {"input_ids": torch.tensor([x + [pad] * (width - len(x)) for x in ids]),
            "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
            "labels": torch.tensor([x + [-100] * (width - len(x)) for x in labels])}


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gathered_loss_and_gradients_equal_the_full_logits(tiny_base, checkpointing):
    import torch

    model = _lora_model(tiny_base, checkpointing)
    batch = _batch(tiny_base)
    n_labels = int((batch["labels"][:, 1:] != -100).sum())
    assert 0 < n_labels < batch["labels"][:, 1:].numel() / 2  # most positions carry no loss

    full = model(**batch)  # transformers' own loss over full logits
    full.loss.backward()
    expected = _grads(model)
    model.zero_grad(set_to_none=True)

    gathered = model(**batch, fused_lm_head=True)
    gathered.loss.backward()
    got = _grads(model)

    torch.testing.assert_close(gathered.loss, full.loss, rtol=1e-5, atol=1e-6)
    # TRL's metrics read the same per-token fields: log-probs, top-1 and entropy at the labelled positions.
    shifted = batch["labels"][:, 1:]
    mask = shifted != -100
    logits = full.logits[:, :-1].detach().float()
    log_p = torch.log_softmax(logits, -1)
    torch.testing.assert_close(gathered.log_probs[mask], log_p.gather(-1, shifted.clamp(min=0).unsqueeze(-1))
                               .squeeze(-1)[mask], rtol=1e-4, atol=1e-5)
    assert torch.equal(gathered.is_top1[mask].bool(), (logits.argmax(-1) == shifted)[mask])
    torch.testing.assert_close(gathered.entropy[mask], -(log_p.exp() * log_p).sum(-1)[mask], rtol=1e-4, atol=1e-5)
    assert not gathered.log_probs[~mask].any()

    # Gradients: the same, and only on LoRA weights (every one of them); the base has none.
    assert expected.keys() == got.keys()
    assert got and all("lora_" in name for name in got)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(got) == trainable
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
        assert got[name].abs().sum() > 0, name


def test_a_batch_without_labels_gives_a_zero_loss_that_backpropagates(tiny_base):
    model = _lora_model(tiny_base)
    batch = _batch(tiny_base)
    batch["labels"][:] = -100
    out = model(**batch, fused_lm_head=True)
    out.loss.backward()
    assert float(out.loss) == 0.0


@pytest.mark.parametrize("qlora", [False, True])
def test_the_trainer_trains_on_the_gathered_loss(tiny_cfg, tmp_path, qlora):
    """The SFTTrainer build_trainer makes (LoRA, or QLoRA on a 4-bit base): its loss is the full-logits loss of the
    same batch."""
    import torch

    from trainer.train import build_trainer

    trainer, data, setup = build_trainer(tiny_config(tiny_cfg.base_model, qlora=qlora), rows(), rows(prefix="v")[:3],
                                         tmp_path / "out")
    assert setup.fused_loss == "gathered" and setup.qlora == qlora
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    model = trainer.model
    model.train()
    loss = trainer.compute_loss(model, dict(batch))
    full = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")})
    torch.testing.assert_close(loss.float(), full.loss.float(), rtol=1e-2 if qlora else 1e-5, atol=1e-6)
    assert trainer._metrics["train"]["mean_token_accuracy"]  # TRL's metrics come from the gathered head
