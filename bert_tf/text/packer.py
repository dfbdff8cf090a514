"""In-graph packing of WordPiece ids into BERT inputs: `[CLS] A [SEP] (B [SEP])`, truncate, pad.

Two implementations with identical output (and identical to the pure-Python
`bert_tf.text.packing.pack_tokens`, which follows Google's run_classifier rules):

* `pack_inputs` — the normal TensorFlow path on `tf.RaggedTensor` segments, built from tf-text's
  `RoundRobinTrimmer`, `combine_segments` and `pad_model_inputs`.
* `pack_inputs_tflite` — plain dense tensor ops on each segment's `values` and `row_splits`
  (range / gather / select / min / max arithmetic), so a graph using it converts to TFLite with the
  builtin op set only. `combine_segments` and ragged slicing would need the Flex delegate.

Truncation (Google's `_truncate_seq_pair`: while len(A) + len(B) > m, pop the last token of the
longer segment, of B when they are equally long) has a closed form per example, with budget
m = seq_length - 3 and segment lengths la, lb:

    kept_a = min(la, max(m - lb, ceil(m / 2)))
    kept_b = min(lb, max(m - la, floor(m / 2)))

(If both fit, nothing is cut; otherwise the longer one is cut down towards the shorter, and once
they are equally long they shrink alternately, B first, so A ends up with the extra token when m
is odd.) This is exactly a round-robin allocation of m tokens starting with A, which is why
tf-text's `RoundRobinTrimmer` reproduces Google's rule; `ShrinkLongestTrimmer` breaks ties
towards the first segment (A) and `WaterfallTrimmer` fills A first, so neither does. A single
text keeps its first seq_length - 2 tokens.

Outputs are int32 `[batch, seq_length]`: `input_word_ids` (padding = `pad_id`), `input_mask`
(1 on real tokens incl. [CLS]/[SEP]) and `input_type_ids` (0 for [CLS], A and the first [SEP]; 1 for
B and its [SEP]; 0 on padding).

Bucketed length (`trim_to_bucket`): a batch packed at `seq_length` is cut to its longest row
rounded up to a multiple of `bucket_size` (capped at `seq_length`), so short texts are not
computed at full length, while a model sees only a handful of distinct shapes. Only padding
columns are dropped (every row's mask ends before the cut), so a model whose padding is masked
out (attention) gives the same outputs on the real tokens.
"""
from __future__ import annotations

import operator
from typing import Any

import tensorflow as tf

from bert_tf.errors import InputError


__all__ = ["pack_inputs", "pack_inputs_tflite", "packed_lengths", "min_seq_length",
           "bucket_length", "trim_to_bucket", "check_bucket_size"]


def min_seq_length(num_segments: int) -> int:
    """The shortest `seq_length` that holds [CLS] and a [SEP] per segment (2 single, 3 pair)."""
    return num_segments + 1


def _check_seq_length(seq_length: Any, num_segments: int) -> int:
    if isinstance(seq_length, bool):
        raise TypeError(f"seq_length must be an int, got {seq_length!r}")
    try:
        seq_length = operator.index(seq_length)
    except TypeError:
        raise TypeError(f"seq_length must be a Python int, got {type(seq_length).__name__}"
                        ) from None
    minimum = min_seq_length(num_segments)
    if seq_length < minimum:
        what = "a text pair ([CLS] A [SEP] B [SEP])" if num_segments == 2 else \
            "a single text ([CLS] A [SEP])"
        raise InputError(f"seq_length must be at least {minimum} for {what}, got {seq_length}")
    return seq_length


def _scalar_id(value: Any, name: str) -> tf.Tensor:
    value = tf.convert_to_tensor(value)
    if value.shape.rank not in (None, 0):
        raise ValueError(f"{name} must be a scalar, got shape {value.shape}")
    return tf.cast(value, tf.int32)


