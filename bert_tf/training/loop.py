"""BERT pretraining: one custom training loop for every tf.distribute strategy.

    >>> from bert_tf import BertConfig
    >>> from bert_tf.training.loop import PretrainingOptions, run_pretraining
    >>> from bert_tf.training.strategy import create_strategy
    >>> opts = PretrainingOptions(output_dir="out", max_seq_length=128, train_batch_size=32,
    ...                           num_train_steps=1000, num_warmup_steps=100)
    >>> run_pretraining(BertConfig.from_json_file("bert_config.json"), opts,
    ...                 train_input="data/*.tfrecord", eval_input="data/*.tfrecord",
    ...                 do_train=True, do_eval=True,
    ...                 strategy=create_strategy("mirrored"))  # doctest: +SKIP

Why a custom loop: Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy, so the same
`strategy.run` loop serves OneDevice, Mirrored, MultiWorkerMirrored and TPU strategies.

Loss across replicas (exactly one device at the same global batch). Google's loss is
    masked_lm_loss = Σ w·nll / (Σ w + 1e-5)     over the masked positions of the batch
    next_sentence_loss = Σ nll / batch_size
Each replica first all-reduces its Σ w and its example count (two scalars) and then minimises
    Σ_replica w·nll / (Σ_global w + 1e-5) + Σ_replica nsp_nll / global_batch_size,
so the SUM over replicas of these objectives is exactly the global-batch loss, and the SUM of
their gradients (what the optimizer's all-reduce computes) is exactly its gradient.

Gradient accumulation (`gradient_accumulation_steps` = k): the dataset yields k·b examples per
step; each replica splits its share into k micro-batches, runs forward/backward on one at a time
(memory of one micro-batch) and sums the gradients; the denominators above are those of the
whole k·b batch, so one step equals one step on a batch of k·b, exactly (up to float rounding).
`train_batch_size` is b, the global batch of one forward pass; a step consumes k·b examples.

Clipping: the gradients are all-reduced once, by the optimizer, and clipped by global norm AFTER
that all-reduce (`clip_after_all_reduce=True` on bert_tf's optimizers), so the norm is that of
the global-batch gradient, as on one device. Accumulated micro-batch gradients are summed
before the (single) apply, so clipping sees the k·b gradient too.

Mixed precision: "mixed_bfloat16" (no loss scaling) or "mixed_float16" (Keras'
`LossScaleOptimizer`, dynamic loss scaling: a step whose gradients overflow is skipped and the
scale halved). Keras' LossScaleOptimizer checks the gradients for overflow per replica, inside
a cond, before the optimizer's all-reduce: replicas could disagree, and the all-reduce inside
that cond desynchronises the replicas' collectives (measured: "Shape mismatch in the collective
instance"). So with loss scaling on several replicas the loop all-reduces the (scaled)
gradients itself and turns the optimizer's all-reduce into the identity: every replica sees the
same sum and takes the same branch. LayerNorm, softmax, logits and losses stay float32.

`jit_compile=True` compiles the forward/backward pass with XLA (the all-reduce and the update
stay outside). It does not work with MirroredStrategy over logical CPU devices (XLA would place
a variable on another device); use it on one device, GPUs or TPUs.

Checkpoints: `tf.train.CheckpointManager` of (model, optimizer, step) in `output_dir`
(ckpt-<step>) every `save_checkpoints_steps` and at the end; a rerun resumes from the latest
and stops at exactly `num_train_steps`. SIGTERM saves a checkpoint and returns normally
(`TrainResult.preempted`). A NaN/Inf loss stops training at that step with NonFiniteLossError;
nothing is saved, so the last checkpoint is the last good state. At the end the weights are
also written as a Google TF1 checkpoint (`output_dir/bert_model.ckpt` + `bert_config.json`).

TensorBoard: `output_dir/train` (loss, masked_lm_loss, masked_lm_accuracy, next_sentence_loss,
next_sentence_accuracy, learning_rate, examples_per_second) and `output_dir/eval`.
Evaluation writes Google's `eval_results.txt`.
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
import uuid
from typing import Any, Callable, Mapping, TextIO

import keras
import tensorflow as tf

from bert_tf.config import BertConfig, as_config
from bert_tf.data.pretraining_dataset import (diagnose_read_error, list_input_files,
                                              pretraining_dataset)
from bert_tf.errors import InputError
from bert_tf.training.strategy import is_chief, is_multi_worker

logger = logging.getLogger("bert_tf")

MIXED_PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
CHECKPOINT_NAME = "ckpt"
EVAL_RESULTS_FILE = "eval_results.txt"

# Per-replica sums returned by one step, in this order.
_STAT_NAMES = ("mlm_nll", "mlm_weight", "mlm_correct", "nsp_nll", "nsp_correct", "examples")


class TrainingError(InputError):
    """A training setup that cannot work (batch sizes, output_dir, options, checkpoints)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or Inf; training stopped without saving that state."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclasses.dataclass
