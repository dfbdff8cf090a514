"""What a training run reports: TensorBoard scalars, progress intervals, result files."""
from __future__ import annotations

import json
import math
import os
import uuid
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from bert_tf.progress import format_duration  # noqa: F401 (re-exported for the Trainer)
from bert_tf.training.options import TrainingError

EVAL_RESULTS_FILE = "eval_results.txt"


def _scalar_metadata():
    """TensorBoard's scalar-plugin metadata, built without importing tensorboard (TF 2.21 no
    longer depends on it; `tf.summary.scalar` needs it, `tf.summary.write` does not)."""
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata


def summary_scalar(name: str, value: float, step: int) -> None:
    """Writes one scalar to the default summary writer (readable by TensorBoard)."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_scalar_metadata())


def write_scalars(writer, values: Mapping[str, float], step: int) -> None:
    """Every value except global_step as a TensorBoard scalar at `step`."""
    with writer.as_default():
        for name, value in values.items():
            if name != "global_step":
                summary_scalar(name, value, step)
    writer.flush()


def _atomic_write(path: str, text: str) -> None:
    """Writes to a temporary name, then renames: a reader never sees half a file."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def write_eval_results(path: str, results: Mapping[str, Any]) -> None:
    """Google's eval_results.txt: sorted `key = value` lines."""
    _atomic_write(path, "".join(f"{key} = {results[key]}\n" for key in sorted(results)))


def write_lines(path: str, lines: Sequence[str]) -> None:
    """A text file of one item per line (vocab.txt, labels.txt)."""
    _atomic_write(path, "".join(f"{line}\n" for line in lines))


def append_json_line(path: str, record: Mapping[str, Any]) -> None:
    """One JSON object per line (eval_history.jsonl: one line per evaluation)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({k: (int(v) if k == "global_step" else float(v))
                            for k, v in record.items()}, sort_keys=True) + "\n")


def check_writable(directory: str) -> None:
    """Creates `directory` and proves it writable, or raises one TrainingError naming it."""
    try:
        tf.io.gfile.makedirs(directory)
        probe = os.path.join(directory, f".write_test_{uuid.uuid4().hex}")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        reason = getattr(e, "message", None) or str(e)
        raise TrainingError(f"output_dir {directory} is not writable: "
                            f"{reason.splitlines()[0] if reason else type(e).__name__}") from None


def learning_rate(optimizer) -> float:
    """The learning rate of the last step taken."""
    lr = getattr(optimizer, "_learning_rate", None)  # the schedule, or a variable
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return float(lr(tf.maximum(optimizer.iterations - 1, 0)))
    return float(optimizer.learning_rate)


class Interval:
    """The task's stats, losses and time summed over the steps since the last progress line."""

    def __init__(self, num_stats: int):
        self.stats = np.zeros([num_stats], np.float64)
        self.loss = 0.0
        self.steps = 0
        self.seconds = 0.0

    def add(self, out: Mapping[str, np.ndarray], seconds: float) -> None:
        self.stats += out["stats"]
        self.loss += float(out["loss_sum"])
        self.steps += int(out["steps"])
        self.seconds += seconds

    def metrics(self, task, examples_per_step: int) -> dict[str, float]:
        """loss (mean of the steps' losses), the task's metrics and examples_per_second."""
        metrics = {"loss": self.loss / max(self.steps, 1), **task.train_metrics(self.stats)}
        metrics["examples_per_second"] = (self.steps * examples_per_step
                                          / max(self.seconds, 1e-9))
        return metrics
