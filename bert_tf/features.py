"""Contextual token features from a BERT encoder, in Google's extract_features.py JSONL format.

Input: one example per line, `text` or `text_a ||| text_b`. Output: one JSON object per line,
`{"linex_index": i, "features": [{"token": t, "layers": [{"index": l, "values": [...]}]}]}`
(Google's key names, including its "linex_index" spelling; values rounded to 6 decimals).

Example:
    >>> from bert_tf import BertEncoder
    >>> from bert_tf.checkpoints import build_from_google_checkpoint
    >>> from bert_tf.features import extract_features_to_file
    >>> from bert_tf.text import BertPreprocessor
    >>> encoder = build_from_google_checkpoint(BertEncoder, "uncased_L-12_H-768_A-12")  # doctest: +SKIP
    >>> pre = BertPreprocessor("uncased_L-12_H-768_A-12/vocab.txt", seq_length=128)  # doctest: +SKIP
    >>> extract_features_to_file(encoder, pre, "in.txt", "out.jsonl", [-1])  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf


_PAIR = re.compile(r"^(.*) \|\|\| (.*)$")


@dataclasses.dataclass
class InputExample:
    unique_id: int
    text_a: str
    text_b: str | None = None


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


def _packed_batches(preprocessor, examples: Sequence[InputExample], batch_size: int):
    """Yields (examples, packed inputs) per batch; single texts and pairs are packed apart."""
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        for group in ([e for e in batch if e.text_b is None], [e for e in batch if e.text_b is not None]):
            if not group:
                continue
            segments = [tf.constant([e.text_a for e in group])]
            if group[0].text_b is not None:
                segments.append(tf.constant([e.text_b for e in group]))
            yield group, preprocessor(segments)


def extract_features(encoder, preprocessor, examples: Sequence[InputExample],
                     layer_indexes: Sequence[int] | str, batch_size: int = 32) -> Iterator[dict]:
    """Tokenizes in the graph (`BertPreprocessor`), runs the encoder, and yields one
    Google-format JSON object (a dict) per example, in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num_layers = len(encoder.transformer_blocks)
    layer_indexes = parse_layers(layer_indexes, num_layers)
    selected = [i % num_layers for i in layer_indexes]
    vocab = preprocessor.vocab_tokens

    @tf.function(reduce_retracing=True)
    def run(inputs):
        outputs = encoder(inputs, training=False)["encoder_outputs"]
        return tf.stack([tf.cast(outputs[i], tf.float32) for i in selected], axis=1)

    pending: dict[int, dict] = {}
    order = iter([e.unique_id for e in examples])
    next_id = next(order, None)
    for group, inputs in _packed_batches(preprocessor, examples, batch_size):
        values = run(inputs).numpy()  # [B, len(layers), S, H]
        ids, lengths = inputs["input_word_ids"].numpy(), inputs["input_mask"].numpy().sum(-1)
        for example, per_layer, row, length in zip(group, values, ids, lengths):
            pending[example.unique_id] = {"linex_index": example.unique_id, "features": [
                {"token": vocab[token_id], "layers": [
                    {"index": layer, "values": [round(float(x), 6) for x in per_layer[j, t]]}
                    for j, layer in enumerate(layer_indexes)]}
                for t, token_id in enumerate(row[:length])]}
        while next_id is not None and next_id in pending:
            yield pending.pop(next_id)
            next_id = next(order, None)


def extract_features_to_file(encoder, preprocessor, input_file: str | os.PathLike,
                             output_file: str | os.PathLike, layer_indexes: Sequence[int] | str,
                             batch_size: int = 32) -> int:
    """Reads `input_file`, writes Google's JSONL to `output_file`; returns the number of lines.
    The sequence length is the preprocessor's `seq_length`."""
    max_positions = encoder.config.max_position_embeddings
    if preprocessor.seq_length > max_positions:
        raise ValueError(f"max_seq_length {preprocessor.seq_length} exceeds the model's "
                         f"max_position_embeddings ({max_positions})")
    examples = read_examples(input_file)
    count = 0
    with tf.io.gfile.GFile(os.fspath(output_file), "w") as out:
        for record in extract_features(encoder, preprocessor, examples, layer_indexes, batch_size):
            out.write(json.dumps(record) + "\n")
            count += 1
    return count


def feature_matrix(record: dict, layer: int) -> np.ndarray:
    """The [tokens, H] values of one layer from a JSONL record (for inspection and tests)."""
    return np.array([[v for entry in tok["layers"] if entry["index"] == layer
                      for v in entry["values"]] for tok in record["features"]], dtype=np.float32)