class PretrainingOptions:
    """Settings of a pretraining run (the flags of run_pretraining.py, without absl).

    Batch sizes are GLOBAL (over all replicas and workers) and must divide evenly by the number
    of replicas in sync. `train_batch_size` is the batch of one forward pass; with
    `gradient_accumulation_steps` k a step (one optimizer update) uses k·train_batch_size
    examples. `num_train_steps`, `num_warmup_steps`, `save_checkpoints_steps` and `log_steps`
    count optimizer steps.
    """

    output_dir: str
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    train_batch_size: int = 32
    eval_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    save_checkpoints_steps: int = 1000
    max_eval_steps: int = 100
    optimizer_type: str = "adamw"
    weight_decay_rate: float = 0.01
    clip_norm: float | None = 1.0
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "float32"
    jit_compile: bool = False
    log_steps: int = 100
    steps_per_loop: int = 100
    seed: int | None = None
    keep_checkpoint_max: int = 5
    init_checkpoint: str | None = None
    handle_sigterm: bool = True

    def validate(self) -> None:
        positive = ("max_seq_length", "max_predictions_per_seq", "train_batch_size",
                    "eval_batch_size", "num_train_steps", "save_checkpoints_steps",
                    "max_eval_steps", "gradient_accumulation_steps", "log_steps",
                    "steps_per_loop", "keep_checkpoint_max")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise TrainingError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_warmup_steps, int) or self.num_warmup_steps < 0:
            raise TrainingError(f"num_warmup_steps must be >= 0, got {self.num_warmup_steps!r}")
        if self.num_warmup_steps > self.num_train_steps:
            raise TrainingError(f"num_warmup_steps ({self.num_warmup_steps}) must not exceed "
                                f"num_train_steps ({self.num_train_steps})")
        if self.mixed_precision not in MIXED_PRECISION_POLICIES:
            raise TrainingError(f"mixed_precision must be one of "
                                f"{', '.join(MIXED_PRECISION_POLICIES)}, got "
                                f"{self.mixed_precision!r}")
        if not self.output_dir:
            raise TrainingError("output_dir is required")


@dataclasses.dataclass
class TrainResult:
    """What `PretrainingTrainer.train` did."""

    global_step: int
    preempted: bool = False
    resumed_from: int | None = None


# ----------------------------------------------------------------------------- helpers
def loss_sums(features: Mapping[str, Any], outputs: Mapping[str, Any]) -> tf.Tensor:
    """Per-batch sums behind Google's losses and metrics, float32 [6] (see `_STAT_NAMES`):
    Σ w·nll, Σ w, Σ w·correct over masked positions; Σ nll, Σ correct, count over examples."""
    logits = tf.cast(outputs["masked_lm_logits"], tf.float32)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    ids = tf.cast(features["masked_lm_ids"], tf.int32)
    weights = tf.cast(features["masked_lm_weights"], tf.float32)
    nll = -tf.gather(log_probs, ids, batch_dims=2)
    correct = tf.cast(tf.equal(tf.argmax(log_probs, -1, output_type=tf.int32), ids), tf.float32)

    nsp_log_probs = tf.nn.log_softmax(tf.cast(outputs["next_sentence_logits"], tf.float32), -1)
    labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])
    nsp_nll = -tf.gather(nsp_log_probs, labels, batch_dims=1)
    nsp_correct = tf.cast(
        tf.equal(tf.argmax(nsp_log_probs, -1, output_type=tf.int32), labels), tf.float32)
    count = tf.cast(tf.shape(labels)[0], tf.float32)
    return tf.stack([tf.reduce_sum(weights * nll), tf.reduce_sum(weights),
                     tf.reduce_sum(weights * correct), tf.reduce_sum(nsp_nll),
                     tf.reduce_sum(nsp_correct), count])


