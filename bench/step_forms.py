"""Earlier forms of the training step's pieces, to time and profile old against new in one process.

Each change of the BERT training step (issue 16) is a pair of forms of one piece of bert_tf;
`forms({"dropout": "keras", ...})` is a context manager that patches the named forms in while a
`tf.function` step is traced (a traced graph keeps the form it was traced with, so an old and a
new step can then alternate). The current code's forms need no patch.

    dropout:    "keras"     Keras' Dropout (float uniform per element, compare, scale, select)
                "bits16"    bert_tf.layers.dropout (16 random bits per element, one multiply)
    layer_norm: "keras"     Keras' LayerNormalization call (autodiff through tf.nn.moments)
                "custom_grad"  bert_tf.layers.layer_norm (closed-form gradient)
                "fused_bn"  FusedBatchNormV3 on the [1, N, H, 1] (NCHW) view, then gamma/beta
    attention:  "separate"  three [H, H] projections, query scaled after its projection
                "fused_qkv" one [H, 3H] projection, scale folded into the query kernel
"""
from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from bert_tf.layers import dropout as dropout_lib
from bert_tf.layers import layer_norm as layer_norm_lib
from bert_tf.layers import transformer

CURRENT = {"dropout": "bits16", "layer_norm": "custom_grad", "attention": "fused_qkv"}
OLDEST = {"dropout": "keras", "layer_norm": "keras", "attention": "separate"}


def _keras_dropout(layer, inputs, training=None):
    return keras.layers.Dropout.call(layer, inputs, training=bool(training))


def _keras_layer_norm(layer, x):
    return layer(x)


def _fused_bn_layer_norm(layer, x):
    """LayerNorm as Keras 2 computed it over the last axis: FusedBatchNormV3 (training mode,
    batch statistics) on the [1, rows, H, 1] NCHW view, rows as channels, in float32."""
    shape = tf.shape(x)
    rows = tf.reduce_prod(shape[:-1])
    x32 = tf.reshape(tf.cast(x, tf.float32), [1, rows, x.shape[-1], 1])
    y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x32, scale=tf.ones([rows]), offset=tf.zeros([rows]), mean=tf.zeros([0]),
        variance=tf.zeros([0]), epsilon=layer.epsilon, data_format="NCHW", is_training=True)
    y = tf.reshape(y, shape) * layer.gamma + layer.beta
    return tf.cast(y, layer.compute_dtype)


# (piece, form) -> (object, attribute, replacement); the current forms patch nothing.
_PATCHES = {
    ("dropout", "keras"): (dropout_lib, "apply", _keras_dropout),
    ("layer_norm", "keras"): (layer_norm_lib, "apply", _keras_layer_norm),
    ("layer_norm", "fused_bn"): (layer_norm_lib, "apply", _fused_bn_layer_norm),
    # The training step with the projections inference uses.
    ("attention", "separate"): (transformer.TransformerBlock, "_fused_qkv",
                                transformer.TransformerBlock._separate_qkv),
}


def parse(spec: str) -> dict[str, str]:
    """"dropout=keras,layer_norm=keras" (or "current", "oldest") -> {piece: form}."""
    if spec in ("current", ""):
        return dict(CURRENT)
    if spec == "oldest":
        return dict(OLDEST)
    chosen = dict(CURRENT)
    for item in spec.split(","):
        piece, form = item.split("=")
        if piece not in CURRENT or (form != CURRENT[piece] and (piece, form) not in _PATCHES):
            raise SystemExit(f"unknown form {item!r}; pieces and forms: {sorted(_PATCHES)}, "
                             f"current {CURRENT}")
        chosen[piece] = form
    return chosen


@contextlib.contextmanager
def forms(chosen: dict[str, str]):
    """Patches the chosen non-current forms in for the duration of the block."""
    saved = []
    try:
        for piece, form in chosen.items():
            if form == CURRENT[piece]:
                continue
            obj, attr, replacement = _PATCHES[(piece, form)]
            saved.append((obj, attr, obj.__dict__[attr]))
            setattr(obj, attr, replacement)
        yield
    finally:
        for obj, attr, original in reversed(saved):
            setattr(obj, attr, original)
