"""Move encoder weights between BertEncoder and keras_hub.models.BertBackbone.

Both are built from the same keras-hub/keras layers (ReversibleEmbedding, PositionEmbedding,
TransformerEncoder, Dense pooler), so each variable maps one to one with no reshaping.

Example:
    >>> from bert_tf.checkpoints.keras_hub_interop import to_keras_hub_backbone
    >>> backbone = to_keras_hub_backbone(encoder)  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os

import keras_hub

from bert_tf.config import DEFAULT_LAYER_NORM_EPS, BertConfig, ConfigError
from bert_tf.models.encoder import BertEncoder

logger = logging.getLogger("bert_tf")


def _paired_layers(encoder: BertEncoder, backbone: keras_hub.models.BertBackbone):
    emb = encoder.embeddings
    pairs = [(emb.word_embeddings, backbone.token_embedding),
             (emb.position_embeddings, backbone.position_embedding),
             (emb.token_type_embeddings, backbone.segment_embedding),
             (emb.layer_norm, backbone.embeddings_layer_norm)]
    pairs += list(zip(encoder.transformer_blocks, backbone.transformer_layers))
    pairs.append((encoder.pooler, backbone.pooled_dense))
    return pairs


def _copy(pairs, direction: str) -> None:
    for ours, theirs in pairs:
        src, dst = (ours, theirs) if direction == "to_hub" else (theirs, ours)
        if len(src.weights) != len(dst.weights) or any(
                tuple(a.shape) != tuple(b.shape) for a, b in zip(src.weights, dst.weights)):
            raise ValueError(f"cannot copy {src.name} → {dst.name}: weights "
                             f"{[tuple(w.shape) for w in src.weights]} vs "
                             f"{[tuple(w.shape) for w in dst.weights]}")
        for a, b in zip(src.weights, dst.weights):
            b.assign(a)


def _check_representable(config: BertConfig) -> None:
    if config.hidden_act != "gelu":
        raise ConfigError(f"keras_hub BertBackbone always uses tanh-GELU; this config has "
                          f"hidden_act={config.hidden_act!r} (e.g. a Hugging Face model, whose "
                          f"'gelu' is the exact erf GELU)")
    if config.layer_norm_eps != DEFAULT_LAYER_NORM_EPS:
        raise ConfigError(f"keras_hub BertBackbone's LayerNorm epsilon is fixed at 1e-12; this "
                          f"config has layer_norm_eps={config.layer_norm_eps}")
    if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
        logger.warning(
            "keras_hub BertBackbone has one dropout rate; using hidden_dropout_prob=%s for "
            "attention too (attention_probs_dropout_prob=%s is not kept; inference is unaffected)",
            config.hidden_dropout_prob, config.attention_probs_dropout_prob)


def to_keras_hub_backbone(encoder: BertEncoder) -> keras_hub.models.BertBackbone:
    """A keras_hub BertBackbone with this encoder's config and weights (equal outputs:
    BertBackbone's `token_ids`/`segment_ids`/`padding_mask` are our `input_word_ids`/
    `input_type_ids`/`input_mask`)."""
    config = encoder.config
    _check_representable(config)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size)
    _copy(_paired_layers(encoder, backbone), "to_hub")
    return backbone


def from_keras_hub_backbone(backbone: keras_hub.models.BertBackbone) -> BertEncoder:
    """A BertEncoder with a keras_hub BertBackbone's weights (config derived from the backbone)."""
    config = BertConfig(
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_hidden_layers=backbone.num_layers, num_attention_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_dim, hidden_dropout_prob=backbone.dropout,
        attention_probs_dropout_prob=backbone.dropout,
        max_position_embeddings=backbone.max_sequence_length,
        type_vocab_size=backbone.num_segments)
    encoder = BertEncoder(config)
    _copy(_paired_layers(encoder, backbone), "from_hub")
    return encoder


def save_keras_hub_preset(encoder: BertEncoder, vocab_tokens: list[str], do_lower_case: bool,
                          path: str | os.PathLike) -> str:
    """Writes a keras-hub preset directory (BertBackbone + BertTokenizer) that
    `keras_hub.models.BertBackbone.from_preset(path)` and `keras_hub.models.BertTextClassifier
    .from_preset(path, num_classes=...)` load. Returns the directory."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    to_keras_hub_backbone(encoder).save_to_preset(path)
    keras_hub.tokenizers.BertTokenizer(vocabulary=list(vocab_tokens),
                                       lowercase=do_lower_case).save_to_preset(path)
    return path


def load_keras_hub_preset(path: str | os.PathLike) -> tuple[BertEncoder, list[str], bool]:
    """(BertEncoder, vocab tokens, lowercase) from a keras-hub BERT preset directory."""
    path = os.fspath(path)
    backbone = keras_hub.models.BertBackbone.from_preset(path)
    tokenizer = keras_hub.tokenizers.BertTokenizer.from_preset(path)
    return from_keras_hub_backbone(backbone), list(tokenizer.get_vocabulary()), bool(
        tokenizer.lowercase)
