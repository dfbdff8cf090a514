"""One Trainer for every BERT task: the custom `strategy.run` loop, checkpoints and reporting.

A `Task` (bert_tf/training/task.py) says what differs between pretraining, classification and
the other tasks: the model, its datasets, the per-replica objective and the metrics. The Trainer
owns the rest, once (docs/training.md explains the split and how to add a task):

* strategy and replica checks; model, optimizer and `global_step` built under the scope;
* mixed precision: "mixed_bfloat16" (no loss scaling) or "mixed_float16" (Keras'
  LossScaleOptimizer). Keras checks the gradients for overflow per replica, inside a cond,
  before the optimizer's all-reduce: replicas could disagree, and a collective inside that cond
  desynchronises the replicas ("Shape mismatch in the collective instance"). With loss scaling
  on several replicas the loop therefore all-reduces the gradients itself and turns the
  optimizer's all-reduce into the identity: every replica takes the same apply/skip branch;
* global-batch normalisation: each replica all-reduces the task's normalisers (e.g. the number
  of examples, Σ masked_lm_weights) and minimises its share of the global-batch loss, so the SUM
  of the replicas' gradients (the optimizer's all-reduce) is the global-batch gradient, clipped
  after that all-reduce (`clip_after_all_reduce`), as on one device;
* gradient accumulation (k = `gradient_accumulation_steps`): a step reads k·train_batch_size
  examples, each replica runs forward/backward on k micro-batches (memory of one) and sums the
  gradients; the normalisers are those of the whole batch, so a step equals one step on the
  k-times larger batch. `jit_compile` XLA-compiles the forward/backward pass;
* the step loop: up to `steps_per_loop` steps (Google's iterations_per_loop) inside one compiled
  call, cut at log/save/eval boundaries; a NaN/Inf loss stops it at that step (NonFiniteLossError,
  that state is not saved);
* SIGTERM: the signal's wakeup fd wakes a watcher thread that sets a tf.Variable the compiled
  loop reads every step (a Python handler would only run after the whole call). The stop vote
  rides on the step's all-reduce, so every replica and worker stops at the same step. A checkpoint
  is saved and `train` returns normally (`preempted`); during evaluation it stops with a message;
* `tf.train.CheckpointManager` of (model, optimizer, step) as output_dir/ckpt-<step>; a rerun
  resumes from the newest intact checkpoint (a damaged one is reported and skipped) and stops at
  exactly `num_train_steps`; otherwise the task loads `init_checkpoint`;
* evaluation (after training, and every `eval_every_n_steps`): TensorBoard `eval/`, one line per
  evaluation, `eval_history.jsonl`, Google's `eval_results.txt`; `keep_best_checkpoint_by`
  keeps the best evaluation's weights in output_dir/best/ and exports them; early stopping after
  `early_stopping_patience` evaluations without improvement;
* progress line with ETA, TensorBoard `train/` scalars, and the final Google TF1 checkpoint
  (output_dir/bert_model.ckpt + bert_config.json + the task's files such as vocab.txt).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from typing import Any, Callable, TextIO

import keras
import numpy as np
import tensorflow as tf

from bert_tf.progress import Progress
from bert_tf.training import reporting
from bert_tf.training.options import TrainerOptions, TrainingError
from bert_tf.training.run_control import CheckpointStore, NonFiniteLossError, SigtermWatch
from bert_tf.training.strategy import is_chief, is_multi_worker

logger = logging.getLogger("bert_tf")

EVAL_RESULTS_FILE = reporting.EVAL_RESULTS_FILE


@dataclasses.dataclass
class TrainResult:
    """What `Trainer.train` did."""

    global_step: int
    preempted: bool = False
    resumed_from: int | None = None
    early_stopped: bool = False
    best_step: int | None = None


class Trainer:
    """Trains, evaluates and runs inference for one `Task` under a tf.distribute strategy.

    Args:
      task: the Task (model, datasets, objective, metrics).
      options: TrainerOptions (or a task's subclass of it).
      strategy: a tf.distribute strategy (default: the current one).
      optimizer_factory: `() -> keras Optimizer` called under the scope (default:
        `bert_tf.training.optimization.create_optimizer` from the options); wrapped in a
        LossScaleOptimizer for "mixed_float16".
      progress_stream: where progress lines go (stdout); only the chief prints.

    The constructor resumes from output_dir's newest intact checkpoint, else initialises the model
    from `options.init_checkpoint` through the task.
    """

    def __init__(self, task, options: TrainerOptions,
                 strategy: tf.distribute.Strategy | None = None,
                 optimizer_factory: Callable[[], keras.optimizers.Optimizer] | None = None,
                 progress_stream: TextIO | None = None):
        options.validate()
        self.task = task
        self.options = options
        self.config = task.config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.is_chief = is_chief(self.strategy)
        self.multi_worker = is_multi_worker(self.strategy)
        self.progress_stream = progress_stream if progress_stream is not None else sys.stdout
        self.check_batch_size("train_batch_size", options.train_batch_size)
        self._check_jit_compile()
        self.output_dir = os.fspath(options.output_dir)
        reporting.check_writable(self.output_dir)
        if options.seed is not None:
            keras.utils.set_random_seed(options.seed)
        self._build(optimizer_factory)
        self.store = CheckpointStore(self)
        self.init_report = None
        self.resumed_from = self.store.restore()
        if self.resumed_from is None and options.init_checkpoint:
            self.init_report = task.initialize(self.model, options.init_checkpoint)
            logger.info("initialised from Google checkpoint %s", options.init_checkpoint)
        self._train_fn = self._infer_fn = None
        self.history: list[dict[str, float]] = []  # one entry per progress line
        self.eval_history: list[dict[str, float]] = []  # one entry per evaluation
        self.preempted = False

    # -- setup -------------------------------------------------------------------------------
    def check_batch_size(self, name: str, value: int) -> None:
        """Batch sizes are global: they must split evenly over the replicas."""
        if not isinstance(value, int) or value <= 0:
            raise TrainingError(f"{name} must be a positive integer, got {value!r}")
        if value % self.num_replicas:
            raise TrainingError(
                f"{name}={value} is not divisible by the {self.num_replicas} replicas in sync "
                f"(batch sizes are global and are split evenly over the replicas)")

    def _check_jit_compile(self) -> None:
        if self.options.jit_compile and isinstance(self.strategy, tf.distribute.MirroredStrategy):
            devices = self.strategy.extended.worker_devices
            if len(devices) > 1 and all("CPU" in d.upper() for d in devices):
                raise TrainingError("jit_compile=True does not work with MirroredStrategy over "
                                    "CPU devices; use one_device, GPUs or TPUs, or drop "
                                    "jit_compile")

    def _default_optimizer(self):
        from bert_tf.training.optimization import create_optimizer

        o = self.options
        return create_optimizer(o.learning_rate, o.num_train_steps, o.num_warmup_steps,
                                optimizer_type=o.optimizer_type,
                                weight_decay_rate=o.weight_decay_rate, clip_norm=o.clip_norm)

    def _build(self, optimizer_factory) -> None:
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.options.mixed_precision)
        try:
            with self.strategy.scope():
                self.model = self.task.build_model()
                inner = (optimizer_factory or self._default_optimizer)()
                if hasattr(inner, "clip_after_all_reduce"):
                    inner.clip_after_all_reduce = True
                elif self.num_replicas > 1 and (inner.global_clipnorm or inner.clipnorm):
                    logger.warning("the optimizer clips per replica before the all-reduce; "
                                   "results differ from one device when clipping is active")
                self.loss_scaling = self.options.mixed_precision == "mixed_float16"
                self.optimizer = (keras.optimizers.LossScaleOptimizer(inner)
                                  if self.loss_scaling else inner)
                self._reduce_in_loop = self.loss_scaling and self.num_replicas > 1
                if self._reduce_in_loop:  # see the module docstring (loss scaling)
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
        # Outside the scope: a plain host variable the SIGTERM watcher thread sets.
        self.stop_flag = tf.Variable(False, trainable=False, name="stop_requested")

    @property
    def step(self) -> int:
        return int(self.global_step.numpy())

    # -- step functions ----------------------------------------------------------------------
    def _make_grad_fn(self):
        model, optimizer, task = self.model, self.optimizer, self.task
        k = self.options.gradient_accumulation_steps

        def micro_grads(batch, totals):
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                objective, stats = task.objective(model, batch, totals)
                scaled = optimizer.scale_loss(objective)
            grads = tape.gradient(scaled, variables)
            grads = [tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(grads, variables)]
            return grads, tf.cast(stats, tf.float32)

        def grad_fn(batch, totals):
            if k == 1:
                return micro_grads(batch, totals)
            split = tf.nest.map_structure(
                lambda t: tf.reshape(t, [k, -1] + t.shape[1:].as_list()), batch)
            grads0 = [tf.zeros(v.shape, v.dtype) for v in model.trainable_variables]
            stats0 = tf.zeros([len(task.stat_names)], tf.float32)

            def body(i, grads, stats):
                g, s = micro_grads(tf.nest.map_structure(lambda t: t[i], split), totals)
                return i + 1, [a + b for a, b in zip(grads, g)], stats + s

            _, grads, stats = tf.while_loop(lambda i, *_: i < k, body,
                                            (tf.constant(0), grads0, stats0))
            return grads, stats

        if self.options.jit_compile:
            return tf.function(grad_fn, jit_compile=True, reduce_retracing=True)
        return grad_fn

    def _make_train_fn(self):
        strategy, model, optimizer, task = self.strategy, self.model, self.optimizer, self.task
        grad_fn, reduce_in_loop = self._make_grad_fn(), self._reduce_in_loop
        num_stats, single_worker = len(task.stat_names), not self.multi_worker

        def replica_step(batch, stop):
            ctx = tf.distribute.get_replica_context()
            totals = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                    tf.cast(task.normalizers(batch), tf.float32))
            grads, stats = grad_fn(batch, totals)
            if reduce_in_loop:
                grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            # The stop vote rides on the stats' all-reduce: all replicas see the same sum.
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.concat([stats, [stop]], 0))

        @tf.function
        def train_steps(iterator, num_steps):
            stats = tf.zeros([num_stats], tf.float32)
            loss_sum, last_loss = tf.constant(0.0), tf.constant(0.0)
            done = tf.constant(0, tf.int64)
            finite, stopped = tf.constant(True), tf.constant(False)
            for _ in tf.range(num_steps):
                if single_worker and self.stop_flag.read_value():
                    stopped = tf.constant(True)
                    break
                stop = tf.cast(self.stop_flag.read_value(), tf.float32)
                out = strategy.experimental_local_results(
                    strategy.run(replica_step, args=(next(iterator), stop)))[0]
                sums = out[:num_stats]
                loss = tf.cast(task.loss_from_stats(sums), tf.float32)
                self.global_step.assign_add(1)
                done += 1
                stats += sums
                loss_sum += loss
                last_loss = loss
                if not tf.math.is_finite(loss):
                    finite = tf.constant(False)
                    break
                if out[num_stats] > 0:
                    stopped = tf.constant(True)
                    break
            return {"stats": stats, "loss_sum": loss_sum, "last_loss": last_loss,
                    "steps": done, "finite": finite, "stopped": stopped}

        return train_steps

    def _make_infer_fn(self):
        strategy, model, task = self.strategy, self.model, self.task

        def replica_step(batch):
            ctx = tf.distribute.get_replica_context()
            outputs = task.eval_step(model, batch)
            return {name: ctx.all_gather(t, axis=0) for name, t in outputs.items()}

        @tf.function
        def infer_step(iterator):
            outputs = strategy.run(replica_step, args=(next(iterator),))
            return {name: strategy.experimental_local_results(t)[0]
                    for name, t in outputs.items()}

        return infer_step

    # -- training ----------------------------------------------------------------------------
    def train(self, train_data, eval_data=None) -> TrainResult:
        """Trains until `num_train_steps` (resuming where the checkpoint left off), evaluating on
        `eval_data` every `eval_every_n_steps` if set. Returns a TrainResult."""
        opts = self.options
        total, start = opts.num_train_steps, self.step
        if opts.eval_every_n_steps and eval_data is None:
            raise TrainingError("eval_every_n_steps needs evaluation data (e.g. --do_eval)")
        if start >= total:
            logger.info("already at step %d of %d: nothing to train", start, total)
            self.finish_training()
            return TrainResult(start, resumed_from=self.resumed_from,
                               best_step=self.store.best_step)
        global_batch = opts.train_batch_size * opts.gradient_accumulation_steps
        dataset_fn = self.task.train_dataset(train_data, global_batch)
        iterator = iter(self.strategy.distribute_datasets_from_function(dataset_fn))
        if self._train_fn is None:
            self._train_fn = self._make_train_fn()
        writer = self._writer("train")
        self.stop_flag.assign(False)
        self.preempted = False
        if self.is_chief:
            print(f"***** Running training *****  steps {start}..{total}, {global_batch} "
                  f"examples per step on {self.num_replicas} replica(s)",
                  file=self.progress_stream, flush=True)
        with SigtermWatch(self.stop_flag, opts.handle_sigterm):
            result = self._step_loop(iterator, train_data, eval_data, writer, start, total)
        writer.flush()
        return result

    def _step_loop(self, iterator, train_data, eval_data, writer, start, total) -> TrainResult:
        opts = self.options
        last_saved = start if self.resumed_from == start else None
        interval = reporting.Interval(len(self.task.stat_names))
        step, early_stopped = start, False
        # A progress line at least every bert_tf.progress.DEFAULT_INTERVAL (30 s) whatever
        # log_steps is, and one after the first step alone (its time includes tracing and input
        # start-up). Workers of a multi-worker run must cut the same chunks: no timing there.
        pace, seconds_per_step = Progress("train", total, bar=False), None
        while step < total:
            n = min(opts.steps_per_loop, total - step,
                    *(every - step % every for every in
                      (opts.log_steps, opts.save_checkpoints_steps, opts.eval_every_n_steps)
                      if every))
            if step == start:
                n = 1
            elif seconds_per_step and not self.multi_worker:
                n = min(n, max(1, int(pace.interval / seconds_per_step)))
            t0 = time.perf_counter()
            out = self._run_steps(iterator, n, train_data)
            first, step = step == start, self.step
            if not first:
                seconds_per_step = (time.perf_counter() - t0) / n
            if not bool(out["finite"]):
                raise NonFiniteLossError(
                    f"loss is {float(out['last_loss'])} at step {step}: training stopped and "
                    f"this state was not saved; the last good checkpoint is "
                    f"{tf.train.latest_checkpoint(self.output_dir) or '(none)'}. Lower "
                    f"--learning_rate, check the input data, or use float32", step)
            interval.add(out, time.perf_counter() - t0)
            if bool(out["stopped"]):
                if interval.steps:
                    self._log_progress(writer, step, total, interval)
                if last_saved != step:
                    self.store.save()
                self.preempted = True
                logger.warning("stopped by SIGTERM at step %d (checkpoint saved)", step)
                self._say(f"Stopped by SIGTERM at step {step}; checkpoint saved")
                return TrainResult(step, preempted=True, resumed_from=self.resumed_from)
            if (step % opts.log_steps == 0 or step >= total or first
                    or (pace.due() and not self.multi_worker)):
                self._log_progress(writer, step, total, interval, first)
                interval = reporting.Interval(len(self.task.stat_names))
                pace.mark()
            if step % opts.save_checkpoints_steps == 0 or step >= total:
                self.store.save()
                last_saved = step
            if opts.eval_every_n_steps and (step % opts.eval_every_n_steps == 0 or step >= total):
                if self.evaluate(eval_data, write_results=False, during_training=True) is None:
                    if last_saved != step:
                        self.store.save()
                    return TrainResult(step, preempted=True, resumed_from=self.resumed_from)
                if self.store.patience_exhausted():
                    early_stopped = True
                    self._say(f"Early stopping at step {step}: no better "
                              f"{self.store.metric} in {opts.early_stopping_patience} "
                              f"evaluation(s)")
                    break
        if last_saved != step:
            self.store.save()
        self.finish_training()
        return TrainResult(step, resumed_from=self.resumed_from, early_stopped=early_stopped,
                           best_step=self.store.best_step)

    def _run_steps(self, iterator, n, train_data) -> dict[str, np.ndarray]:
        try:
            out = self._train_fn(iterator, tf.constant(n, tf.int64))
            return {k: v.numpy() for k, v in out.items()}
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            diagnosed = self.task.diagnose_data_error(train_data, e)
            if diagnosed is not None:
                raise diagnosed from None
            raise

    def finish_training(self) -> None:
        """Exports the final (or, with keep_best_checkpoint_by, the best) weights as a Google
        checkpoint with the task's files beside it."""
        step = self.store.load_best_weights()
        self.export_google_checkpoint(step)

    def export_google_checkpoint(self, step: int | None = None) -> str | None:
        """output_dir/bert_model.ckpt (Google's names) + bert_config.json + the task's files
        (chief only); `step` is recorded as its global_step (default: the current step)."""
        if not self.is_chief:
            return None
        from bert_tf.checkpoints import save_google_checkpoint

        step = self.step if step is None else step
        path = save_google_checkpoint(self.model, os.path.join(self.output_dir, "bert_model.ckpt"),
                                      config=self.config, global_step=step)
        for name, lines in self.task.export_files().items():
            reporting.write_lines(os.path.join(self.output_dir, name), lines)
        logger.info("wrote Google checkpoint %s (weights of step %d)", path, step)
        return path

    def _log_progress(self, writer, step, total, interval, first: bool = False) -> None:
        metrics = interval.metrics(self.task, self.options.train_batch_size
                                   * self.options.gradient_accumulation_steps)
        metrics["learning_rate"] = reporting.learning_rate(self.inner_optimizer)
        reporting.write_scalars(writer, metrics, step)
        self.history.append({"step": step, **metrics})
        if self.is_chief:
            eta = (total - step) * interval.seconds / max(interval.steps, 1)
            shown = "".join(f"  {name} {metrics[name]:.4f}" for name in
                            self.task.progress_metrics if name in metrics)
            timing = (f"first step {interval.seconds:.1f}s" if first else
                      f"{metrics['examples_per_second']:.1f} examples/s  "
                      f"ETA {reporting.format_duration(eta)}")
            self._say(f"step {step}/{total}  loss {metrics['loss']:.4f}{shown}  "
                      f"lr {metrics['learning_rate']:.3g}  {timing}")

    # -- evaluation and inference ------------------------------------------------------------
    def infer(self, dataset_fn, num_batches: int,
              label: str = "inference") -> list[dict[str, np.ndarray]] | None:
        """Runs the task's `eval_step` on `num_batches` batches; every replica's outputs are
        gathered. Returns one dict of numpy arrays per batch, or None if SIGTERM stopped it.
        Work longer than a few seconds shows progress lines (`label` n/N batches, ETA)."""
        if self._infer_fn is None:
            self._infer_fn = self._make_infer_fn()
        iterator = iter(self.strategy.distribute_datasets_from_function(dataset_fn))
        outputs = []
        progress = Progress(label, num_batches, "batches", self.progress_stream, delay=5.0)
        with SigtermWatch(self.stop_flag, self.options.handle_sigterm) as watch:
            for i in range(num_batches):
                if watch.stop_requested():
                    self.preempted = True
                    progress.close()
                    return None
                outputs.append({k: v.numpy() for k, v in self._infer_fn(iterator).items()})
                if self.is_chief:
                    progress.update(i + 1)
        return outputs

    def evaluate(self, eval_data, write_results: bool = True,
                 during_training: bool = False) -> dict[str, float] | None:
        """The task's metrics on `eval_data` plus global_step; TensorBoard `eval/`, one line in
        eval_history.jsonl, and (write_results) Google's eval_results.txt. Returns None when
        SIGTERM stopped the evaluation (nothing is written then)."""
        self.check_batch_size("eval_batch_size", self.options.eval_batch_size)
        dataset_fn, num_batches = self.task.eval_dataset(eval_data, self.options.eval_batch_size)
        try:
            outputs = self.infer(dataset_fn, num_batches, "eval")
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            diagnosed = self.task.diagnose_data_error(eval_data, e)
            if diagnosed is not None:
                raise diagnosed from None
            raise
        if outputs is None:
            self._say(f"Stopped by SIGTERM during evaluation at step {self.step}; no "
                      f"evaluation results written")
            return None
        results = self.task.aggregate_eval(outputs)
        step = self.step if during_training else self.store.weights_step()
        results["global_step"] = step
        self.eval_history.append(dict(results))
        if during_training:
            self.store.consider(results)
        if self.is_chief:
            reporting.write_scalars(self._writer("eval"), results, step)
            reporting.append_json_line(os.path.join(self.output_dir, "eval_history.jsonl"),
                                       results)
            if write_results:
                reporting.write_eval_results(os.path.join(self.output_dir, EVAL_RESULTS_FILE),
                                             results)
            self._print_eval(results, during_training)
        return results

    def _print_eval(self, results, during_training) -> None:
        if during_training:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in sorted(results.items())
                              if k != "global_step")
            best = self.store.describe_best()
            self._say(f"eval at step {results['global_step']}: {shown}{best}")
            return
        print("***** Eval results *****", file=self.progress_stream)
        for key in sorted(results):
            print(f"  {key} = {results[key]}", file=self.progress_stream)
        self.progress_stream.flush()

    # -- helpers -----------------------------------------------------------------------------
    def _writer(self, name: str):
        if not self.is_chief:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(os.path.join(self.output_dir, name))

    def _say(self, line: str) -> None:
        if self.is_chief:
            print(line, file=self.progress_stream, flush=True)

