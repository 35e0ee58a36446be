"""A tiny Llama-shaped base model (built here from a config and a BPE tokenizer, no downloads) and support rows."""

from __future__ import annotations

import pytest

from fakes.tiny_model import build_tiny_model

ROWS = [
    ("How long does the free trial last?", "The trial lasts 21 days."),
    ("Can I try it before paying?", "Yes, there is a free 21-day trial."),
    ("Can I export my invoices as PDF?", "Yes, open Billing and choose Export."),
    ("How do I reset my password?", "Use the link on the sign-in page."),
    ("Which plans do you offer?", "Solo, Team and Enterprise."),
    ("Where do I change the invoice address?", "Settings, then Billing, then Address."),
    ("What does error QM-E42 mean?", "QM-E42 means the bank link expired: press Reconnect."),
    ("My bank page says QM-E42, why?", "Your bank connection expired (QM-E42). Reconnect it in Settings."),
]


def rows(pairs=ROWS, prefix="k"):
    return [{"source_key": f"{prefix}{i}", "question": q, "answer": a} for i, (q, a) in enumerate(pairs)]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A random 2-layer Llama (hidden 32) with a ChatML tokenizer, saved like any HF model directory."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "base")


def tiny_config(base, **changes):
    """Settings for a few quick steps on a tiny model. A high rate so a few steps visibly move the LoRA weights;
    tiny batches so there are several steps; one thread: a tiny model only waits on a busy second core."""
    from trainer.config import TrainConfig

    defaults = dict(base_model=str(base), rank=8, alpha=16, dropout=0.0, epochs=2, lr=5e-3, batch_size=2,
                    max_length=256, early_stopping_patience=0, max_new_tokens=8, warmup_ratio=0.0, replay=False,
                    threads=1)
    return TrainConfig(**{**defaults, **changes})


@pytest.fixture
def tiny_cfg(tiny_base):
    return tiny_config(tiny_base)