def loss_from_sums(s) -> Any:
    """Google's total loss from (global) `loss_sums`."""
    return s[0] / (s[1] + 1e-5) + s[3] / s[5]


def metrics_from_sums(s, loss=None) -> dict[str, float]:
    """Google's eval metrics (tf.metrics weighted means) from sums accumulated over batches."""
    s = [float(x) for x in s]
    out = {
        "masked_lm_accuracy": s[2] / s[1] if s[1] else 0.0,
        "masked_lm_loss": s[0] / s[1] if s[1] else 0.0,
        "next_sentence_accuracy": s[4] / s[5] if s[5] else 0.0,
        "next_sentence_loss": s[3] / s[5] if s[5] else 0.0,
    }
    if loss is not None:
        out["loss"] = float(loss)
    return out


def write_eval_results(path: str, results: Mapping[str, Any]) -> None:
    """Google's eval_results.txt: sorted `key = value` lines."""
    with tf.io.gfile.GFile(path, "w") as f:
        for key in sorted(results):
            f.write(f"{key} = {results[key]}\n")


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


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _check_writable(directory: str) -> None:
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


def _is_data_error(error: Exception) -> bool:
    if isinstance(error, tf.errors.DataLossError):
        return True
    if isinstance(error, tf.errors.InvalidArgumentError):
        message = error.message or ""
        return any(k in message for k in ("serialized Example", "ParseExample", "Feature:",
                                          "TFRecord", "Key: "))
    return False


# ----------------------------------------------------------------------------- trainer
class TrainerBase:
    """What the pretraining and fine-tuning trainers share: checkpoint saving and export, the
    SIGTERM flag and its multi-worker agreement, batch-size checks, the step and learning rate.

    Subclasses set `strategy`, `num_replicas`, `multi_worker`, `is_chief`, `model`, `config`,
    `output_dir`, `manager`, `_checkpoint_dir`, `global_step` and `inner_optimizer`.
    """

    _stop_requested = False
    _agree_fn = None

    def _check_batch_size(self, name: str, value: int) -> None:
        if value % self.num_replicas:
            raise TrainingError(
                f"{name}={value} is not divisible by the {self.num_replicas} replicas in sync "
                f"(batch sizes are global and are split evenly over the replicas)")

    @property
    def step(self) -> int:
        return int(self.global_step.numpy())

    def save_checkpoint(self) -> str | None:
        """Saves (model, optimizer, step) at the current step; returns the chief's path."""
        step = self.step
        path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            tf.io.gfile.rmtree(self._checkpoint_dir)
            return None
        logger.info("saved checkpoint %s", path)
        return path

    def export_google_checkpoint(self) -> str | None:
        """Writes output_dir/bert_model.ckpt (Google's names) + bert_config.json (chief only)."""
        if not self.is_chief:
            return None
        from bert_tf.checkpoints import save_google_checkpoint

        path = save_google_checkpoint(self.model, os.path.join(self.output_dir, "bert_model.ckpt"),
                                      config=self.config, global_step=self.step)
        logger.info("wrote Google checkpoint %s", path)
        return path

    def _on_sigterm(self, signum, frame):  # noqa: ARG002
        # Only set a flag: logging here could deadlock on the logging lock (re-entrancy); the
        # loop reports it when it acts on the flag after the current steps.
        self._stop_requested = True

    def _stop_agreed(self) -> bool:
        """In multi-worker runs every worker must stop at the same step (collectives)."""
        if not self.multi_worker:
            return self._stop_requested
        if self._agree_fn is None:
            strategy = self.strategy

            @tf.function
            def agree(flag):
                def replica_fn():
                    local = tf.zeros([1]) + flag  # a tensor placed on this replica's device
                    return tf.distribute.get_replica_context().all_reduce(
                        tf.distribute.ReduceOp.SUM, local)
                return strategy.experimental_local_results(strategy.run(replica_fn))[0][0]

            self._agree_fn = agree
        flag = tf.constant(1.0 if self._stop_requested else 0.0)
        return float(self._agree_fn(flag)) > 0

    def _learning_rate(self) -> float:
        """The learning rate of the last step taken."""
        inner = self.inner_optimizer
        lr = getattr(inner, "_learning_rate", None)  # the schedule, or a variable
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            return float(lr(tf.maximum(inner.iterations - 1, 0)))
        return float(inner.learning_rate)


