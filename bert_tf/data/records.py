"""Google's pretraining TFRecord format (create_pretraining_data.py ⇄ run_pretraining.py).

Each tf.train.Example holds, for max_seq_length S and max_predictions_per_seq M:
    input_ids, input_mask, segment_ids         int64 [S]
    masked_lm_positions, masked_lm_ids         int64 [M]   (0-padded)
    masked_lm_weights                          float [M]   (1.0 real, 0.0 padding)
    next_sentence_labels                       int64 [1]   (0 = B follows A, 1 = random B)
Records written by Google's script parse here unchanged, and ours parse there.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
from bert_tf.errors import InputError

INT_FEATURES_S = ("input_ids", "input_mask", "segment_ids")
INT_FEATURES_M = ("masked_lm_positions", "masked_lm_ids")


class RecordError(InputError):
    """A pretraining record file is unreadable or does not have the expected shapes."""


@dataclasses.dataclass
class TrainingInstance:
    """One pretraining example before padding (Google's TrainingInstance)."""

    tokens: list[str]
    segment_ids: list[int]
    masked_lm_positions: list[int]
    masked_lm_labels: list[str]
    is_random_next: bool


def feature_spec(max_seq_length: int, max_predictions_per_seq: int) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec of Google's run_pretraining input_fn."""
    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in INT_FEATURES_S}
    spec.update({name: tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
                 for name in INT_FEATURES_M})
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def _int_feature(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float_feature(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def encode_example(input_ids: Sequence[int], segment_ids: Sequence[int],
                   masked_lm_positions: Sequence[int], masked_lm_ids: Sequence[int],
                   next_sentence_label: int, max_seq_length: int,
                   max_predictions_per_seq: int) -> bytes:
    """Pads one instance (ids, not yet padded) to Google's fixed shapes and serialises it."""
    n, m = len(input_ids), len(masked_lm_positions)
    if n > max_seq_length:
        raise ValueError(f"instance has {n} tokens > max_seq_length {max_seq_length}")
    if m > max_predictions_per_seq:
        raise ValueError(f"instance has {m} predictions > max_predictions_per_seq "
                         f"{max_predictions_per_seq}")
    pad_s, pad_m = max_seq_length - n, max_predictions_per_seq - m
    features = {
        "input_ids": _int_feature(list(input_ids) + [0] * pad_s),
        "input_mask": _int_feature([1] * n + [0] * pad_s),
        "segment_ids": _int_feature(list(segment_ids) + [0] * pad_s),
        "masked_lm_positions": _int_feature(list(masked_lm_positions) + [0] * pad_m),
        "masked_lm_ids": _int_feature(list(masked_lm_ids) + [0] * pad_m),
        "masked_lm_weights": _float_feature([1.0] * m + [0.0] * pad_m),
        "next_sentence_labels": _int_feature([int(next_sentence_label)]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def decode_record(serialized: tf.Tensor, max_seq_length: int, max_predictions_per_seq: int
                  ) -> dict[str, tf.Tensor]:
    """Parses serialized examples (scalar or batch) and casts int64 features to int32 (as
    Google's input_fn does: TPUs want int32)."""
    parse = tf.io.parse_single_example if serialized.shape.rank == 0 else tf.io.parse_example
    example = parse(serialized, feature_spec(max_seq_length, max_predictions_per_seq))
    return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t
            for name, t in example.items()}


def inspect_record_file(path: str) -> dict[str, int]:
    """Reads the first record of `path` and returns its lengths: {"max_seq_length": S,
    "max_predictions_per_seq": M}. Raises RecordError naming the file if it cannot."""
    try:
        first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as e:
        raise RecordError(f"cannot read TFRecord file {path}: {e.message.splitlines()[0]}") from None
    if first is None:
        raise RecordError(f"TFRecord file {path} holds no records")
    try:
        example = tf.train.Example.FromString(first.numpy())
    except Exception as e:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise RecordError(f"{path}: first record is not a tf.train.Example ({e})") from None
    feats = example.features.feature
    missing = [n for n in feature_spec(1, 1) if n not in feats]
    if missing:
        raise RecordError(f"{path}: records lack the pretraining features {missing} "
                          f"(has {sorted(feats)})")
    return {"max_seq_length": len(feats["input_ids"].int64_list.value),
            "max_predictions_per_seq": len(feats["masked_lm_positions"].int64_list.value)}


def check_record_shapes(path: str, max_seq_length: int, max_predictions_per_seq: int) -> None:
    """Raises RecordError if the records of `path` were written with other lengths."""
    found = inspect_record_file(path)
    expected = {"max_seq_length": max_seq_length,
                "max_predictions_per_seq": max_predictions_per_seq}
    wrong = {k: v for k, v in found.items() if v != expected[k]}
    if wrong:
        raise RecordError(
            f"{path}: records were written with "
            + ", ".join(f"{k}={v}" for k, v in found.items())
            + f" but the flags say --max_seq_length={max_seq_length} "
              f"--max_predictions_per_seq={max_predictions_per_seq}")


def as_numpy_batch(examples: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stacks parsed examples into one batch dict (tests and tools)."""
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
