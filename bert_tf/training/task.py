"""The Task contract: what a training task supplies to the `Trainer` (docs/training.md).

A task is a plain object; the Trainer calls these members (shapes are per replica):

* `config`: the BertConfig (exported as bert_config.json with the Google checkpoint).
* `stat_names`: names of the per-step float32 sums `objective` returns ([N]).
* `progress_metrics`: the metric names shown on the progress line.
* `default_eval_metric`: the metric early stopping watches when keep_best_checkpoint_by is unset.
* `build_model()`: the Keras model (called under the strategy scope and dtype policy).
* `initialize(model, path)`: loads a Google checkpoint; returns a LoadReport.
* `train_dataset(data, global_batch_size)`: a `dataset_fn(input_context)` for
  `distribute_datasets_from_function`, repeating forever, yielding per-replica batches.
* `eval_dataset(data, global_batch_size)`: (`dataset_fn`, number of batches to run).
* `normalizers(batch)`: float32 [K] sums the Trainer all-reduces over the replicas (and the
  accumulated micro-batches) before the objective, e.g. [number of examples].
* `objective(model, batch, totals)`: (scalar, stats [N]): this replica's share of the
  global-batch loss, normalised by the all-reduced `totals` so the replicas' objectives SUM to
  the global-batch loss; stats are per-batch sums (reduced over replicas by the Trainer).
* `loss_from_stats(stats)`: the global-batch loss from summed stats (NaN check, logging).
* `train_metrics(stats)`: progress metrics from stats summed over several steps.
* `eval_step(model, batch)`: dict of tensors with a leading axis; the Trainer all-gathers them.
* `aggregate_eval(outputs)`: metrics dict from the gathered outputs of every batch (numpy).
* `export_files()`: {file name: lines} written beside the Google checkpoint.
* `diagnose_data_error(data, error)`: an InputError naming the bad file, or None.

`Task` below gives the defaults; a new task subclasses it and fills in the rest.

Length buckets: a task whose inputs are packed token sequences sets `bucket_size` (e.g. from
its options) and builds its batches with `training_batches` / `inference_batches` (in-memory
windows: `padded_inference_dataset(..., bucket_size)`), padding per-position outputs back with
`bert_tf.data.bucketing.pad_to_seq_length`; batches are then cut to a multiple of `bucket_size`
(a handful of static shapes) instead of padded to max_seq_length, with unchanged per-example
outputs (docs/training.md, "Length buckets").
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf


class Task:
    """Base class with the contract's defaults (see the module docstring)."""

    stat_names: tuple[str, ...] = ()
    progress_metrics: tuple[str, ...] = ()
    default_eval_metric = "loss"
    bucket_size: int | None = None  # None/0: every batch padded to the full sequence length

    def __init__(self, config):
        self.config = config

    # -- batching with length buckets ---------------------------------------------------------
    def training_batches(self, examples, global_batch_size: int, input_context,
                         seq_length: int):
        """Per-replica training batches of unbatched `(features, *others)` examples.

        With `bucket_size` set (and below `seq_length`) examples are grouped by length
        (`bert_tf.data.bucketing.bucketed_training_batches`): every global batch is one bucket.
        """
        from bert_tf.data.bucketing import bucketed_training_batches

        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        if not self.bucket_size or self.bucket_size >= seq_length:
            return examples.batch(per_replica, drop_remainder=True)
        return bucketed_training_batches(
            examples, global_batch_size // input_context.num_input_pipelines, per_replica,
            seq_length, self.bucket_size)

    def inference_batches(self, batches, global_batch_size: int, input_context):
        """Per-replica batches from batches of this pipeline's share of the global batch
        (`(features [B, seq_length], *others)`), cut to their bucket when `bucket_size` is set
        (`bert_tf.data.bucketing.bucketed_inference_batches`); order and count are kept."""
        from bert_tf.data.bucketing import bucketed_inference_batches

        return bucketed_inference_batches(
            batches, global_batch_size // input_context.num_input_pipelines,
            input_context.get_per_replica_batch_size(global_batch_size), self.bucket_size or None)

    def build_model(self):
        raise NotImplementedError

    def initialize(self, model, path: str):
        from bert_tf.checkpoints import load_google_checkpoint

        return load_google_checkpoint(model, path, strict=True)

    def train_dataset(self, data, global_batch_size: int):
        raise NotImplementedError

    def eval_dataset(self, data, global_batch_size: int):
        raise NotImplementedError

    def normalizers(self, batch):
        raise NotImplementedError

    def objective(self, model, batch, totals):
        raise NotImplementedError

    def loss_from_stats(self, stats):
        raise NotImplementedError

    def train_metrics(self, stats: Sequence[float]) -> dict[str, float]:
        return {}

    def eval_step(self, model, batch) -> Mapping[str, Any]:
        raise NotImplementedError

    def aggregate_eval(self, outputs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, float]:
        raise NotImplementedError

    def export_files(self) -> dict[str, Sequence[str]]:
        return {}

    def diagnose_data_error(self, data, error: Exception):
        return None


