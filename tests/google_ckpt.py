"""Test support: write random checkpoints in Google's original TF1 BERT layout.

The checkpoints are written with ``tf.compat.v1.train.Saver`` inside a fresh
``tf.Graph`` (so eager TF2 state is never touched), using exactly the variable
names that Google's ``modeling.py`` / ``run_pretraining.py`` /
``run_classifier.py`` / ``optimization.py`` produce. Kernels are stored
``[in, out]``; ``cls/seq_relationship/output_weights`` and the classifier's
top-level ``output_weights`` are stored ``[num_labels, H]``.

Import from tests as ``import google_ckpt`` (tests/ has no ``__init__.py``).
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

CKPT_NAME = "bert_model.ckpt"

Shape = tuple[int, ...]


def tiny_config(**overrides) -> dict:
    """A small valid bert_config.json dict (hidden 32, 2 layers, 4 heads)."""
    config = {
        "vocab_size": 99,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 40,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
    }
    config.update(overrides)
    return config


# --------------------------------------------------------------------------- names


def _trainable_shapes(
    config: Mapping, with_pretraining_heads: bool, num_classifier_labels: int | None
) -> dict[str, Shape]:
    V = int(config["vocab_size"])
    H = int(config["hidden_size"])
    L = int(config["num_hidden_layers"])
    I = int(config["intermediate_size"])
    P = int(config["max_position_embeddings"])
    T = int(config.get("type_vocab_size", 16))

    shapes: dict[str, Shape] = {
        "bert/embeddings/word_embeddings": (V, H),
        "bert/embeddings/token_type_embeddings": (T, H),
        "bert/embeddings/position_embeddings": (P, H),
        "bert/embeddings/LayerNorm/beta": (H,),
        "bert/embeddings/LayerNorm/gamma": (H,),
    }
    for i in range(L):
        p = f"bert/encoder/layer_{i}/"
        for qkv in ("query", "key", "value"):
            shapes[p + f"attention/self/{qkv}/kernel"] = (H, H)
            shapes[p + f"attention/self/{qkv}/bias"] = (H,)
        shapes[p + "attention/output/dense/kernel"] = (H, H)
        shapes[p + "attention/output/dense/bias"] = (H,)
        shapes[p + "attention/output/LayerNorm/beta"] = (H,)
        shapes[p + "attention/output/LayerNorm/gamma"] = (H,)
        shapes[p + "intermediate/dense/kernel"] = (H, I)
        shapes[p + "intermediate/dense/bias"] = (I,)
        shapes[p + "output/dense/kernel"] = (I, H)
        shapes[p + "output/dense/bias"] = (H,)
        shapes[p + "output/LayerNorm/beta"] = (H,)
        shapes[p + "output/LayerNorm/gamma"] = (H,)
    shapes["bert/pooler/dense/kernel"] = (H, H)
    shapes["bert/pooler/dense/bias"] = (H,)
    if with_pretraining_heads:
        shapes["cls/predictions/transform/dense/kernel"] = (H, H)
        shapes["cls/predictions/transform/dense/bias"] = (H,)
        shapes["cls/predictions/transform/LayerNorm/beta"] = (H,)
        shapes["cls/predictions/transform/LayerNorm/gamma"] = (H,)
        shapes["cls/predictions/output_bias"] = (V,)
        shapes["cls/seq_relationship/output_weights"] = (2, H)
        shapes["cls/seq_relationship/output_bias"] = (2,)
    if num_classifier_labels is not None:
        C = int(num_classifier_labels)
        shapes["output_weights"] = (C, H)
        shapes["output_bias"] = (C,)
    return shapes


def expected_variable_shapes(
    config: Mapping,
    *,
    with_pretraining_heads: bool = True,
    num_classifier_labels: int | None = None,
    with_optimizer_slots: bool = False,
    with_global_step: bool = False,
) -> dict[str, Shape]:
    """Google's checkpoint variable names -> shapes for ``config`` (no file I/O)."""
    shapes = _trainable_shapes(config, with_pretraining_heads, num_classifier_labels)
    if with_optimizer_slots:
        for name, shape in list(shapes.items()):
            shapes[name + "/adam_m"] = shape
            shapes[name + "/adam_v"] = shape
    if with_global_step:
        shapes["global_step"] = ()
    return shapes


# --------------------------------------------------------------------------- values


def _kernel_std(fan_in: int) -> float:
    """Std that keeps activations O(1) while staying in [0.02, 0.2]."""
    return float(np.clip(1.0 / np.sqrt(fan_in), 0.02, 0.2))


