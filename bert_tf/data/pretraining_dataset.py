"""tf.data input pipeline over Google's pretraining TFRecords (run_pretraining's input_fn).

    >>> from bert_tf.data.pretraining_dataset import pretraining_dataset
    >>> ds = pretraining_dataset("data/part-*.tfrecord", global_batch_size=32, max_seq_length=128,
    ...                          max_predictions_per_seq=20, is_training=True)  # doctest: +SKIP

Batch size: `global_batch_size` is the number of examples per step over ALL replicas. Called
with a `tf.distribute.InputContext` (from `strategy.distribute_datasets_from_function`), the
dataset yields per-replica batches of `global_batch_size // num_replicas_in_sync`; without a
context it yields batches of `global_batch_size`.

Like Google's `input_fn`: training lists the files, shuffles and repeats them, reads them with
a parallel interleave and shuffles the records; evaluation reads the files in order and repeats
(the number of steps bounds it). Batches are complete (`drop_remainder=True`); features are
int32 (masked_lm_weights float32).

Errors (RecordError, a ValueError, naming the file): a pattern matching no file; records written
with another max_seq_length / max_predictions_per_seq (checked on the first record of every
file); a corrupted or truncated file found while reading (see `diagnose_read_error`, which the
training loop calls when tf.data fails).
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Mapping, Sequence

import tensorflow as tf

from bert_tf.data.records import RecordError, check_record_shapes, decode_record

logger = logging.getLogger("bert_tf")

# Google's run_pretraining: `cycle_length = min(num_cpu_threads, len(input_files))`, 4 threads.
DEFAULT_CYCLE_LENGTH = 4
DEFAULT_SHUFFLE_BUFFER = 100  # Google's record shuffle buffer


def list_input_files(input_patterns: str | Sequence[str]) -> list[str]:
    """Expands comma-separated glob patterns (or a list of them) into a sorted file list.

    Raises RecordError naming every pattern that matches no file.
    """
    if isinstance(input_patterns, str):
        patterns = [p.strip() for p in input_patterns.split(",")]
    else:
        patterns = [str(p).strip() for p in input_patterns]
    patterns = [p for p in patterns if p]
    if not patterns:
        raise RecordError("no input file pattern given")
    files: list[str] = []
    empty = []
    for pattern in patterns:
        try:
            matched = tf.io.gfile.glob(pattern)
        except tf.errors.OpError as e:
            raise RecordError(f"cannot list input pattern {pattern!r}: {e.message}") from None
        matched = [f for f in matched if not tf.io.gfile.isdir(f)]
        if not matched:
            empty.append(pattern)
        files.extend(sorted(matched))
    if empty:
        raise RecordError("input file pattern(s) match no file: "
                          + ", ".join(repr(p) for p in empty))
    seen = set()
    return [f for f in files if not (f in seen or seen.add(f))]


def per_replica_batch_size(global_batch_size: int,
                           input_context: tf.distribute.InputContext | None) -> int:
    """`global_batch_size` split over the replicas; RecordError-free ValueError if uneven."""
    if global_batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {global_batch_size}")
    if input_context is None:
        return global_batch_size
    replicas = input_context.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(f"batch size {global_batch_size} is not divisible by the "
                         f"{replicas} replicas in sync")
    return global_batch_size // replicas


def pretraining_dataset(input_patterns: str | Sequence[str], global_batch_size: int,
                        max_seq_length: int, max_predictions_per_seq: int, is_training: bool,
                        input_context: tf.distribute.InputContext | None = None,
                        seed: int | None = None,
                        batch_transform: Callable[[Mapping[str, tf.Tensor]],
                                                  Mapping[str, tf.Tensor]] | None = None,
                        shuffle_buffer_size: int = DEFAULT_SHUFFLE_BUFFER,
                        cycle_length: int = DEFAULT_CYCLE_LENGTH) -> tf.data.Dataset:
    """The pretraining input pipeline (Google's `input_fn_builder`).

    Args:
      input_patterns: comma-separated glob patterns (or a list) of TFRecord files.
      global_batch_size: examples per step over all replicas; the dataset yields batches of
        `global_batch_size // input_context.num_replicas_in_sync` (all of it without context).
      max_seq_length, max_predictions_per_seq: the lengths the records were written with.
      is_training: shuffle files and records and repeat forever; otherwise read in order (and
        repeat, as Google does: evaluation is bounded by a step count).
      input_context: from `distribute_datasets_from_function`. Files are sharded over the
        input pipelines (workers) when there are at least as many files as pipelines, else every
        pipeline reads all files and keeps every n-th record.
      seed: shuffling seed (None: non-deterministic). With a seed, reading is deterministic.
      batch_transform: applied to every batch dict (e.g. dynamic re-masking).
    Returns:
      tf.data.Dataset of feature dicts (`records.feature_spec` names, int32 / float32).
    """
    files = list_input_files(input_patterns)
    batch_size = per_replica_batch_size(global_batch_size, input_context)
    check_record_shapes(files[0], max_seq_length, max_predictions_per_seq)

    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_records = False
    if num_pipelines > 1:
        if len(files) >= num_pipelines:
            files = files[pipeline_id::num_pipelines]
        else:
            shard_records = True
            logger.info("%d input file(s) for %d input pipelines: every pipeline reads all "
                        "files and keeps 1 record in %d", len(files), num_pipelines,
                        num_pipelines)

    deterministic = (not is_training) or seed is not None
    if is_training:
        d = tf.data.Dataset.from_tensor_slices(tf.constant(files))
        d = d.repeat()
        d = d.shuffle(buffer_size=len(files), seed=seed)
        cycle = max(1, min(cycle_length, len(files)))
        d = d.interleave(tf.data.TFRecordDataset, cycle_length=cycle,
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if shard_records:
            d = d.shard(num_pipelines, pipeline_id)
        d = d.shuffle(buffer_size=shuffle_buffer_size, seed=seed)
    else:
        d = tf.data.TFRecordDataset(files)
        if shard_records:
            d = d.shard(num_pipelines, pipeline_id)
        d = d.repeat()

    d = d.batch(batch_size, drop_remainder=True)
    d = d.map(lambda s: decode_record(s, max_seq_length, max_predictions_per_seq),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if batch_transform is not None:
        d = d.map(batch_transform, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=deterministic)
    options = tf.data.Options()
    # We shard by hand (files or records per input pipeline); no automatic sharding on top.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    d = d.with_options(options)
    return d.prefetch(tf.data.AUTOTUNE)


def diagnose_read_error(files: Sequence[str], max_seq_length: int,
                        max_predictions_per_seq: int, error: Exception | None = None
                        ) -> RecordError:
    """Finds which file made tf.data fail and returns a RecordError naming it.

    tf.data's DataLossError ("corrupted record at 6525") and parse errors do not say which
    file they come from. This re-reads the files, cheapest checks first: the first record of
    every file (lengths), then every file's framing and checksums. Meant to run only after a
    failure; reading everything once costs about what one pass of tf.data does.
    """
    detail = ""
    if error is not None:
        message = getattr(error, "message", str(error)) or str(error)
        lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
        detail = lines[0] if lines else ""
        # Drop tf.function noise such as "{{function_node __wrapped__...}}".
        if "}}" in detail:
            detail = detail.split("}}", 1)[1].strip()
        detail = detail.split(" [Op:")[0].strip()
    for path in files:
        try:
            check_record_shapes(path, max_seq_length, max_predictions_per_seq)
        except RecordError as e:
            return RecordError(f"{e} (reading failed: {detail})" if detail else str(e))
    for path in files:
        try:
            tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
        except tf.errors.DataLossError as e:
            reason = e.message.splitlines()[0].split("}}")[-1].split(" [Op:")[0].strip()
            return RecordError(f"TFRecord file {path} is corrupted or truncated: {reason}")
        except tf.errors.OpError as e:
            return RecordError(f"cannot read TFRecord file {path}: {e.message.splitlines()[0]}")
    for path in files:  # every record parses? (expensive; only reached when nothing else did)
        d = tf.data.TFRecordDataset(path).batch(256).map(
            lambda s: decode_record(s, max_seq_length, max_predictions_per_seq))
        try:
            d.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
        except tf.errors.OpError as e:
            first = e.message.splitlines()[0].split("}}")[-1].split(" [Op:")[0].strip()
            return RecordError(f"TFRecord file {path}: a record does not parse as a pretraining "
                               f"example with max_seq_length={max_seq_length}, "
                               f"max_predictions_per_seq={max_predictions_per_seq}: {first}")
    names = ", ".join(os.fspath(f) for f in files[:5]) + (" ..." if len(files) > 5 else "")
    return RecordError(f"reading the input files failed ({detail}); files: {names}")


def find_out_of_range_ids(files: Sequence[str], vocab_size: int, max_seq_length: int,
                          max_predictions_per_seq: int) -> RecordError | None:
    """The first file holding a token id ≥ `vocab_size` (input_ids or masked_lm_ids) as a
    RecordError naming the file, the id and the record, or None. Run after an embedding lookup
    failed: CPUs raise a bare "indices[...] = 70 is not in [0, 64)", GPUs silently read zeros."""
    for path in files:
        d = tf.data.TFRecordDataset(path).batch(256).map(
            lambda s: decode_record(s, max_seq_length, max_predictions_per_seq))
        offset = 0
        for batch in d:
            for name in ("input_ids", "masked_lm_ids"):
                ids = batch[name].numpy()
                bad = ids >= vocab_size
                if bad.any():
                    row = int(bad.any(axis=1).argmax())
                    return RecordError(
                        f"TFRecord file {path}: record {offset + row} has {name} id "
                        f"{int(ids[row].max())} but the model's vocab_size is {vocab_size} "
                        f"(records written with another vocab.txt?)")
            offset += int(batch["input_ids"].shape[0])
    return None