def ordered_examples(outputs: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenates per-example outputs of every batch, drops the weight-0 padding copies and
    restores the input order (by "index"). Outputs need "weight" and "index" [B]."""
    keep = [o["weight"] > 0 for o in outputs]
    merged = {name: np.concatenate([o[name][k] for o, k in zip(outputs, keep)])
              for name in outputs[0]}
    order = np.argsort(merged["index"], kind="stable")
    return {name: value[order] for name, value in merged.items()}


def inference_order(num_examples: int, global_batch_size: int, lengths=None):
    """(take, weight): the example indices, every example once plus weight-0 copies up to a
    multiple of the global batch (Google's PaddingInputExample), sorted by `lengths` when given
    (`bert_tf.data.bucketing.length_order`, for length buckets). int64 [P], float32 [P]."""
    if lengths is not None:
        from bert_tf.data.bucketing import length_order

        return length_order(lengths, global_batch_size)
    padded = math.ceil(num_examples / global_batch_size) * global_batch_size
    take = (np.arange(padded) % num_examples).astype(np.int64)
    return take, (np.arange(padded) < num_examples).astype(np.float32)


def padded_inference_dataset(columns, num_examples: int, global_batch_size: int,
                             bucket_size: int | None = None):
    """In-memory evaluation/prediction data as every example once, repeated with weight-0
    copies up to a multiple of the global batch (Google's PaddingInputExample), so every
    replica gets full batches and `ordered_examples` can drop the copies afterwards.

    Args:
      columns: a nest of arrays with `num_examples` rows each; with `bucket_size`, a dict with
        "input_mask" [N, S] (its [N, S] arrays are the sequence features).
      num_examples: how many real examples the arrays hold (> 0).
      global_batch_size: the batch over all replicas.
      bucket_size: when set, the examples are sorted by length (`length_order`, copies of the
        shortest pad the end) and every batch is cut to its bucket
        (`bert_tf.data.bucketing.bucketed_inference_batches`).

    Returns:
      (dataset_fn, number of global batches); dataset_fn(input_context) yields
      `(columns, weight [B], index [B])` per-replica batches, sharded per input pipeline;
      with `bucket_size` the sequence features are [B, L], L a bucket (the same on every
      replica of a step).
    """
    from bert_tf.data.bucketing import bucketed_inference_batches

    lengths = np.asarray(columns["input_mask"]).sum(axis=1) if bucket_size else None
    take, weight = inference_order(num_examples, global_batch_size, lengths)
    data = (tf.nest.map_structure(lambda a: np.asarray(a)[take], columns), weight, take)

    def dataset_fn(input_context):
        ds = tf.data.Dataset.from_tensor_slices(data)
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        if bucket_size:
            pipeline = global_batch_size // input_context.num_input_pipelines
            ds = bucketed_inference_batches(ds.batch(pipeline, drop_remainder=True), pipeline,
                                            per_replica, bucket_size)
        else:
            ds = ds.batch(per_replica, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    return dataset_fn, len(take) // global_batch_size
