"""THE name table between our Keras variables and Google's original TF1 BERT checkpoints.

Loading and saving both walk `google_name_table(model)`, so the two directions cannot drift.
Every mapping is a copy or a reshape (never a transpose): keras' multi-head EinsumDense kernels
are [H, A, H/A] for query/key/value and [A, H/A, H] for the attention output, where Google stores
[H, H]; the `[C, H]` head weights are stored in Google's orientation by `ClassificationHead`.
"""
from __future__ import annotations

import dataclasses
import math

import keras

# Groups of variables; a checkpoint may carry heads a model lacks (and they are then unused).
ENCODER, MASKED_LM, NEXT_SENTENCE, CLASSIFIER = "encoder", "masked_lm", "next_sentence", "classifier"
SPAN_QA = "span_qa"  # run_squad's [2, H] head: cls/squad/output_weights, cls/squad/output_bias

# Training-state variables in Google's checkpoints that are never model weights.
OPTIMIZER_SUFFIXES = ("/adam_m", "/adam_v")
SKIPPED_NAMES = ("global_step",)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One Google variable: its name, the Keras variable behind it, and Google's shape."""

    name: str
    variable: keras.Variable
    group: str
    google_shape: tuple[int, ...]


def group_of(name: str) -> str:
    """The group a Google variable name belongs to (by prefix)."""
    if name.startswith("cls/predictions/"):
        return MASKED_LM
    if name.startswith("cls/seq_relationship/"):
        return NEXT_SENTENCE
    if name.startswith("cls/squad/"):
        return SPAN_QA
    if name in ("output_weights", "output_bias"):
        return CLASSIFIER
    return ENCODER


def is_training_state(name: str) -> bool:
    """True for Adam slots and global_step, which loaders skip."""
    return name in SKIPPED_NAMES or name.endswith(OPTIMIZER_SUFFIXES)


def _entry(name: str, variable: keras.Variable, group: str = ENCODER, flatten: str | None = None
           ) -> Entry:
    shape = tuple(int(d) for d in variable.shape)
    if flatten == "last2":      # [H, A, D] -> [H, A*D]; [A, D] -> [A*D]
        shape = shape[:-2] + (math.prod(shape[-2:]),)
    elif flatten == "first2":   # [A, D, H] -> [A*D, H]
        shape = (math.prod(shape[:2]),) + shape[2:]
    return Entry(name, variable, group, shape)


def _dense(prefix: str, layer, group: str = ENCODER, flatten_kernel=None, flatten_bias=None):
    return [_entry(f"{prefix}/kernel", layer.kernel, group, flatten_kernel),
            _entry(f"{prefix}/bias", layer.bias, group, flatten_bias)]


def _layer_norm(prefix: str, layer, group: str = ENCODER):
    return [_entry(f"{prefix}/LayerNorm/gamma", layer.gamma, group),
            _entry(f"{prefix}/LayerNorm/beta", layer.beta, group)]


def _is_encoder(obj) -> bool:
    # Recognised by its parts rather than by class, so the name table needs nothing from
    # bert_tf.models (which reaches it through checkpoints.google: no import cycle).
    return all(hasattr(obj, a) for a in ("embeddings", "transformer_blocks", "pooler"))


def encoder_entries(encoder) -> list[Entry]:
    """Google names for every variable of a BertEncoder (embeddings, layers, pooler)."""
    emb = encoder.embeddings
    entries = [
        _entry("bert/embeddings/word_embeddings", emb.word_embeddings.embeddings),
        _entry("bert/embeddings/token_type_embeddings", emb.token_type_embeddings.embeddings),
        _entry("bert/embeddings/position_embeddings", emb.position_embeddings.position_embeddings),
        *_layer_norm("bert/embeddings", emb.layer_norm),
    ]
    for i, block in enumerate(encoder.transformer_blocks):
        p = f"bert/encoder/layer_{i}"
        attention = block._self_attention_layer
        for part, dense in (("query", attention._query_dense), ("key", attention._key_dense),
                            ("value", attention._value_dense)):
            entries += _dense(f"{p}/attention/self/{part}", dense, flatten_kernel="last2",
                              flatten_bias="last2")
        entries += _dense(f"{p}/attention/output/dense", attention._output_dense,
                          flatten_kernel="first2")
        entries += _layer_norm(f"{p}/attention/output", block._self_attention_layer_norm)
        entries += _dense(f"{p}/intermediate/dense", block._feedforward_intermediate_dense)
        entries += _dense(f"{p}/output/dense", block._feedforward_output_dense)
        entries += _layer_norm(f"{p}/output", block._feedforward_layer_norm)
    entries += _dense("bert/pooler/dense", encoder.pooler)
    return entries


def google_name_table(model: keras.Model) -> list[Entry]:
    """Every variable of a BertEncoder, BertPretrainer or BertClassifier with its Google name.

    Models are recognised by their parts: an `encoder` (or the model is the encoder), and
    optional `masked_lm`, `next_sentence`, `classifier` and `span_head` (BertSpanQA) heads.
    """
    encoder = model if _is_encoder(model) else getattr(model, "encoder", None)
    if not _is_encoder(encoder):
        raise TypeError(f"expected a BertEncoder or a model with a BertEncoder `.encoder`, got "
                        f"{type(model).__name__}")
    entries = encoder_entries(encoder)
    masked_lm = getattr(model, "masked_lm", None)
    if masked_lm is not None:
        entries += _dense("cls/predictions/transform/dense", masked_lm._intermediate_dense,
                          MASKED_LM)
        entries += _layer_norm("cls/predictions/transform", masked_lm._intermediate_layer_norm,
                               MASKED_LM)
        entries.append(_entry("cls/predictions/output_bias", masked_lm._bias, MASKED_LM))
    for attr, prefix, group in (("next_sentence", "cls/seq_relationship/", NEXT_SENTENCE),
                                ("classifier", "", CLASSIFIER),
                                ("span_head", "cls/squad/", SPAN_QA)):
        head = getattr(model, attr, None)
        if head is not None:
            entries.append(_entry(f"{prefix}output_weights", head.output_weights, group))
            entries.append(_entry(f"{prefix}output_bias", head.output_bias, group))
    return entries