def packed_lengths(len_a: tf.Tensor, len_b: tf.Tensor | None, seq_length: int
                   ) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Lengths of A (and B) kept after Google's truncation, elementwise (closed form, int32)."""
    len_a = tf.cast(len_a, tf.int32)
    if len_b is None:
        return tf.minimum(len_a, seq_length - 2), None
    len_b = tf.cast(len_b, tf.int32)
    budget = seq_length - 3
    kept_a = tf.minimum(len_a, tf.maximum(budget - len_b, (budget + 1) // 2))
    kept_b = tf.minimum(len_b, tf.maximum(budget - len_a, budget // 2))
    return kept_a, kept_b


# ------------------------------------------------------------------------------------------------
# (a) RaggedTensor path.


def _as_ragged_2d(segment: Any, name: str) -> tf.RaggedTensor:
    if not isinstance(segment, tf.RaggedTensor):
        raise TypeError(f"{name} must be a tf.RaggedTensor [batch, (tokens)], got "
                        f"{type(segment).__name__}")
    if segment.ragged_rank > 1:  # e.g. [batch, (words), (pieces)] from text.BertTokenizer
        segment = segment.merge_dims(1, -1)
    if segment.shape.rank != 2:
        raise ValueError(f"{name} must have shape [batch, (tokens)], got {segment.shape}")
    return tf.cast(segment, tf.int32).with_row_splits_dtype(tf.int64)


def pack_inputs(segment_a: tf.RaggedTensor, segment_b: tf.RaggedTensor | None = None, *,
                seq_length: int, cls_id: Any, sep_id: Any, pad_id: Any = 0
                ) -> dict[str, tf.Tensor]:
    """Packs ragged token ids into BERT inputs (Google's truncation, see the module docstring).

    Args:
      segment_a: `tf.RaggedTensor` [batch, (tokens)] of token ids (any int dtype; a ragged rank > 1
        tensor such as [batch, (words), (pieces)] is flattened per example).
      segment_b: optional second segment, same batch size, or None for single texts.
      seq_length: Python int, the output width; >= 2 for single texts, >= 3 for pairs.
      cls_id, sep_id, pad_id: ids (Python ints or scalar tensors) of [CLS], [SEP] and padding.

    Returns:
      dict of int32 [batch, seq_length] tensors `input_word_ids`, `input_mask`, `input_type_ids`.
    """
    import tensorflow_text as text

    segments = [_as_ragged_2d(segment_a, "segment_a")]
    if segment_b is not None:
        segments.append(_as_ragged_2d(segment_b, "segment_b"))
    seq_length = _check_seq_length(seq_length, len(segments))
    cls_id, sep_id, pad_id = (_scalar_id(v, n) for v, n in
                              ((cls_id, "cls_id"), (sep_id, "sep_id"), (pad_id, "pad_id")))
    with tf.name_scope("pack_inputs"):
        budget = seq_length - len(segments) - 1
        trimmed = text.RoundRobinTrimmer(budget).trim(segments)
        ids, type_ids = text.combine_segments(trimmed, cls_id, sep_id)
        word_ids, mask = text.pad_model_inputs(ids, seq_length, pad_value=pad_id)
        type_ids, _ = text.pad_model_inputs(tf.cast(type_ids, tf.int32), seq_length, pad_value=0)
        out = {"input_word_ids": tf.cast(word_ids, tf.int32),
               "input_mask": tf.cast(mask, tf.int32),
               "input_type_ids": tf.cast(type_ids, tf.int32)}
        for v in out.values():
            v.set_shape([None, seq_length])
        return out


# ------------------------------------------------------------------------------------------------
# (b) dense-ops path (TFLite builtins).


def _values_and_splits(segment: Any, name: str) -> tuple[tf.Tensor, tf.Tensor]:
    """(values int32 [n], row_splits int32 [batch + 1]) of a segment given as a RaggedTensor or as
    a (values, row_splits) pair. Only component access and dense ops, no RaggedTensor ops."""
    if isinstance(segment, tf.RaggedTensor):
        splits = segment.row_splits
        inner = segment.values
        while isinstance(inner, tf.RaggedTensor):  # [batch, (words), (pieces)] -> [batch, (pieces)]
            splits = tf.gather(inner.row_splits, splits)
            inner = inner.values
        values = inner
    elif isinstance(segment, (tuple, list)) and len(segment) == 2:
        values, splits = (tf.convert_to_tensor(t) for t in segment)
    else:
        raise TypeError(f"{name} must be a tf.RaggedTensor or a (values, row_splits) pair, got "
                        f"{type(segment).__name__}")
    if values.shape.rank not in (None, 1) or splits.shape.rank not in (None, 1):
        raise ValueError(f"{name}: values and row_splits must be 1-D, got shapes {values.shape} "
                         f"and {splits.shape}")
    return tf.cast(values, tf.int32), tf.cast(splits, tf.int32)


def pack_inputs_tflite(segment_a: Any, segment_b: Any = None, *, seq_length: int, cls_id: Any,
                       sep_id: Any, pad_id: Any = 0) -> dict[str, tf.Tensor]:
    """Same output as `pack_inputs`, built from dense tensor ops only (TFLite builtins).

    Args:
      segment_a: the first segment as a `(values, row_splits)` pair of 1-D tensors (values: token
        ids [num_tokens]; row_splits: [batch + 1], int32 or int64, starting at 0), or as a
        `tf.RaggedTensor`, which is only taken apart into those components (a TFLite tokenizer
        op's ragged output is exactly such a pair).
      segment_b: optional second segment in the same form, or None.
      seq_length, cls_id, sep_id, pad_id: as in `pack_inputs`.

    Returns:
      dict of int32 [batch, seq_length] tensors `input_word_ids`, `input_mask`, `input_type_ids`.
    """
    num_segments = 1 if segment_b is None else 2
    seq_length = _check_seq_length(seq_length, num_segments)
    cls_id, sep_id, pad_id = (_scalar_id(v, n) for v, n in
                              ((cls_id, "cls_id"), (sep_id, "sep_id"), (pad_id, "pad_id")))
    with tf.name_scope("pack_inputs_tflite"):
        values_a, splits_a = _values_and_splits(segment_a, "segment_a")
        starts_a, len_a = splits_a[:-1], splits_a[1:] - splits_a[:-1]
        if segment_b is not None:
            values_b, splits_b = _values_and_splits(segment_b, "segment_b")
            starts_b, len_b = splits_b[:-1], splits_b[1:] - splits_b[:-1]
            kept_a, kept_b = packed_lengths(len_a, len_b, seq_length)
        else:
            kept_a, _ = packed_lengths(len_a, None, seq_length)

        pos = tf.range(seq_length, dtype=tf.int32)[tf.newaxis, :]  # [1, S]
        kept_a = kept_a[:, tf.newaxis]  # [batch, 1]
        sep_a = kept_a + 1  # position of the first [SEP]

        def take(values, starts, offset):
            # values[starts + offset], with out-of-range positions reading a dummy trailing pad
            # (so empty `values` gathers safely); callers select only the in-range positions.
            padded = tf.concat([values, tf.reshape(pad_id, [1])], axis=0)
            index = tf.clip_by_value(starts[:, tf.newaxis] + offset, 0, tf.shape(values)[0])
            return tf.gather(padded, index)

        word_ids = tf.where(pos < sep_a, take(values_a, starts_a, pos - 1), pad_id)
        word_ids = tf.where(pos == sep_a, sep_id, word_ids)
        if segment_b is not None:
            sep_b = sep_a + kept_b[:, tf.newaxis] + 1  # position of the second [SEP]
            in_b = tf.logical_and(pos > sep_a, pos < sep_b)
            word_ids = tf.where(in_b, take(values_b, starts_b, pos - sep_a - 1), word_ids)
            word_ids = tf.where(pos == sep_b, sep_id, word_ids)
            end = sep_b + 1
            # A select, not a cast of the bool: TFLite's converter folds a cast bool into a bool
            # ZEROS_LIKE (in the token-type Embedding's `ids < 0` check) that has no kernel.
            type_ids = tf.where(tf.logical_and(pos > sep_a, pos < end), 1, 0)
        else:
            end = sep_a + 1
            type_ids = tf.zeros_like(word_ids)
        word_ids = tf.where(pos == 0, cls_id, word_ids)
        mask = pos < end
        out = {"input_word_ids": word_ids,  # already pad_id past the last [SEP]
               "input_mask": tf.cast(mask, tf.int32),
               "input_type_ids": type_ids}
        for v in out.values():
            v.set_shape([None, seq_length])
        return out


# ------------------------------------------------------------------------------------------------
# (c) bucketed length.


def check_bucket_size(bucket_size: Any) -> int | None:
    """`bucket_size` as a positive int, or None (fixed length); TypeError/ValueError otherwise."""
    if bucket_size is None:
        return None
    if isinstance(bucket_size, bool) or not isinstance(bucket_size, int):
        raise TypeError(f"bucket_size must be a positive int or None, got {bucket_size!r}")
    if bucket_size < 1:
        raise ValueError(f"bucket_size must be a positive int or None, got {bucket_size}")
    return bucket_size


def bucket_length(input_mask: tf.Tensor, seq_length: int, bucket_size: int) -> tf.Tensor:
    """The batch's bucket length: its longest row rounded up to a multiple of `bucket_size`.

    Args:
      input_mask: int [batch, S] (1 on real tokens, a prefix of each row).
      seq_length: Python int, the cap (the packed width).
      bucket_size: Python int > 0.

    Returns:
      int32 scalar in [min(bucket_size, seq_length), seq_length]; an empty batch gets the smallest
      bucket, so its outputs keep a non-zero length axis.
    """
    # reduce_max of an empty batch is the int32 minimum: the maximum with 1 covers it.
    longest = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(input_mask, tf.int32), axis=1)), 1)
    buckets = (longest + bucket_size - 1) // bucket_size
    return tf.minimum(buckets * bucket_size, seq_length)


def trim_to_bucket(inputs: dict[str, tf.Tensor], bucket_size: int | None
                   ) -> dict[str, tf.Tensor]:
    """Packed inputs [batch, S] cut to [batch, bucket_length] (see the module docstring).

    Args:
      inputs: `pack_inputs` / `pack_inputs_tflite` output (`input_mask` and any other
        [batch, S] tensors, S static); tensors of another shape (e.g. ids [batch]) pass through.
      bucket_size: Python int > 0, or None to return `inputs` unchanged.

    Returns:
      dict of the same tensors, those of shape [batch, S] cut to [batch, L], L =
      `bucket_length(...)` (unknown statically).
    """
    bucket_size = check_bucket_size(bucket_size)
    if bucket_size is None:
        return inputs
    seq_length = inputs["input_mask"].shape[1]
    if seq_length is None:
        raise ValueError("trim_to_bucket needs packed inputs of a static length")
    if bucket_size >= seq_length:
        return inputs
    with tf.name_scope("trim_to_bucket"):
        length = bucket_length(inputs["input_mask"], seq_length, bucket_size)
        return {name: value[:, :length] if value.shape.rank == 2 and value.shape[1] == seq_length
                else value for name, value in inputs.items()}
