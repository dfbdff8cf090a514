"""Fine-tuning BERT on a sentence(-pair) classification or regression task (Google's
run_classifier), with the pretraining loop's machinery: one `strategy.run` custom loop for every
tf.distribute strategy, Google's optimizer and warmup schedule, CheckpointManager + resume,
SIGTERM → checkpoint and normal return, NaN/Inf stop, TensorBoard scalars, progress line, and a
Google TF1 checkpoint of the final weights (top-level `output_weights`/`output_bias`).

    >>> from bert_tf.data.glue import get_processor
    >>> from bert_tf.training.finetune import FinetuneOptions, run_finetuning
    >>> opts = FinetuneOptions(output_dir="out/mrpc", max_seq_length=128, train_batch_size=32,
    ...                        learning_rate=2e-5, num_train_epochs=3.0,
    ...                        init_checkpoint="uncased_L-12_H-768_A-12/bert_model.ckpt")
    >>> run_finetuning("mrpc", get_processor("mrpc"), "glue/MRPC", bert_config, vocab_file,
    ...                opts, do_train=True, do_eval=True, do_predict=True)  # doctest: +SKIP

Input pipeline: the examples' raw strings go into tf.data as (text_a, text_b, label, weight,
index); batches are tokenized and packed IN THE GRAPH by `BertPreprocessor`. A task is a pair
task when any of its examples has a text_b (a missing text_b is then the empty string).

Loss: softmax cross-entropy (classification, `num_classes = len(labels)`) or mean squared error
(regression: the processor's `is_regression`, one output); Google's mean over the global batch.
Each replica minimises Σ_replica loss / global_batch_size, so the SUM of the replicas' gradients
(the optimizer's all-reduce) is the global-batch gradient, clipped after the all-reduce.

Evaluation and prediction see every example exactly once: the example list is padded to a
multiple of the global batch with weight-0 copies (Google's PaddingInputExample) and every
replica all-gathers (index, weight, output), so the chief has all predictions in order.
Outputs in `output_dir`: `eval_results.txt` (eval_loss, glue_metrics, global_step),
`test_results.tsv` (class probabilities per line, tab-separated; regression: the score),
`<TASK>.tsv` (GLUE submission: `index<TAB>prediction` with label names),
`bert_model.ckpt` + `bert_config.json` (Google layout), TensorBoard `train/` and `eval/`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Mapping, Sequence, TextIO

import keras
import numpy as np
import tensorflow as tf

from bert_tf.config import BertConfig, as_config
from bert_tf.training.loop import (CHECKPOINT_NAME, EVAL_RESULTS_FILE, MIXED_PRECISION_POLICIES,
                                   NonFiniteLossError, TrainerBase, TrainingError, _check_writable,
                                   _format_duration, summary_scalar, write_eval_results)
from bert_tf.training.strategy import is_chief, is_multi_worker

logger = logging.getLogger("bert_tf")

TEST_RESULTS_FILE = "test_results.tsv"
SEEDS_SUMMARY_FILE = "eval_results.txt"
# GLUE leaderboard file names of the submission (`<TASK>.tsv`); other tasks use the upper-cased
# task name.
GLUE_SUBMISSION_NAMES = {
    "cola": "CoLA", "sst-2": "SST-2", "sst2": "SST-2", "mrpc": "MRPC", "sts-b": "STS-B",
    "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI-m", "mnli-m": "MNLI-m", "mnli-mm": "MNLI-mm",
    "mnli_mismatched": "MNLI-mm", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "ax": "AX",
    "diagnostic": "AX",
}


@dataclasses.dataclass
class FinetuneOptions:
    """Settings of a fine-tuning run (run_classifier.py's flags, without absl).

    Batch sizes are GLOBAL (over all replicas) and must divide evenly by the number of replicas.
    The number of training steps is int(num_train_examples / train_batch_size *
    num_train_epochs), with int(steps * warmup_proportion) warmup steps (Google's rule).
    """

    output_dir: str
    max_seq_length: int = 128
    do_lower_case: bool = True
    train_batch_size: int = 32
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    save_checkpoints_steps: int = 1000
    optimizer_type: str = "adamw"
    weight_decay_rate: float = 0.01
    clip_norm: float | None = 1.0
    mixed_precision: str = "float32"
    log_steps: int = 100
    steps_per_loop: int = 100
    seed: int | None = None
    keep_checkpoint_max: int = 5
    init_checkpoint: str | None = None
    handle_sigterm: bool = True

    def validate(self) -> None:
        for name in ("max_seq_length", "train_batch_size", "eval_batch_size",
                     "predict_batch_size", "save_checkpoints_steps", "log_steps",
                     "steps_per_loop", "keep_checkpoint_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise TrainingError(f"{name} must be a positive integer, got {value!r}")
        if not self.num_train_epochs > 0:
            raise TrainingError(f"num_train_epochs must be > 0, got {self.num_train_epochs!r}")
        if not 0.0 <= self.warmup_proportion <= 1.0:
            raise TrainingError(f"warmup_proportion must be in [0, 1], got "
                                f"{self.warmup_proportion!r}")
        if self.mixed_precision not in MIXED_PRECISION_POLICIES:
            raise TrainingError(f"mixed_precision must be one of "
                                f"{', '.join(MIXED_PRECISION_POLICIES)}, got "
                                f"{self.mixed_precision!r}")
        if not self.output_dir:
            raise TrainingError("output_dir is required")

    def train_steps(self, num_examples: int) -> tuple[int, int]:
        """(num_train_steps, num_warmup_steps) for `num_examples` training examples."""
        steps = int(num_examples / self.train_batch_size * self.num_train_epochs)
        if steps < 1:
            raise TrainingError(f"{num_examples} training example(s) at train_batch_size "
                                f"{self.train_batch_size} and num_train_epochs "
                                f"{self.num_train_epochs} make no training step")
        return steps, int(steps * self.warmup_proportion)


def submission_file_name(task_name: str) -> str:
    """`<TASK>.tsv` named as the GLUE leaderboard expects (CoLA.tsv, MNLI-m.tsv, ...)."""
    key = task_name.strip().lower()
    return GLUE_SUBMISSION_NAMES.get(key, task_name.strip().upper()) + ".tsv"


def task_metrics(task_name: str, predictions, labels, is_regression: bool) -> dict[str, float]:
    """`glue_metrics` for GLUE/XNLI tasks; for a user's own files (tsv/csv) accuracy (+ f1 for
    two labels), or pearson/spearmanr for regression."""
    from bert_tf.data import metrics

    try:
        out = metrics.glue_metrics(task_name, predictions, labels)
    except ValueError as e:
        if "unknown task name" not in str(e):
            raise
        if is_regression:
            r, rho = metrics.pearson(predictions, labels), metrics.spearman(predictions, labels)
            out = {"pearson": r, "spearmanr": rho, "corr": (r + rho) / 2.0}
        else:
            out = {"accuracy": metrics.accuracy(predictions, labels)}
    return {k: float(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- examples
def examples_to_arrays(examples: Sequence[Any], labels: Sequence[str] | None,
                       is_regression: bool, with_labels: bool = True) -> dict[str, np.ndarray]:
    """InputExamples → numpy columns text_a, text_b, label (int32 ids or float32 scores)."""
    label_map = {str(label): i for i, label in enumerate(labels or [])}
    text_a, text_b, values = [], [], []
    for ex in examples:
        text_a.append("" if ex.text_a is None else str(ex.text_a))
        text_b.append("" if ex.text_b is None else str(ex.text_b))
        if not with_labels:
            values.append(0)
        elif is_regression:
            try:
                values.append(float(ex.label))
            except (TypeError, ValueError):
                raise ValueError(f"example {ex.guid}: label {ex.label!r} is not a number "
                                 f"(regression task)") from None
        else:
            key = str(ex.label)
            if key not in label_map:
                raise ValueError(f"example {ex.guid}: label {ex.label!r} is not one of the "
                                 f"task's labels {list(label_map)}")
            values.append(label_map[key])
    return {"text_a": np.array(text_a, dtype=object), "text_b": np.array(text_b, dtype=object),
            "label": np.array(values, dtype=np.float32 if is_regression else np.int32)}


def has_pairs(examples: Sequence[Any]) -> bool:
    return any(getattr(ex, "text_b", None) is not None for ex in examples)


# ----------------------------------------------------------------------------- trainer
class ClassifierTrainer(TrainerBase):
    """Builds BertClassifier + optimizer + checkpoint under a strategy; trains, evaluates and
    predicts.

    Args:
      bert_config: BertConfig (or dict).
      vocab: vocab.txt path, Vocab or token list (for the in-graph BertPreprocessor).
      options: FinetuneOptions.
      labels: the task's label strings (ignored for regression).
      is_regression: one output, MSE loss.
      num_train_steps / num_warmup_steps: for the optimizer's schedule (from
        `options.train_steps(len(train_examples))`; any positive value when only evaluating).
      pair_inputs: pack (text_a, text_b) pairs instead of single texts.
      strategy: a tf.distribute strategy (default: the current one).

    The constructor restores the latest checkpoint of `output_dir` (resume), else loads
    `options.init_checkpoint` (a Google checkpoint: pretrained, the head newly initialised, or
    fine-tuned, the head loaded).
    """

    def __init__(self, bert_config: BertConfig | Mapping[str, Any], vocab, options: FinetuneOptions,
                 labels: Sequence[str] | None = None, is_regression: bool = False,
                 num_train_steps: int = 1, num_warmup_steps: int = 0, pair_inputs: bool = True,
                 strategy: tf.distribute.Strategy | None = None,
                 progress_stream: TextIO | None = None):
        from bert_tf.text import BertPreprocessor

        options.validate()
        self.config = as_config(bert_config)
        self.options = options
        self.is_regression = bool(is_regression)
        self.labels = [] if self.is_regression else [str(x) for x in (labels or [])]
        if not self.is_regression and len(self.labels) < 2:
            raise TrainingError(f"a classification task needs at least 2 labels, got "
                                f"{self.labels}")
        self.num_classes = 1 if self.is_regression else len(self.labels)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)
        self.pair_inputs = bool(pair_inputs)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.is_chief = is_chief(self.strategy)
        self.multi_worker = is_multi_worker(self.strategy)
        self.progress_stream = progress_stream if progress_stream is not None else sys.stdout
        if options.max_seq_length > self.config.max_position_embeddings:
            raise TrainingError(f"max_seq_length {options.max_seq_length} exceeds the model's "
                                f"max_position_embeddings {self.config.max_position_embeddings}")
        self._check_batch_size("train_batch_size", options.train_batch_size)
        self.preprocessor = BertPreprocessor(vocab, do_lower_case=options.do_lower_case,
                                             seq_length=options.max_seq_length,
                                             max_position_embeddings=
                                             self.config.max_position_embeddings)
        if len(self.preprocessor.vocab_tokens) > self.config.vocab_size:
            raise TrainingError(f"the vocab has {len(self.preprocessor.vocab_tokens)} tokens but "
                                f"the model's vocab_size is {self.config.vocab_size}")
        self.output_dir = os.fspath(options.output_dir)
        _check_writable(self.output_dir)
        if options.seed is not None:
            keras.utils.set_random_seed(options.seed)
        self._build()
        self.resumed_from = self._restore()
        self._train_fn = None
        self._predict_fn = None
        self._stop_requested = False
        self.history: list[dict[str, float]] = []

    def export_google_checkpoint(self) -> str | None:
        """The Google checkpoint + bert_config.json, plus vocab.txt and labels.txt (classification)
        beside it, so output_dir is a complete model directory for export/ and --init_checkpoint."""
        from bert_tf.checkpoints.google import LABELS_NAME, VOCAB_NAME

        path = super().export_google_checkpoint()
        if path is not None:
            files = {VOCAB_NAME: self.preprocessor.vocab_tokens}
            if not self.is_regression:
                files[LABELS_NAME] = self.labels
            for name, lines in files.items():
                with tf.io.gfile.GFile(os.path.join(self.output_dir, name), "w") as f:
                    f.write("".join(f"{line}\n" for line in lines))
        return path

    # -- setup -------------------------------------------------------------------------------

    def _build(self) -> None:
        from bert_tf.models.classifier import BertClassifier
        from bert_tf.training.optimization import create_optimizer

        opts = self.options
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(opts.mixed_precision)
        try:
            with self.strategy.scope():
                self.model = BertClassifier(self.config, num_classes=self.num_classes)
                inner = create_optimizer(opts.learning_rate, self.num_train_steps,
                                         self.num_warmup_steps,
                                         optimizer_type=opts.optimizer_type,
                                         weight_decay_rate=opts.weight_decay_rate,
                                         clip_norm=opts.clip_norm)
                inner.clip_after_all_reduce = True
                self.loss_scaling = opts.mixed_precision == "mixed_float16"
                self.optimizer = (keras.optimizers.LossScaleOptimizer(inner)
                                  if self.loss_scaling else inner)
                # As in loop.py: with loss scaling on several replicas the loop all-reduces the
                # gradients itself so every replica takes the same apply/skip branch.
                self._reduce_in_loop = self.loss_scaling and self.num_replicas > 1
                if self._reduce_in_loop:
                    inner._all_reduce_sum_gradients = list  # noqa: SLF001
                self.inner_optimizer = inner
                self.optimizer.build(self.model.trainable_variables)
                self.global_step = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="global_step",
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              step=self.global_step)
        if self.is_chief:
            directory = self.output_dir
        else:
            task = self.strategy.cluster_resolver.task_id
            directory = os.path.join(self.output_dir, f".worker_{task}_tmp")
        self._checkpoint_dir = directory
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=self.options.keep_checkpoint_max,
            checkpoint_name=CHECKPOINT_NAME)

    def _restore(self) -> int | None:
        latest = tf.train.latest_checkpoint(self.output_dir)
        if latest:
            try:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as e:
                message = getattr(e, "message", None) or str(e)
                raise TrainingError(
                    f"cannot resume from {latest}: it does not match this model/optimizer "
                    f"(another bert_config or task? use a new output_dir): "
                    f"{message.splitlines()[0][:500]}") from None
            step = int(self.global_step.numpy())
            if self.is_chief:
                print(f"Resumed from checkpoint {latest} at step {step}",
                      file=self.progress_stream, flush=True)
            return step
        if self.options.init_checkpoint:
            from bert_tf.checkpoints import load_google_checkpoint

            report = load_google_checkpoint(self.model, self.options.init_checkpoint,
                                            strict=True, optional_groups=("classifier",))
            self.init_report = report
            logger.info("initialised from Google checkpoint %s", self.options.init_checkpoint)
        return None


    # -- datasets ------------------------------------------------------------------------
    def _features(self, text_a, text_b):
        if self.pair_inputs:
            return self.preprocessor((text_a, text_b))
        return self.preprocessor(text_a)

    def _train_dataset(self, columns):
        opts = self.options
        n = len(columns["label"])

        def dataset_fn(input_context):
            batch = input_context.get_per_replica_batch_size(opts.train_batch_size)
            ds = tf.data.Dataset.from_tensor_slices(
                (columns["text_a"].astype(str), columns["text_b"].astype(str),
                 columns["label"]))
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            ds = ds.repeat().shuffle(min(n, 100000), seed=opts.seed)
            ds = ds.batch(batch, drop_remainder=True)
            ds = ds.map(lambda a, b, y: (self._features(a, b), y),
                        num_parallel_calls=tf.data.AUTOTUNE)
            return ds.prefetch(tf.data.AUTOTUNE)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def _inference_dataset(self, columns, global_batch):
        """Every example once, padded with weight-0 copies to a multiple of the global batch."""
        n = len(columns["label"])
        padded = max(1, math.ceil(n / global_batch)) * global_batch
        take = np.arange(padded) % max(n, 1)
        weight = (np.arange(padded) < n).astype(np.float32)
        index = np.arange(padded, dtype=np.int64)
        data = (columns["text_a"][take].astype(str), columns["text_b"][take].astype(str),
                columns["label"][take], weight, index)

        def dataset_fn(input_context):
            batch = input_context.get_per_replica_batch_size(global_batch)
            ds = tf.data.Dataset.from_tensor_slices(data)
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            ds = ds.batch(batch, drop_remainder=True)
            ds = ds.map(lambda a, b, y, w, i: (self._features(a, b), y, w, i),
                        num_parallel_calls=tf.data.AUTOTUNE)
            return ds.prefetch(tf.data.AUTOTUNE)

        return self.strategy.distribute_datasets_from_function(dataset_fn), padded // global_batch

    # -- losses --------------------------------------------------------------------------
    def per_example_loss(self, logits, labels):
        """Cross-entropy of the label id, or squared error of the score (float32 [B])."""
        logits = tf.cast(logits, tf.float32)
        if self.is_regression:
            return tf.square(logits[:, 0] - tf.cast(labels, tf.float32))
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        return -tf.gather(log_probs, tf.cast(labels, tf.int32), batch_dims=1)

    def _correct(self, logits, labels):
        if self.is_regression:
            return tf.zeros_like(logits[:, 0], tf.float32)
        return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                tf.cast(labels, tf.int32)), tf.float32)

    # -- step functions ------------------------------------------------------------------
    def _make_train_fn(self):
        strategy, model, optimizer = self.strategy, self.model, self.optimizer
        global_batch = float(self.options.train_batch_size)
        reduce_in_loop = self._reduce_in_loop

        def replica_step(features, labels):
            ctx = tf.distribute.get_replica_context()
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                logits = model(features, training=True)
                nll = self.per_example_loss(logits, labels)
                objective = tf.reduce_sum(nll) / global_batch
                scaled = optimizer.scale_loss(objective)
            grads = tape.gradient(scaled, variables)
            grads = [tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(grads, variables)]
            if reduce_in_loop:
                grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            optimizer.apply_gradients(zip(grads, variables))
            sums = tf.stack([tf.reduce_sum(nll), tf.reduce_sum(self._correct(logits, labels)),
                             tf.cast(tf.shape(nll)[0], tf.float32)])
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, sums)

        @tf.function
        def train_steps(iterator, num_steps):
            stats = tf.zeros([3], tf.float32)
            last_loss = tf.constant(0.0)
            done = tf.constant(0, tf.int64)
            finite = tf.constant(True)
            for _ in tf.range(num_steps):
                features, labels = next(iterator)
                sums = strategy.experimental_local_results(
                    strategy.run(replica_step, args=(features, labels)))[0]
                loss = sums[0] / sums[2]
                self.global_step.assign_add(1)
                done += 1
                stats += sums
                last_loss = loss
                if not tf.math.is_finite(loss):
                    finite = tf.constant(False)
                    break
            return {"stats": stats, "last_loss": last_loss, "steps": done, "finite": finite}

        return train_steps

    def _make_predict_fn(self):
        strategy, model = self.strategy, self.model

        def replica_step(features, labels, weights, index):
            ctx = tf.distribute.get_replica_context()
            logits = tf.cast(model(features, training=False), tf.float32)
            loss = self.per_example_loss(logits, labels)
            return [ctx.all_gather(t, axis=0) for t in (logits, loss, weights, index)]

        @tf.function
        def predict_step(iterator):
            features, labels, weights, index = next(iterator)
            outputs = strategy.run(replica_step, args=(features, labels, weights, index))
            return [strategy.experimental_local_results(t)[0] for t in outputs]

        return predict_step

    # -- checkpoints ---------------------------------------------------------------------




    # -- training ------------------------------------------------------------------------
    def train(self, train_examples: Sequence[Any]) -> dict[str, Any]:
        """Trains to `num_train_steps` (resuming where the checkpoint left off); returns
        {"global_step", "preempted"}."""
        opts = self.options
        total, start = self.num_train_steps, self.step
        if start >= total:
            logger.info("already at step %d of %d: nothing to train", start, total)
            self.export_google_checkpoint()
            return {"global_step": start, "preempted": False}
        columns = examples_to_arrays(train_examples, self.labels, self.is_regression)
        iterator = iter(self._train_dataset(columns))
        if self._train_fn is None:
            self._train_fn = self._make_train_fn()
        writer = (tf.summary.create_file_writer(os.path.join(self.output_dir, "train"))
                  if self.is_chief else tf.summary.create_noop_writer())
        installed = None
        if opts.handle_sigterm and threading.current_thread() is threading.main_thread():
            installed = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._stop_requested = False
        preempted = False
        last_saved = start if self.resumed_from == start else None
        interval = {"stats": np.zeros(3), "steps": 0, "time": 0.0}
        if self.is_chief:
            print(f"***** Running training *****  {len(columns['label'])} examples, batch "
                  f"{opts.train_batch_size}, steps {start}..{total} "
                  f"(warmup {self.num_warmup_steps}) on {self.num_replicas} replica(s)",
                  file=self.progress_stream, flush=True)
        try:
            step = start
            while step < total:
                to_log = opts.log_steps - step % opts.log_steps
                to_save = opts.save_checkpoints_steps - step % opts.save_checkpoints_steps
                n = min(opts.steps_per_loop, to_log, to_save, total - step)
                t0 = time.perf_counter()
                out = {k: v.numpy() for k, v in
                       self._train_fn(iterator, tf.constant(n, tf.int64)).items()}
                elapsed = time.perf_counter() - t0
                step = self.step
                if not bool(out["finite"]):
                    last = tf.train.latest_checkpoint(self.output_dir)
                    raise NonFiniteLossError(
                        f"loss is {float(out['last_loss'])} at step {step}: training stopped "
                        f"and this state was not saved; the last good checkpoint is "
                        f"{last or '(none)'}. Lower --learning_rate or check the data", step)
                interval["stats"] += out["stats"]
                interval["steps"] += int(out["steps"])
                interval["time"] += elapsed
                if step % opts.log_steps == 0 or step >= total:
                    self._log_progress(writer, step, total, interval)
                    interval = {"stats": np.zeros(3), "steps": 0, "time": 0.0}
                if step % opts.save_checkpoints_steps == 0:
                    self.save_checkpoint()
                    last_saved = step
                if self._stop_agreed():
                    if last_saved != step:
                        self.save_checkpoint()
                        last_saved = step
                    preempted = True
                    if self.is_chief:
                        print(f"Stopped by SIGTERM at step {step}; checkpoint saved",
                              file=self.progress_stream, flush=True)
                    break
            if not preempted:
                if last_saved != step:
                    self.save_checkpoint()
                self.export_google_checkpoint()
        finally:
            if installed is not None:
                signal.signal(signal.SIGTERM, installed)
            writer.flush()
        return {"global_step": self.step, "preempted": preempted}

    def _log_progress(self, writer, step, total, interval) -> None:
        s = interval["stats"]
        count = max(float(s[2]), 1.0)
        loss = float(s[0]) / count
        metrics = {"loss": loss}
        if not self.is_regression:
            metrics["accuracy"] = float(s[1]) / count
        seconds = max(interval["time"], 1e-9)
        metrics["examples_per_second"] = float(s[2]) / seconds
        metrics["learning_rate"] = self._learning_rate()
        with writer.as_default():
            for name, value in metrics.items():
                summary_scalar(name, value, step)
        writer.flush()
        self.history.append({"step": step, **metrics})
        if self.is_chief:
            eta = (total - step) * seconds / max(interval["steps"], 1)
            acc = f"  accuracy {metrics['accuracy']:.4f}" if "accuracy" in metrics else ""
            print(f"step {step}/{total}  loss {loss:.4f}{acc}  lr {metrics['learning_rate']:.3g}"
                  f"  {metrics['examples_per_second']:.1f} examples/s  "
                  f"ETA {_format_duration(eta)}", file=self.progress_stream, flush=True)


    # -- inference -----------------------------------------------------------------------
    def predict_outputs(self, examples: Sequence[Any], batch_size: int,
                        with_labels: bool = False) -> dict[str, np.ndarray]:
        """Runs the model on every example once: {"logits" [N, C] float32, "loss" [N]}."""
        self._check_batch_size("batch size", batch_size)
        columns = examples_to_arrays(examples, self.labels, self.is_regression,
                                     with_labels=with_labels)
        if not len(columns["label"]):
            raise TrainingError("no examples to evaluate or predict")
        dataset, num_batches = self._inference_dataset(columns, batch_size)
        if self._predict_fn is None:
            self._predict_fn = self._make_predict_fn()
        iterator = iter(dataset)
        logits, losses, indices = [], [], []
        for _ in range(num_batches):
            lg, ls, w, idx = (t.numpy() for t in self._predict_fn(iterator))
            keep = w > 0
            logits.append(lg[keep])
            losses.append(ls[keep])
            indices.append(idx[keep])
        order = np.argsort(np.concatenate(indices), kind="stable")
        return {"logits": np.concatenate(logits)[order], "loss": np.concatenate(losses)[order],
                "labels": columns["label"]}

    def evaluate(self, task_name: str, examples: Sequence[Any],
                 write_results: bool = True) -> dict[str, float]:
        """eval_loss, the task's glue_metrics and global_step; written to eval_results.txt."""
        out = self.predict_outputs(examples, self.options.eval_batch_size, with_labels=True)
        if self.is_regression:
            predictions = out["logits"][:, 0]
        else:
            predictions = np.argmax(out["logits"], axis=-1)
        results = task_metrics(task_name, predictions, out["labels"], self.is_regression)
        results["eval_loss"] = float(np.mean(out["loss"])) if len(out["loss"]) else 0.0
        results["global_step"] = self.step
        if self.is_chief:
            writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "eval"))
            with writer.as_default():
                for key, value in results.items():
                    if key != "global_step":
                        summary_scalar(key, value, self.step)
            writer.flush()
            if write_results:
                write_eval_results(os.path.join(self.output_dir, EVAL_RESULTS_FILE), results)
            print("***** Eval results *****", file=self.progress_stream)
            for key in sorted(results):
                print(f"  {key} = {results[key]}", file=self.progress_stream)
            self.progress_stream.flush()
        return results

    def predict(self, task_name: str, examples: Sequence[Any]) -> dict[str, str]:
        """Writes test_results.tsv (probabilities, or the regression score, per line) and the
        GLUE submission `<TASK>.tsv`; returns their paths."""
        out = self.predict_outputs(examples, self.options.predict_batch_size)
        results_path = os.path.join(self.output_dir, TEST_RESULTS_FILE)
        submission_path = os.path.join(self.output_dir, submission_file_name(task_name))
        if not self.is_chief:
            return {}
        logits = out["logits"].astype(np.float64)
        with tf.io.gfile.GFile(results_path, "w") as f:
            if self.is_regression:
                for row in logits:
                    f.write(f"{row[0]}\n")
            else:
                probs = np.exp(logits - logits.max(-1, keepdims=True))
                probs /= probs.sum(-1, keepdims=True)
                for row in probs:
                    f.write("\t".join(str(float(p)) for p in row) + "\n")
        with tf.io.gfile.GFile(submission_path, "w") as f:
            f.write("index\tprediction\n")
            for i, row in enumerate(logits):
                value = (f"{row[0]:.6f}" if self.is_regression
                         else self.labels[int(np.argmax(row))])
                f.write(f"{i}\t{value}\n")
        print(f"wrote {results_path} and {submission_path} ({len(logits)} examples)",
              file=self.progress_stream, flush=True)
        return {"test_results": results_path, "submission": submission_path}


