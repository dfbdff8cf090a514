"""Test support: an independent float64 NumPy reference of Google's original BERT.

Computed directly from raw Google-named checkpoint arrays (as returned by
``google_ckpt.read_checkpoint_arrays``), following Google's ``modeling.py`` and
``run_pretraining.py`` semantics: LayerNorm eps 1e-12, tanh-GELU for "gelu",
additive attention mask ``(1 - mask) * -10000``, post-LN blocks, tanh pooler,
tied MLM output embeddings, NSP weights stored ``[2, H]``. Dropout is off.

Nothing here imports ``bert_tf``. Import from tests as ``import numpy_bert``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

LAYER_NORM_EPS = 1e-12
MASK_ADDER = -10000.0


def _f64(arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    return np.asarray(arrays[name], dtype=np.float64)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """Google's "gelu": tanh approximation."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu_exact(x: np.ndarray) -> np.ndarray:
    """Exact GELU via erf."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def activation(name: str | None):
    """Activation function by Google's bert_config ``hidden_act`` name."""
    if name is None:
        return lambda x: x
    key = name.lower()
    if key in ("linear", ""):
        return lambda x: x
    if key == "gelu":
        return gelu_tanh
    if key == "gelu_exact":
        return gelu_exact
    if key == "relu":
        return lambda x: np.maximum(x, 0.0)
    if key == "tanh":
        return np.tanh
    raise ValueError(f"unsupported hidden_act: {name!r}")


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
               eps: float = LAYER_NORM_EPS) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, eps 1e-12 unless given)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _dense(arrays: Mapping[str, np.ndarray], scope: str, x: np.ndarray) -> np.ndarray:
    return x @ _f64(arrays, scope + "/kernel") + _f64(arrays, scope + "/bias")


def _ln(arrays: Mapping[str, np.ndarray], scope: str, x: np.ndarray,
        eps: float = LAYER_NORM_EPS) -> np.ndarray:
    return layer_norm(x, _f64(arrays, scope + "/gamma"), _f64(arrays, scope + "/beta"), eps)


def bert_forward(
    arrays: Mapping[str, np.ndarray],
    config: Mapping,
    input_ids,
    input_mask=None,
    token_type_ids=None,
) -> dict:
    """Google's BertModel forward pass in float64.

    Returns ``{"sequence_output": [B,S,H], "pooled_output": [B,H],
    "encoder_outputs": list of L arrays [B,S,H]}``. ``input_mask`` defaults to
    ones and ``token_type_ids`` to zeros, as in Google's BertModel.
    """
    input_ids = np.asarray(input_ids, dtype=np.int64)
    B, S = input_ids.shape
    input_mask = (
        np.ones((B, S), np.float64) if input_mask is None else np.asarray(input_mask, np.float64)
    )
    token_type_ids = (
        np.zeros((B, S), np.int64) if token_type_ids is None else np.asarray(token_type_ids, np.int64)
    )
    H = int(config["hidden_size"])
    A = int(config["num_attention_heads"])
    L = int(config["num_hidden_layers"])
    if H % A:
        raise ValueError("hidden_size must be a multiple of num_attention_heads")
    D = H // A
    if S > int(config["max_position_embeddings"]):
        raise ValueError("sequence longer than max_position_embeddings")
    act = activation(config.get("hidden_act", "gelu"))
    eps = float(config.get("layer_norm_eps", LAYER_NORM_EPS))  # Hugging Face configs set it

    # Embeddings.
    x = (
        _f64(arrays, "bert/embeddings/word_embeddings")[input_ids]
        + _f64(arrays, "bert/embeddings/position_embeddings")[:S][None, :, :]
        + _f64(arrays, "bert/embeddings/token_type_embeddings")[token_type_ids]
    )
    x = _ln(arrays, "bert/embeddings/LayerNorm", x, eps)

    # Additive mask [B, 1, 1, S_to]: depends only on the key position.
    adder = ((1.0 - input_mask) * MASK_ADDER)[:, None, None, :]

    def split_heads(t: np.ndarray) -> np.ndarray:  # [B,S,H] -> [B,A,S,D]
        return t.reshape(B, S, A, D).transpose(0, 2, 1, 3)

    encoder_outputs = []
    for i in range(L):
        p = f"bert/encoder/layer_{i}/"
        q = split_heads(_dense(arrays, p + "attention/self/query", x))
        k = split_heads(_dense(arrays, p + "attention/self/key", x))
        v = split_heads(_dense(arrays, p + "attention/self/value", x))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D) + adder
        probs = softmax(scores, axis=-1)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        attn_out = _dense(arrays, p + "attention/output/dense", ctx)
        x = _ln(arrays, p + "attention/output/LayerNorm", x + attn_out, eps)
        inter = act(_dense(arrays, p + "intermediate/dense", x))
        out = _dense(arrays, p + "output/dense", inter)
        x = _ln(arrays, p + "output/LayerNorm", x + out, eps)
        encoder_outputs.append(x)

    pooled = np.tanh(_dense(arrays, "bert/pooler/dense", x[:, 0]))
    return {"sequence_output": x, "pooled_output": pooled, "encoder_outputs": encoder_outputs}


