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

__all__ = ["bucket_by_length", "bucketed_inference_batches", "bucketed_training_batches",
           "length_order", "pad_to_seq_length", "sequence_feature_names"]


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


def _as_dict(features, *rest):
    return {**features, **{f"_rest_{i}": t for i, t in enumerate(rest)}}


def _as_tuple(names, count):
    def split(batch):
        return ({name: batch[name] for name in names},
                *(batch[f"_rest_{i}"] for i in range(count)))
    return split


def bucketed_training_batches(dataset: tf.data.Dataset, pipeline_batch_size: int,
                              per_replica_batch_size: int, seq_length: int,
                              bucket_size: int, mask_key: str = "input_mask") -> tf.data.Dataset:
    """Training batches grouped by length, every replica of a step in the same bucket.

    Examples are grouped into batches of this input pipeline's share of the global batch
    (`bucket_by_length`, full batches only), then each is split into consecutive per-replica
    batches: the replicas of one step see one global batch of one bucket shape, as on one
    device, so one device and N replicas take the same steps.

    Args:
      dataset: unbatched examples, a dict of features (those of shape [seq_length] are cut to
        the bucket: ids, mask, per-token labels; others pass through), or a tuple
        `(features, *others)` of such a dict and any other tensors (labels), passed through.
      pipeline_batch_size: global batch size / number of input pipelines.
      per_replica_batch_size: a divisor of pipeline_batch_size.
      seq_length, bucket_size, mask_key: see `bucket_by_length`.

    Returns:
      A dataset of batches of the same structure: `features [B, L]` (or `(features [B, L],
      *others [B, ...])`), B = per_replica_batch_size.
    """
    is_dict = isinstance(dataset.element_spec, Mapping)
    ds = dataset if is_dict else dataset.map(_as_dict)
    ds = bucket_by_length(ds, pipeline_batch_size, seq_length, bucket_size, mask_key,
                          drop_remainder=True)
    ds = ds.unbatch().batch(per_replica_batch_size, drop_remainder=True)
    if is_dict:
        return ds
    return ds.map(_as_tuple(list(dataset.element_spec[0]), len(dataset.element_spec) - 1))


def bucketed_inference_batches(dataset: tf.data.Dataset, pipeline_batch_size: int,
                               per_replica_batch_size: int, bucket_size: int | None
                               ) -> tf.data.Dataset:
    """Inference batches cut to their bucket, in the input order (a fixed number of batches).

    Each batch of this pipeline's share of the global batch is cut to the bucket of its longest
    example (`trim_to_bucket`), then split into per-replica batches, so every replica of a step
    has the same shape (outputs with a length axis can be all-gathered; `pad_to_seq_length`
    makes them concatenate over batches). Sort the examples by length first (`length_order`)
    for batches of similar lengths.

    Args:
      dataset: batches of `pipeline_batch_size` examples `(features, *others)`: features a dict
        with "input_mask" [B, seq_length]; its [B, seq_length] tensors are cut, others (e.g.
        ids [B]) pass through.
      pipeline_batch_size, per_replica_batch_size: as `bucketed_training_batches`.
      bucket_size: None returns the batches split per replica, uncut.

    Returns:
      A dataset of `(features [B, L], *others [B, ...])`, B = per_replica_batch_size.
    """
    from bert_tf.text.packer import trim_to_bucket

    count = len(dataset.element_spec) - 1
    names = list(dataset.element_spec[0])
    ds = dataset.map(lambda features, *rest: _as_dict(trim_to_bucket(features, bucket_size),
                                                      *rest))
    ds = ds.unbatch().batch(per_replica_batch_size, drop_remainder=True)
    return ds.map(_as_tuple(names, count))


def length_order(lengths, global_batch_size: int):
    """(take, weight): example indices sorted by length and padded to a multiple of the global
    batch with weight-0 copies of the shortest, for `bucketed_inference_batches`.

    Args:
      lengths: int [N] the examples' packed lengths (N > 0).
      global_batch_size: Python int.

    Returns:
      take int64 [P] (P = N rounded up to a multiple of global_batch_size), weight float32 [P]:
      1 for the examples, 0 for the padding copies (which come last).
    """
    import numpy as np

    lengths = np.asarray(lengths)
    n = len(lengths)
    padded = -(-n // global_batch_size) * global_batch_size
    order = np.argsort(lengths, kind="stable")
    take = np.concatenate([order, order[:padded - n]]).astype(np.int64)
    weight = (np.arange(padded) < n).astype(np.float32)
    return take, weight


def pad_to_seq_length(values: tf.Tensor, seq_length: int, padding_value=0) -> tf.Tensor:
    """Per-position outputs of a bucketed batch, [B, L, ...], padded back to [B, seq_length, ...]
    with `padding_value`, so the outputs of batches of different buckets concatenate (positions
    past L are padding, never read as a token's output).

    Args:
      values: [B, L, ...] with L <= seq_length.
      seq_length: Python int, the packed length.
      padding_value: the value of the added positions (same dtype as `values`).

    Returns:
      [B, seq_length, ...], equal to `values` on the first L positions.
    """
    extra = seq_length - tf.shape(values)[1]
    paddings = [[0, 0], [0, extra]] + [[0, 0]] * (values.shape.rank - 2)
    out = tf.pad(values, paddings, constant_values=padding_value)
    out.set_shape(values.shape[:1].concatenate([seq_length]).concatenate(values.shape[2:]))
    return out