# ----------------------------------------------------------------------------- driver
def run_finetuning(task_name: str, processor, data_dir: str,
                   bert_config: BertConfig | Mapping[str, Any], vocab, options: FinetuneOptions,
                   *, do_train: bool = True, do_eval: bool = False, do_predict: bool = False,
                   strategy: tf.distribute.Strategy | None = None,
                   progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Google's run_classifier main for one seed. Reads the processor's examples (all of them
    first, so a missing file fails before anything is built), then trains / evaluates /
    predicts. Returns {"global_step", "preempted", "eval_results" (or None), "files"}."""
    if not (do_train or do_eval or do_predict):
        raise TrainingError("at least one of do_train, do_eval or do_predict must be true")
    is_regression = bool(getattr(processor, "is_regression", False))
    train_examples = processor.get_train_examples(data_dir) if do_train else []
    labels = None
    if not is_regression:
        try:
            labels = processor.get_labels()
        except ValueError:  # a generic processor learns its labels from the training file
            processor.get_train_examples(data_dir)
            labels = processor.get_labels()
    eval_examples = processor.get_dev_examples(data_dir) if do_eval else []
    predict_examples = processor.get_test_examples(data_dir) if do_predict else []
    for wanted, split, examples in ((do_train, "training", train_examples),
                                    (do_eval, "dev (evaluation)", eval_examples),
                                    (do_predict, "test (prediction)", predict_examples)):
        if wanted and not examples:
            raise TrainingError(f"the {split} split in {data_dir} has no examples "
                                f"({type(processor).__name__})")
    num_train_steps, num_warmup_steps = (options.train_steps(len(train_examples))
                                         if do_train else (1, 0))
    pair = has_pairs(list(train_examples) + list(eval_examples) + list(predict_examples))
    trainer = ClassifierTrainer(bert_config, vocab, options, labels=labels,
                                is_regression=is_regression, num_train_steps=num_train_steps,
                                num_warmup_steps=num_warmup_steps, pair_inputs=pair,
                                strategy=strategy, progress_stream=progress_stream)
    if do_eval:
        trainer._check_batch_size("eval_batch_size", options.eval_batch_size)  # noqa: SLF001
    if do_predict:
        trainer._check_batch_size("predict_batch_size", options.predict_batch_size)  # noqa: SLF001
    result = {"global_step": trainer.step, "preempted": False, "eval_results": None,
              "files": {}, "trainer": trainer}
    if do_train:
        result.update(trainer.train(train_examples))
    if result["preempted"]:
        return result
    if do_eval:
        result["eval_results"] = trainer.evaluate(task_name, eval_examples)
    if do_predict:
        result["files"] = trainer.predict(task_name, predict_examples)
    return result


def summarize_seeds(per_seed: Sequence[Mapping[str, float]], seeds: Sequence[int]
                    ) -> dict[str, float]:
    """Per-seed metrics (`seed_<s>/<metric>`) plus `<metric>_mean` and `<metric>_std` (sample
    standard deviation, ddof=1; 0 for one seed) over the seeds."""
    summary: dict[str, float] = {"num_seeds": len(per_seed)}
    keys = sorted({k for r in per_seed for k in r if k != "global_step"})
    for seed, r in zip(seeds, per_seed):
        for k in keys:
            if k in r:
                summary[f"seed_{seed}/{k}"] = r[k]
    for k in keys:
        values = np.array([r[k] for r in per_seed if k in r], dtype=np.float64)
        summary[f"{k}_mean"] = float(values.mean())
        summary[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary


def run_finetuning_seeds(task_name: str, processor, data_dir: str, bert_config, vocab,
                         options: FinetuneOptions, num_seeds: int, *,
                         strategy: tf.distribute.Strategy | None = None,
                         progress_stream: TextIO | None = None, **kwargs) -> dict[str, Any]:
    """Runs `num_seeds` fine-tunings (seeds options.seed or 0, +1, ...), each in
    output_dir/seed_<k>, and writes per-seed results with mean and std to
    output_dir/eval_results.txt. Returns {"seeds", "per_seed", "summary", "preempted"}."""
    if num_seeds < 1:
        raise TrainingError(f"num_seeds must be >= 1, got {num_seeds}")
    base = options.seed if options.seed is not None else 0
    seeds = [base + k for k in range(num_seeds)]
    stream = progress_stream if progress_stream is not None else sys.stdout
    per_seed, done = [], []
    for k, seed in enumerate(seeds):
        print(f"***** Seed {seed} ({k + 1}/{num_seeds}) *****", file=stream, flush=True)
        opts = dataclasses.replace(options, seed=seed,
                                   output_dir=os.path.join(options.output_dir, f"seed_{seed}"))
        result = run_finetuning(task_name, processor, data_dir, bert_config, vocab, opts,
                                strategy=strategy, progress_stream=progress_stream, **kwargs)
        if result["preempted"]:
            return {"seeds": done, "per_seed": per_seed, "summary": None, "preempted": True}
        if result["eval_results"] is not None:
            per_seed.append(result["eval_results"])
            done.append(seed)
    summary = summarize_seeds(per_seed, done) if per_seed else None
    if summary is not None and is_chief(strategy or tf.distribute.get_strategy()):
        write_eval_results(os.path.join(options.output_dir, SEEDS_SUMMARY_FILE), summary)
        print("***** Results over seeds *****", file=stream)
        for key in sorted(k for k in summary if "/" not in k):
            print(f"  {key} = {summary[key]}", file=stream)
        stream.flush()
    return {"seeds": done, "per_seed": per_seed, "summary": summary, "preempted": False}