class PretrainingTrainer(TrainerBase):
    """Builds the pretrainer, optimizer and checkpoint under a strategy, and trains/evaluates.

    Args:
      bert_config: BertConfig (or dict) of the model.
      options: PretrainingOptions.
      strategy: a tf.distribute strategy (default: the current one, i.e. the default strategy).
      optimizer_factory: `() -> keras Optimizer`, called under the strategy scope (default:
        `bert_tf.training.optimization.create_optimizer` from the options). Wrapped in a
        LossScaleOptimizer for "mixed_float16".
      train_batch_transform: applied to every training batch dict in tf.data (e.g. dynamic
        masking).
      progress_stream: where the progress lines go (stdout); only the chief prints.

    The constructor restores the latest checkpoint of `output_dir` if there is one (resume),
    else loads `options.init_checkpoint` (a Google checkpoint, strict) if given.
    """

    def __init__(self, bert_config: BertConfig | Mapping[str, Any], options: PretrainingOptions,
                 strategy: tf.distribute.Strategy | None = None,
                 optimizer_factory: Callable[[], keras.optimizers.Optimizer] | None = None,
                 train_batch_transform: Callable | None = None,
                 progress_stream: TextIO | None = None):
        options.validate()
        self.config = as_config(bert_config)
        self.options = options
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.is_chief = is_chief(self.strategy)
        self.multi_worker = is_multi_worker(self.strategy)
        self.train_batch_transform = train_batch_transform
        self.progress_stream = progress_stream if progress_stream is not None else sys.stdout
        self._check_batch_size("train_batch_size", options.train_batch_size)
        if options.max_seq_length > self.config.max_position_embeddings:
            raise TrainingError(f"max_seq_length {options.max_seq_length} exceeds the model's "
                                f"max_position_embeddings {self.config.max_position_embeddings}")
        if options.jit_compile and isinstance(self.strategy, tf.distribute.MirroredStrategy):
            devices = self.strategy.extended.worker_devices
            if len(devices) > 1 and all("CPU" in d.upper() for d in devices):
                raise TrainingError("jit_compile=True does not work with MirroredStrategy over "
                                    "CPU devices; use one_device, GPUs or TPUs, or drop "
                                    "jit_compile")
        self.output_dir = os.fspath(options.output_dir)
        _check_writable(self.output_dir)

        if options.seed is not None:
            keras.utils.set_random_seed(options.seed)
        self._build(optimizer_factory)
        self.resumed_from = self._restore()
        self._train_fn = None
        self._eval_fn = None
        self._stop_requested = False
        self._agree_fn = None
        # One entry per progress line: step, loss, masked_lm_accuracy, ... (tests, notebooks).
        self.history: list[dict[str, float]] = []

    # -- setup -------------------------------------------------------------------------------

    def _build(self, optimizer_factory) -> None:
        opts = self.options
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(opts.mixed_precision)
        try:
            with self.strategy.scope():
                from bert_tf.models.pretrainer import BertPretrainer

                self.model = BertPretrainer(self.config)
                if optimizer_factory is None:
                    from bert_tf.training.optimization import create_optimizer

                    def optimizer_factory():
                        return create_optimizer(
                            opts.learning_rate, opts.num_train_steps, opts.num_warmup_steps,
                            optimizer_type=opts.optimizer_type,
                            weight_decay_rate=opts.weight_decay_rate, clip_norm=opts.clip_norm)
                inner = optimizer_factory()
                # Clip the all-reduced (global-batch) gradient, as one device would.
                if hasattr(inner, "clip_after_all_reduce"):
                    inner.clip_after_all_reduce = True
                elif self.num_replicas > 1 and (inner.global_clipnorm or inner.clipnorm):
                    logger.warning("the optimizer clips per replica before the all-reduce; "
                                   "results differ from one device when clipping is active")
                self.loss_scaling = opts.mixed_precision == "mixed_float16"
                self.optimizer = (keras.optimizers.LossScaleOptimizer(inner)
                                  if self.loss_scaling else inner)
                # Keras' LossScaleOptimizer decides apply/skip inside a cond, per replica, on
                # the gradients BEFORE the optimizer's all-reduce: replicas could disagree, and
                # a collective inside that cond desynchronises the replicas' collectives. With
                # loss scaling on several replicas the loop all-reduces the gradients itself
                # (every replica then sees the same sum) and the optimizer's own all-reduce
                # becomes the identity.
                self._reduce_in_loop = self.loss_scaling and self.num_replicas > 1
                if self._reduce_in_loop:
                    if not hasattr(inner, "_all_reduce_sum_gradients"):
                        raise TrainingError("mixed_float16 on several replicas needs a Keras "
                                            "TensorFlow-backend optimizer")
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
        else:  # every worker must save (collectives); only the chief's copy is kept
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
                    f"(another bert_config or --optimizer? use a new output_dir): "
                    f"{message.splitlines()[0][:500]}") from None
            step = int(self.global_step.numpy())
            logger.info("resumed from %s at step %d", latest, step)
            if self.is_chief:
                print(f"Resumed from checkpoint {latest} at step {step}",
                      file=self.progress_stream, flush=True)
            if self.options.init_checkpoint:
                logger.info("--init_checkpoint %s ignored: resuming from %s",
                            self.options.init_checkpoint, latest)
            return step
        if self.options.init_checkpoint:
            from bert_tf.checkpoints import load_google_checkpoint

            load_google_checkpoint(self.model, self.options.init_checkpoint, strict=True)
            logger.info("initialised from Google checkpoint %s", self.options.init_checkpoint)
        return None


    # -- datasets ------------------------------------------------------------------------
    def _distributed_dataset(self, input_patterns, global_batch_size, is_training,
                             batch_transform=None):
        opts = self.options

        def dataset_fn(input_context):
            return pretraining_dataset(
                input_patterns, global_batch_size, opts.max_seq_length,
                opts.max_predictions_per_seq, is_training=is_training,
                input_context=input_context, seed=opts.seed, batch_transform=batch_transform)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # -- step functions ------------------------------------------------------------------
    def _make_grad_fn(self):
        model, optimizer = self.model, self.optimizer
        k = self.options.gradient_accumulation_steps

        def micro_grads(features, weight_total, example_total):
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                outputs = model(features, training=True)
                sums = loss_sums(features, outputs)
                objective = sums[0] / (weight_total + 1e-5) + sums[3] / example_total
                scaled = optimizer.scale_loss(objective)
            grads = tape.gradient(scaled, variables)
            grads = [tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(grads, variables)]
            return grads, sums

        def grad_fn(features, weight_total, example_total):
            if k == 1:
                return micro_grads(features, weight_total, example_total)
            split = {name: tf.reshape(t, [k, -1] + t.shape[1:].as_list())
                     for name, t in features.items()}
            variables = model.trainable_variables
            grads0 = [tf.zeros(v.shape, v.dtype) for v in variables]
            sums0 = tf.zeros([len(_STAT_NAMES)], tf.float32)

            def body(i, grads, sums):
                micro = {name: t[i] for name, t in split.items()}
                g, s = micro_grads(micro, weight_total, example_total)
                return i + 1, [a + b for a, b in zip(grads, g)], sums + s

            _, grads, sums = tf.while_loop(lambda i, *_: i < k, body,
                                           (tf.constant(0), grads0, sums0))
            return grads, sums

        if self.options.jit_compile:
            return tf.function(grad_fn, jit_compile=True, reduce_retracing=True)
        return grad_fn

    def _make_train_fn(self):
        strategy, model, optimizer = self.strategy, self.model, self.optimizer
        grad_fn = self._make_grad_fn()
        reduce_in_loop = self._reduce_in_loop

        def replica_step(features):
            ctx = tf.distribute.get_replica_context()
            local = tf.stack([tf.reduce_sum(tf.cast(features["masked_lm_weights"], tf.float32)),
                              tf.cast(tf.shape(features["input_ids"])[0], tf.float32)])
            totals = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
            grads, sums = grad_fn(features, totals[0], totals[1])
            if reduce_in_loop:
                grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, sums)

        @tf.function
        def train_steps(iterator, num_steps):
            stats = tf.zeros([len(_STAT_NAMES)], tf.float32)
            loss_sum = tf.constant(0.0)
            last_loss = tf.constant(0.0)
            done = tf.constant(0, tf.int64)
            finite = tf.constant(True)
            for _ in tf.range(num_steps):
                per_replica = strategy.run(replica_step, args=(next(iterator),))
                sums = strategy.experimental_local_results(per_replica)[0]
                loss = loss_from_sums(sums)
                self.global_step.assign_add(1)
                done += 1
                stats += sums
                loss_sum += loss
                last_loss = loss
                if not tf.math.is_finite(loss):
                    finite = tf.constant(False)
                    break
            return {"stats": stats, "loss_sum": loss_sum, "last_loss": last_loss,
                    "steps": done, "finite": finite}

        return train_steps

    def _make_eval_fn(self):
        strategy, model = self.strategy, self.model

        def replica_step(features):
            outputs = model(features, training=False)
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, loss_sums(features, outputs))

        @tf.function
        def eval_steps(iterator, num_steps):
            stats = tf.zeros([len(_STAT_NAMES)], tf.float32)
            loss_sum = tf.constant(0.0)
            for _ in tf.range(num_steps):
                sums = strategy.experimental_local_results(
                    strategy.run(replica_step, args=(next(iterator),)))[0]
                stats += sums
                loss_sum += loss_from_sums(sums)
            return stats, loss_sum

        return eval_steps

    # -- checkpoints ---------------------------------------------------------------------


    # -- signals -------------------------------------------------------------------------


    # -- training ------------------------------------------------------------------------
    def train(self, input_patterns) -> TrainResult:
        """Trains until `num_train_steps` (resuming where the checkpoint left off)."""
        opts = self.options
        files = list_input_files(input_patterns)
        total = opts.num_train_steps
        start = self.step
        if start >= total:
            logger.info("already at step %d of %d: nothing to train", start, total)
            self.export_google_checkpoint()
            return TrainResult(start, resumed_from=self.resumed_from)

        global_batch = opts.train_batch_size * opts.gradient_accumulation_steps
        dataset = self._distributed_dataset(files, global_batch, is_training=True,
                                            batch_transform=self.train_batch_transform)
        iterator = iter(dataset)
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
        interval = {"stats": [0.0] * len(_STAT_NAMES), "loss": 0.0, "steps": 0,
                    "time": 0.0}
        logger.info("training from step %d to %d: %d example(s) per step on %d replica(s)",
                    start, total, global_batch, self.num_replicas)
        try:
            step = start
            while step < total:
                to_log = opts.log_steps - step % opts.log_steps
                to_save = opts.save_checkpoints_steps - step % opts.save_checkpoints_steps
                n = min(opts.steps_per_loop, to_log, to_save, total - step)
                t0 = time.perf_counter()
                try:
                    out = self._train_fn(iterator, tf.constant(n, tf.int64))
                    out = {k: v.numpy() for k, v in out.items()}
                except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
                    if _is_data_error(e):
                        raise diagnose_read_error(files, opts.max_seq_length,
                                                  opts.max_predictions_per_seq, e) from None
                    raise
                elapsed = time.perf_counter() - t0
                step = self.step
                if not bool(out["finite"]):
                    last = tf.train.latest_checkpoint(self.output_dir)
                    raise NonFiniteLossError(
                        f"loss is {float(out['last_loss'])} at step {step}: training stopped "
                        f"and this state was not saved; the last good checkpoint is "
                        f"{last or '(none)'}. Lower --learning_rate, check the input data, or "
                        f"use float32", step)
                interval["stats"] = [a + float(b) for a, b in zip(interval["stats"],
                                                                   out["stats"])]
                interval["loss"] += float(out["loss_sum"])
                interval["steps"] += int(out["steps"])
                interval["time"] += elapsed
                if step % opts.log_steps == 0 or step >= total:
                    self._log_progress(writer, step, total, global_batch, interval)
                    interval = {"stats": [0.0] * len(_STAT_NAMES), "loss": 0.0, "steps": 0,
                                "time": 0.0}
                if step % opts.save_checkpoints_steps == 0:
                    self.save_checkpoint()
                    last_saved = step
                if self._stop_agreed():
                    if last_saved != step:
                        self.save_checkpoint()
                        last_saved = step
                    preempted = True
                    logger.warning("stopped by SIGTERM at step %d (checkpoint saved)", step)
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
        return TrainResult(self.step, preempted=preempted, resumed_from=self.resumed_from)

    def _log_progress(self, writer, step, total, global_batch, interval) -> None:
        steps = max(interval["steps"], 1)
        metrics = metrics_from_sums(interval["stats"])
        loss = interval["loss"] / steps
        seconds = max(interval["time"], 1e-9)
        examples_per_second = interval["steps"] * global_batch / seconds
        lr = self._learning_rate()
        with writer.as_default():
            for name, value in (("loss", loss), ("learning_rate", lr),
                                ("examples_per_second", examples_per_second), *metrics.items()):
                summary_scalar(name, value, step)
        writer.flush()
        self.history.append({"step": step, "loss": loss, "learning_rate": lr,
                             "examples_per_second": examples_per_second, **metrics})
        if self.is_chief:
            eta = (total - step) * seconds / steps
            print(f"step {step}/{total}  loss {loss:.4f}  "
                  f"masked_lm_accuracy {metrics['masked_lm_accuracy']:.4f}  "
                  f"next_sentence_accuracy {metrics['next_sentence_accuracy']:.4f}  "
                  f"lr {lr:.3g}  {examples_per_second:.1f} examples/s  "
                  f"ETA {_format_duration(eta)}", file=self.progress_stream, flush=True)


    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, input_patterns, write_results: bool = True) -> dict[str, float]:
        """Google's evaluation over `max_eval_steps` batches of `eval_batch_size`.

        Returns (and writes to output_dir/eval_results.txt) masked_lm_accuracy, masked_lm_loss,
        next_sentence_accuracy, next_sentence_loss (weighted means over all batches, as
        tf.metrics), loss (mean of the per-batch losses) and global_step.
        """
        opts = self.options
        self._check_batch_size("eval_batch_size", opts.eval_batch_size)
        files = list_input_files(input_patterns)
        dataset = self._distributed_dataset(files, opts.eval_batch_size, is_training=False)
        if self._eval_fn is None:
            self._eval_fn = self._make_eval_fn()
        try:
            stats, loss_sum = self._eval_fn(iter(dataset),
                                            tf.constant(opts.max_eval_steps, tf.int64))
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            if _is_data_error(e):
                raise diagnose_read_error(files, opts.max_seq_length,
                                          opts.max_predictions_per_seq, e) from None
            raise
        results = metrics_from_sums(stats.numpy(), loss=float(loss_sum) / opts.max_eval_steps)
        results["global_step"] = self.step
        if self.is_chief:
            writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "eval"))
            with writer.as_default():
                for key, value in results.items():
                    if key != "global_step":
                        summary_scalar(key, value, self.step)
            writer.flush()
            if write_results:
                path = os.path.join(self.output_dir, EVAL_RESULTS_FILE)
                write_eval_results(path, results)
                logger.info("wrote %s", path)
            print("***** Eval results *****", file=self.progress_stream)
            for key in sorted(results):
                print(f"  {key} = {results[key]}", file=self.progress_stream)
            self.progress_stream.flush()
        return results


