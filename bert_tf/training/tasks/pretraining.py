"""Pretraining (masked LM + next sentence) as a Trainer task (Google's run_pretraining).

    >>> from bert_tf import BertConfig
    >>> from bert_tf.training.tasks.pretraining import PretrainingOptions, run_pretraining
    >>> from bert_tf.training.strategy import create_strategy
    >>> opts = PretrainingOptions(output_dir="out", max_seq_length=128, train_batch_size=32,
    ...                           num_train_steps=1000, num_warmup_steps=100)
    >>> run_pretraining(BertConfig.from_json_file("bert_config.json"), opts,
    ...                 train_input="data/*.tfrecord", eval_input="data/*.tfrecord",
    ...                 do_train=True, do_eval=True,
    ...                 strategy=create_strategy("mirrored"))  # doctest: +SKIP

Loss across replicas (exactly one device at the same global batch). Google's loss is
    masked_lm_loss = Σ w·nll / (Σ w + 1e-5)     over the masked positions of the batch
    next_sentence_loss = Σ nll / batch_size
The normalisers are Σ w and the example count of the global batch (all-reduced by the Trainer);
each replica minimises Σ_replica w·nll / (Σ_global w + 1e-5) + Σ_replica nsp_nll / global_batch,
so the replicas' objectives sum to the global-batch loss.

Evaluation: `max_eval_steps` batches of `eval_batch_size`; masked_lm_accuracy, masked_lm_loss,
next_sentence_accuracy, next_sentence_loss are weighted means over all batches (tf.metrics),
`loss` the mean of the per-batch losses. TensorBoard `train/` holds loss, masked_lm_accuracy,
next_sentence_accuracy, masked_lm_loss, next_sentence_loss, learning_rate, examples_per_second.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np
import tensorflow as tf

from bert_tf.config import BertConfig, as_config
from bert_tf.data.pretraining_dataset import (diagnose_read_error, find_out_of_range_ids,
                                              list_input_files, pretraining_dataset)
from bert_tf.models.pretrainer import (PRETRAINING_SUM_NAMES, BertPretrainer,
                                       pretraining_loss_from_sums, pretraining_loss_sums)
from bert_tf.training.options import TrainerOptions, TrainingError
from bert_tf.training.task import Task
from bert_tf.training.trainer import Trainer


@dataclasses.dataclass
class PretrainingOptions(TrainerOptions):
    """run_pretraining.py's settings: the Trainer's plus the records' shapes and eval length."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    max_eval_steps: int = 100

    POSITIVE = TrainerOptions.POSITIVE + ("max_seq_length", "max_predictions_per_seq",
                                          "max_eval_steps")


def loss_sums(features: Mapping[str, Any], outputs: Mapping[str, Any]) -> tf.Tensor:
    """`pretraining_loss_sums` of a BertPretrainer's outputs (float32 [6])."""
    return pretraining_loss_sums(features, outputs["masked_lm_logits"],
                                 outputs["next_sentence_logits"])


def metrics_from_sums(s, loss=None) -> dict[str, float]:
    """Google's eval metrics (tf.metrics weighted means) from sums added over batches."""
    s = [float(x) for x in s]
    out = {"masked_lm_accuracy": s[2] / s[1] if s[1] else 0.0,
           "masked_lm_loss": s[0] / s[1] if s[1] else 0.0,
           "next_sentence_accuracy": s[4] / s[5] if s[5] else 0.0,
           "next_sentence_loss": s[3] / s[5] if s[5] else 0.0}
    if loss is not None:
        out["loss"] = float(loss)
    return out


def _is_data_error(error: Exception) -> bool:
    if isinstance(error, tf.errors.DataLossError):
        return True
    message = getattr(error, "message", "") or ""
    return any(k in message for k in ("serialized Example", "ParseExample", "Feature:",
                                      "TFRecord", "Key: "))