def masked_lm_log_probs(
    arrays: Mapping[str, np.ndarray], config: Mapping, sequence_output, masked_lm_positions
) -> np.ndarray:
    """Google's get_masked_lm_output log-probs, shape [B, M, V]."""
    seq = np.asarray(sequence_output, dtype=np.float64)
    positions = np.asarray(masked_lm_positions, dtype=np.int64)
    B = seq.shape[0]
    gathered = seq[np.arange(B)[:, None], positions]  # [B, M, H]
    act = activation(config.get("hidden_act", "gelu"))
    h = act(_dense(arrays, "cls/predictions/transform/dense", gathered))
    h = _ln(arrays, "cls/predictions/transform/LayerNorm", h,
            float(config.get("layer_norm_eps", LAYER_NORM_EPS)))
    logits = h @ _f64(arrays, "bert/embeddings/word_embeddings").T + _f64(
        arrays, "cls/predictions/output_bias"
    )
    return log_softmax(logits, axis=-1)


def next_sentence_logits(arrays: Mapping[str, np.ndarray], pooled_output) -> np.ndarray:
    """NSP logits [B, 2] = pooled @ output_weights^T + output_bias."""
    pooled = np.asarray(pooled_output, dtype=np.float64)
    return pooled @ _f64(arrays, "cls/seq_relationship/output_weights").T + _f64(
        arrays, "cls/seq_relationship/output_bias"
    )


def classifier_logits(arrays: Mapping[str, np.ndarray], pooled_output) -> np.ndarray:
    """run_classifier logits [B, C] from top-level output_weights [C,H]/output_bias [C]."""
    pooled = np.asarray(pooled_output, dtype=np.float64)
    return pooled @ _f64(arrays, "output_weights").T + _f64(arrays, "output_bias")


def pretraining_losses(arrays: Mapping[str, np.ndarray], config: Mapping, features: Mapping) -> dict:
    """Google's run_pretraining losses and eval metrics for one batch.

    ``features`` has input_ids, input_mask, segment_ids, masked_lm_positions,
    masked_lm_ids, masked_lm_weights, next_sentence_labels ([B] or [B,1]).
    Returns masked_lm_loss, next_sentence_loss, total_loss, masked_lm_accuracy,
    next_sentence_accuracy, plus masked_lm_example_loss [B,M] and
    next_sentence_example_loss [B].
    """
    out = bert_forward(
        arrays,
        config,
        features["input_ids"],
        features.get("input_mask"),
        features.get("segment_ids"),
    )
    log_probs = masked_lm_log_probs(
        arrays, config, out["sequence_output"], features["masked_lm_positions"]
    )
    ids = np.asarray(features["masked_lm_ids"], dtype=np.int64)
    weights = np.asarray(features["masked_lm_weights"], dtype=np.float64)
    mlm_nll = -np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]  # [B, M]
    masked_lm_loss = float(np.sum(weights * mlm_nll) / (np.sum(weights) + 1e-5))
    mlm_pred = np.argmax(log_probs, axis=-1)
    w_sum = np.sum(weights)
    masked_lm_accuracy = float(np.sum(weights * (mlm_pred == ids)) / w_sum) if w_sum > 0 else 0.0

    ns_labels = np.asarray(features["next_sentence_labels"], dtype=np.int64).reshape(-1)
    ns_log_probs = log_softmax(next_sentence_logits(arrays, out["pooled_output"]), axis=-1)
    ns_nll = -ns_log_probs[np.arange(ns_labels.shape[0]), ns_labels]
    next_sentence_loss = float(np.mean(ns_nll))
    next_sentence_accuracy = float(np.mean(np.argmax(ns_log_probs, axis=-1) == ns_labels))
    return {
        "masked_lm_loss": masked_lm_loss,
        "next_sentence_loss": next_sentence_loss,
        "total_loss": masked_lm_loss + next_sentence_loss,
        "masked_lm_accuracy": masked_lm_accuracy,
        "next_sentence_accuracy": next_sentence_accuracy,
        "masked_lm_example_loss": mlm_nll,
        "next_sentence_example_loss": ns_nll,
    }