def run_pretraining(bert_config: BertConfig | Mapping[str, Any], options: PretrainingOptions,
                    *, train_input=None, eval_input=None, do_train: bool = True,
                    do_eval: bool = False, strategy: tf.distribute.Strategy | None = None,
                    optimizer_factory: Callable | None = None,
                    train_batch_transform: Callable | None = None,
                    progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Trains and/or evaluates (Google's run_pretraining main).

    Returns {"global_step", "preempted", "resumed_from", "eval_results" (or None)}. Evaluation
    is skipped after a SIGTERM stop.
    """
    if not (do_train or do_eval):
        raise TrainingError("at least one of do_train or do_eval must be true")
    if do_train and not train_input:
        raise TrainingError("do_train needs input files")
    if do_eval and not (eval_input or train_input):
        raise TrainingError("do_eval needs input files")
    # Fail on missing inputs before building anything.
    if do_train:
        list_input_files(train_input)
    if do_eval:
        list_input_files(eval_input or train_input)
    trainer = PretrainingTrainer(bert_config, options, strategy=strategy,
                                 optimizer_factory=optimizer_factory,
                                 train_batch_transform=train_batch_transform,
                                 progress_stream=progress_stream)
    if do_eval:  # fail now rather than after hours of training
        trainer._check_batch_size("eval_batch_size", options.eval_batch_size)  # noqa: SLF001
    result = {"global_step": trainer.step, "preempted": False,
              "resumed_from": trainer.resumed_from, "eval_results": None}
    if do_train:
        train_result = trainer.train(train_input)
        result.update(global_step=train_result.global_step, preempted=train_result.preempted)
    if do_eval and not result["preempted"]:
        result["eval_results"] = trainer.evaluate(eval_input or train_input)
    return result

