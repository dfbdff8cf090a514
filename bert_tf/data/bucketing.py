"""Length-bucketed batches for fine-tuning and evaluation.

Real text is short (SST-2 sentences average about 25 WordPieces, MRPC pairs about 55), so
batches packed at `max_seq_length` = 128 spend most of their compute on padding. `bucket_by_length`
groups packed examples by their length rounded up to a multiple of `bucket_size` (the rule of
`bert_tf.text.packer.bucket_length`, shared with the serving SavedModels) and cuts each batch's
sequence features to that bucket. Every batch then has one of a handful of shapes
([batch, bucket_size], [batch, 2 * bucket_size], ..., [batch, max_seq_length]), so `jit_compile`
and TPUs compile a few programs, not one per batch.

Only padding columns are cut, so a model whose padding is masked out (attention) computes the
same per-example outputs; the loss and metrics are unchanged up to summation order. The examples
are those of the input dataset, each exactly once (their order changes: a batch holds examples
of one bucket), unless `drop_remainder` drops each bucket's last partial batch.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from bert_tf.text.packer import bucket_length, check_bucket_size

__all__ = ["bucket_by_length", "sequence_feature_names"]


def sequence_feature_names(element_spec: Mapping[str, tf.TensorSpec], seq_length: int) -> list[str]:
    """The features of shape [seq_length] (ids, mask, segment ids), which buckets cut."""
    return sorted(name for name, spec in element_spec.items()
                  if spec.shape.rank == 1 and spec.shape[0] == seq_length)


def bucket_by_length(dataset: tf.data.Dataset, batch_size: int, seq_length: int,
                     bucket_size: int = 16, mask_key: str = "input_mask",
                     drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches packed examples by length, each batch cut to its bucket.

    Args:
      dataset: unbatched examples, dicts of tensors: sequence features int [seq_length] (e.g.
        `input_ids`/`input_word_ids`, `input_mask`, `segment_ids`/`input_type_ids`) and any
        others (labels, weights) of any shape, passed through.
      batch_size: examples per batch.
      seq_length: the examples' packed length (`max_seq_length`), the largest bucket.
      bucket_size: buckets are multiples of it, capped at `seq_length`.
      mask_key: the feature whose sum is an example's length (1 on real tokens, a prefix).
      drop_remainder: drop each bucket's last batch when it is partial (static batch size).

    Returns:
      A dataset of batches: sequence features [batch, L] with L = the bucket of the batch's
      examples (min(k * bucket_size, seq_length)), other features [batch, ...].
    """
    bucket_size = check_bucket_size(bucket_size)
    spec = dataset.element_spec
    if not isinstance(spec, Mapping) or mask_key not in spec:
        raise ValueError(f"bucket_by_length needs examples as dicts with a {mask_key!r} feature, "
                         f"got {spec}")
    names = sequence_feature_names(spec, seq_length)
    if mask_key not in names:
        raise ValueError(f"feature {mask_key!r} has shape {spec[mask_key].shape}, expected "
                         f"[{seq_length}] (seq_length)")

    def key_func(features):
        # The example's bucket length is its key: one window (and one shape) per bucket.
        length = bucket_length(tf.reshape(features[mask_key], [1, -1]), seq_length, bucket_size)
        return tf.cast(length, tf.int64)

    def reduce_func(length, window):
        def cut(batch):
            return {name: batch[name][:, :length] if name in names else batch[name]
                    for name in batch}
        return window.batch(batch_size, drop_remainder=drop_remainder).map(cut)

    return dataset.group_by_window(key_func, reduce_func, window_size=batch_size)