def _random_value(name: str, shape: Shape, rng: np.random.RandomState) -> np.ndarray:
    base = name
    is_adam_m = base.endswith("/adam_m")
    is_adam_v = base.endswith("/adam_v")
    if is_adam_m:
        return (rng.standard_normal(shape) * 0.01).astype(np.float32)
    if is_adam_v:
        return (np.abs(rng.standard_normal(shape)) * 1e-4).astype(np.float32)
    leaf = base.rsplit("/", 1)[-1]
    if leaf == "gamma":
        value = 1.0 + 0.1 * rng.standard_normal(shape)
    elif leaf == "beta":
        value = 0.05 * rng.standard_normal(shape)
    elif leaf in ("bias", "output_bias"):
        value = 0.05 * rng.standard_normal(shape)
    elif leaf == "kernel":
        value = _kernel_std(shape[0]) * rng.standard_normal(shape)
    elif leaf == "output_weights":  # [C, H]: fan-in is H
        value = _kernel_std(shape[1]) * rng.standard_normal(shape)
    elif leaf.endswith("_embeddings"):
        value = 0.1 * rng.standard_normal(shape)
    else:  # pragma: no cover - all generated names are covered above
        value = 0.05 * rng.standard_normal(shape)
    return value.astype(np.float32)


def random_google_arrays(
    config: Mapping,
    *,
    with_pretraining_heads: bool = True,
    num_classifier_labels: int | None = None,
    with_optimizer_slots: bool = False,
    with_global_step: bool = False,
    seed: int = 0,
    global_step_value: int = 1000,
) -> dict[str, np.ndarray]:
    """Random, non-trivial float32 arrays keyed by Google's variable names."""
    shapes = expected_variable_shapes(
        config,
        with_pretraining_heads=with_pretraining_heads,
        num_classifier_labels=num_classifier_labels,
        with_optimizer_slots=with_optimizer_slots,
        with_global_step=with_global_step,
    )
    rng = np.random.RandomState(seed)
    arrays: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        if name == "global_step":
            arrays[name] = np.array(global_step_value, dtype=np.int64)
        else:
            arrays[name] = _random_value(name, shape, rng)
    return arrays


# --------------------------------------------------------------------------- I/O


def write_arrays_as_google_checkpoint(prefix: str, arrays: Mapping[str, np.ndarray]) -> str:
    """Write ``arrays`` (name -> array, any dtype) as a TF1 checkpoint at ``prefix``.

    Uses ``tf.compat.v1.train.Saver`` in a fresh graph; checkpoint keys are the
    dict keys verbatim (so tests can write extra, misshaped or missing
    variables). Writes ``prefix.index`` and ``prefix.data-00000-of-00001`` only
    (no ``checkpoint`` state file, no ``.meta``), like Google's releases.
    Returns ``prefix``.
    """
    if not arrays:
        raise ValueError("cannot write an empty checkpoint")
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        var_list = {}
        feeds = {}
        assigns = []
        for i, (name, value) in enumerate(arrays.items()):
            value = np.asarray(value)
            dtype = tf.as_dtype(value.dtype)
            var = tf.compat.v1.get_variable(
                f"v{i}",
                shape=value.shape,
                dtype=dtype,
                initializer=tf.compat.v1.zeros_initializer(),
                trainable=False,
            )
            ph = tf.compat.v1.placeholder(dtype, shape=value.shape)
            assigns.append(tf.compat.v1.assign(var, ph))
            feeds[ph] = value
            var_list[name] = var
        saver = tf.compat.v1.train.Saver(
            var_list=var_list, write_version=tf.compat.v1.train.SaverDef.V2
        )
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assigns, feed_dict=feeds)
            saver.save(sess, prefix, write_meta_graph=False, write_state=False)
    return prefix


def read_checkpoint_arrays(prefix: str) -> dict[str, np.ndarray]:
    """All variables of the checkpoint at ``prefix`` as numpy arrays."""
    reader = tf.train.load_checkpoint(prefix)
    return {
        name: np.asarray(reader.get_tensor(name))
        for name in sorted(reader.get_variable_to_shape_map())
    }


def write_google_checkpoint(
    directory: str,
    config: dict,
    *,
    with_pretraining_heads: bool = True,
    num_classifier_labels: int | None = None,
    with_optimizer_slots: bool = False,
    with_global_step: bool = False,
    seed: int = 0,
    vocab_tokens: Sequence[str] | Iterable[str] | None = None,
) -> str:
    """Write a random Google-layout BERT checkpoint + bert_config.json (+ vocab.txt).

    Returns the checkpoint prefix ``directory/bert_model.ckpt``.
    """
    os.makedirs(directory, exist_ok=True)
    arrays = random_google_arrays(
        config,
        with_pretraining_heads=with_pretraining_heads,
        num_classifier_labels=num_classifier_labels,
        with_optimizer_slots=with_optimizer_slots,
        with_global_step=with_global_step,
        seed=seed,
    )
    prefix = os.path.join(directory, CKPT_NAME)
    write_arrays_as_google_checkpoint(prefix, arrays)
    with open(os.path.join(directory, "bert_config.json"), "w", encoding="utf-8") as f:
        json.dump(dict(config), f, indent=2, sort_keys=True)
        f.write("\n")
    if vocab_tokens is not None:
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            for token in vocab_tokens:
                f.write(f"{token}\n")
    return prefix
