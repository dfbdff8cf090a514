"""Contextual token features from a BERT encoder, in Google's extract_features.py JSONL format.

Input: one example per line, `text` or `text_a ||| text_b`. Output: one JSON object per line,
`{"linex_index": i, "features": [{"token": t, "layers": [{"index": l, "values": [...]}]}]}`
(Google's key names, including its "linex_index" spelling; values rounded to 6 decimals).

Example:
    >>> from bert_tf import BertEncoder
    >>> from bert_tf.features import extract_features_to_file
    >>> encoder = BertEncoder.from_google_checkpoint("uncased_L-12_H-768_A-12")  # doctest: +SKIP
    >>> extract_features_to_file(encoder, tokenizer, "in.txt", "out.jsonl", [-1])  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.text.packing import pack_tokens

_PAIR = re.compile(r"^(.*) \|\|\| (.*)$")


@dataclasses.dataclass
class InputExample:
    unique_id: int
    text_a: str
    text_b: str | None = None


@dataclasses.dataclass
class InputFeatures:
    unique_id: int
    tokens: list[str]
    input_word_ids: list[int]
    input_mask: list[int]
    input_type_ids: list[int]


def read_examples(path: str | os.PathLike) -> list[InputExample]:
    """Reads `text` / `text_a ||| text_b` lines (UTF-8; undecodable bytes dropped, as Google)."""
    path = os.fspath(path)
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.NotFoundError:
        raise FileNotFoundError(f"input file not found: {path}") from None
    examples = []
    for unique_id, line in enumerate(data.decode("utf-8", "ignore").splitlines()):
        line = line.strip()
        match = _PAIR.match(line)
        if match:
            examples.append(InputExample(unique_id, match.group(1), match.group(2)))
        else:
            examples.append(InputExample(unique_id, line))
    return examples


def convert_examples(examples: Iterable[InputExample], tokenizer, seq_length: int
                     ) -> list[InputFeatures]:
    """Tokenizes, packs `[CLS] A [SEP] (B [SEP])` with Google's truncation, pads to seq_length."""
    features = []
    for ex in examples:
        tokens_b = tokenizer.tokenize(ex.text_b) if ex.text_b is not None else None
        tokens, type_ids = pack_tokens(tokenizer.tokenize(ex.text_a), tokens_b, seq_length)
        ids = tokenizer.convert_tokens_to_ids(tokens)
        pad = seq_length - len(ids)
        features.append(InputFeatures(ex.unique_id, tokens, ids + [0] * pad,
                                      [1] * len(ids) + [0] * pad, type_ids + [0] * pad))
    return features


def parse_layers(spec: str | Sequence[int], num_layers: int) -> list[int]:
    """Parses `-1,-2,-3,-4` (indexes into the L encoder layers; negative counts from the top)."""
    try:
        layers = ([int(x) for x in spec.split(",") if x.strip()] if isinstance(spec, str)
                  else [int(x) for x in spec])
    except ValueError:
        raise ValueError(f"layers must be comma-separated integers such as -1,-2,-3,-4, "
                         f"got {spec!r}") from None
    if not layers:
        raise ValueError("layers is empty: give at least one layer index such as -1")
    bad = [i for i in layers if not -num_layers <= i < num_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range for a model with {num_layers} layers "
                         f"(valid: {-num_layers}..{num_layers - 1})")
    return layers


def extract_features(encoder, features: Sequence[InputFeatures], layer_indexes: Sequence[int],
                     batch_size: int = 32) -> Iterator[dict]:
    """Runs the encoder and yields one Google-format JSON object (a dict) per example."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num_layers = len(encoder.transformer_blocks)
    layer_indexes = parse_layers(layer_indexes, num_layers)
    selected = [i % num_layers for i in layer_indexes]

    @tf.function(reduce_retracing=True)
    def run(inputs):
        outputs = encoder(inputs, training=False)["encoder_outputs"]
        return tf.stack([tf.cast(outputs[i], tf.float32) for i in selected], axis=1)

    for start in range(0, len(features), batch_size):
        batch = features[start:start + batch_size]
        inputs = {name: tf.constant([getattr(f, name) for f in batch], tf.int32)
                  for name in ("input_word_ids", "input_mask", "input_type_ids")}
        values = run(inputs).numpy()  # [B, len(layers), S, H]
        for f, per_layer in zip(batch, values):
            yield {"linex_index": f.unique_id, "features": [
                {"token": token, "layers": [
                    {"index": layer, "values": [round(float(x), 6) for x in per_layer[j, t]]}
                    for j, layer in enumerate(layer_indexes)]}
                for t, token in enumerate(f.tokens)]}


def extract_features_to_file(encoder, tokenizer, input_file: str | os.PathLike,
                             output_file: str | os.PathLike, layer_indexes: Sequence[int],
                             seq_length: int = 128, batch_size: int = 32) -> int:
    """Reads `input_file`, writes Google's JSONL to `output_file`; returns the number of lines."""
    max_positions = encoder.config.max_position_embeddings
    if seq_length > max_positions:
        raise ValueError(f"max_seq_length {seq_length} exceeds the model's "
                         f"max_position_embeddings ({max_positions})")
    features = convert_examples(read_examples(input_file), tokenizer, seq_length)
    count = 0
    with tf.io.gfile.GFile(os.fspath(output_file), "w") as out:
        for record in extract_features(encoder, features, layer_indexes, batch_size):
            out.write(json.dumps(record) + "\n")
            count += 1
    return count


def feature_matrix(record: dict, layer: int) -> np.ndarray:
    """The [tokens, H] values of one layer from a JSONL record (for inspection and tests)."""
    return np.array([[v for entry in tok["layers"] if entry["index"] == layer
                      for v in entry["values"]] for tok in record["features"]], dtype=np.float32)