class PretrainingTask(Task):
    """BertPretrainer on Google's pretraining TFRecords (data: comma-separated glob patterns)."""

    stat_names = PRETRAINING_SUM_NAMES
    progress_metrics = ("masked_lm_accuracy", "next_sentence_accuracy")
    default_eval_metric = "loss"

    def __init__(self, config: BertConfig, max_seq_length: int, max_predictions_per_seq: int,
                 max_eval_steps: int = 100, seed: int | None = None,
                 train_batch_transform: Callable | None = None):
        super().__init__(as_config(config))
        self.config.check_max_seq_length(max_seq_length, "max_seq_length")
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        self.max_eval_steps = max_eval_steps
        self.seed = seed
        self.train_batch_transform = train_batch_transform

    def build_model(self):
        return BertPretrainer(self.config)

    def _dataset_fn(self, data, global_batch_size, is_training):
        files = list_input_files(data)

        def dataset_fn(input_context):
            return pretraining_dataset(
                files, global_batch_size, self.max_seq_length, self.max_predictions_per_seq,
                is_training=is_training, input_context=input_context, seed=self.seed,
                batch_transform=self.train_batch_transform if is_training else None)

        return dataset_fn

    def train_dataset(self, data, global_batch_size):
        return self._dataset_fn(data, global_batch_size, is_training=True)

    def eval_dataset(self, data, global_batch_size):
        return self._dataset_fn(data, global_batch_size, is_training=False), self.max_eval_steps

    def normalizers(self, batch):
        return tf.stack([tf.reduce_sum(tf.cast(batch["masked_lm_weights"], tf.float32)),
                         tf.cast(tf.shape(batch["input_ids"])[0], tf.float32)])

    def objective(self, model, batch, totals):
        sums = loss_sums(batch, model(batch, training=True))
        return sums[0] / (totals[0] + 1e-5) + sums[3] / totals[1], sums

    def loss_from_stats(self, stats):
        return pretraining_loss_from_sums(stats)

    def train_metrics(self, stats):
        return metrics_from_sums(stats)

    def eval_step(self, model, batch):
        return {"sums": loss_sums(batch, model(batch, training=False))[None]}

    def aggregate_eval(self, outputs):
        per_batch = [o["sums"].astype(np.float64).sum(0) for o in outputs]
        losses = [float(pretraining_loss_from_sums(s)) for s in per_batch]
        return metrics_from_sums(np.sum(per_batch, 0), loss=float(np.mean(losses)))

    def diagnose_data_error(self, data, error):
        files = list_input_files(data)
        if "is not in [0, " in (getattr(error, "message", "") or ""):  # an embedding lookup
            return find_out_of_range_ids(files, self.config.vocab_size, self.max_seq_length,
                                         self.max_predictions_per_seq)
        if not _is_data_error(error):
            return None
        return diagnose_read_error(files, self.max_seq_length, self.max_predictions_per_seq,
                                   error)


class PretrainingTrainer(Trainer):
    """A Trainer of a PretrainingTask built from the options; `train(input_patterns)`,
    `evaluate(input_patterns)`. See Trainer for optimizer_factory and the rest."""

    def __init__(self, bert_config: BertConfig | Mapping[str, Any], options: PretrainingOptions,
                 strategy: tf.distribute.Strategy | None = None,
                 optimizer_factory: Callable | None = None,
                 train_batch_transform: Callable | None = None,
                 progress_stream: TextIO | None = None):
        options.validate()
        task = PretrainingTask(bert_config, options.max_seq_length,
                               options.max_predictions_per_seq, options.max_eval_steps,
                               seed=options.seed, train_batch_transform=train_batch_transform)
        super().__init__(task, options, strategy=strategy, optimizer_factory=optimizer_factory,
                         progress_stream=progress_stream)


def run_pretraining(bert_config: BertConfig | Mapping[str, Any], options: PretrainingOptions,
                    *, train_input: str | Sequence[str] | None = None, eval_input=None,
                    do_train: bool = True, do_eval: bool = False,
                    strategy: tf.distribute.Strategy | None = None,
                    optimizer_factory: Callable | None = None,
                    train_batch_transform: Callable | None = None,
                    progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Trains and/or evaluates (Google's run_pretraining main).

    Returns {"global_step", "preempted", "resumed_from", "eval_results" (or None),
    "best_step"}. Evaluation is skipped after a SIGTERM stop.
    """
    if not (do_train or do_eval):
        raise TrainingError("at least one of do_train or do_eval must be true")
    if do_train and not train_input:
        raise TrainingError("do_train needs input files")
    eval_input = eval_input or train_input
    if do_eval and not eval_input:
        raise TrainingError("do_eval needs input files")
    for wanted, data in ((do_train, train_input), (do_eval, eval_input)):
        if wanted:
            list_input_files(data)  # fail on missing inputs before building anything
    trainer = PretrainingTrainer(bert_config, options, strategy=strategy,
                                 optimizer_factory=optimizer_factory,
                                 train_batch_transform=train_batch_transform,
                                 progress_stream=progress_stream)
    if do_eval:  # fail now rather than after hours of training
        trainer.check_batch_size("eval_batch_size", options.eval_batch_size)
    result = {"global_step": trainer.step, "preempted": False, "best_step": None,
              "resumed_from": trainer.resumed_from, "eval_results": None}
    if do_train:
        done = trainer.train(train_input, eval_input if options.eval_every_n_steps else None)
        result.update(global_step=done.global_step, preempted=done.preempted,
                      best_step=done.best_step)
    if do_eval and not result["preempted"]:
        result["eval_results"] = trainer.evaluate(eval_input)
        result["preempted"] = result["eval_results"] is None
    return result
