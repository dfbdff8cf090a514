"""What keeps a training run safe to stop and restart: SIGTERM, checkpoints, the best evaluation."""
from __future__ import annotations

import glob
import json
import logging
import os
import signal
import threading

import tensorflow as tf

from bert_tf.training.options import TrainingError

logger = logging.getLogger("bert_tf")

CHECKPOINT_NAME = "ckpt"
BEST_DIR = "best"
BEST_STATE_FILE = "best.json"
# A truncated, zero-byte, corrupted or missing checkpoint data file (tf's reader raises
# IndexError "Read less bytes than requested" for the first two).
DAMAGED_CHECKPOINT_ERRORS = (IndexError, tf.errors.DataLossError, tf.errors.OutOfRangeError,
                             tf.errors.NotFoundError)


class NonFiniteLossError(TrainingError):
    """The loss became NaN or Inf; training stopped without saving that state."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def _first_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return message.splitlines()[0][:500]


class SigtermWatch:
    """While active, SIGTERM sets `flag` (a tf.Variable) at once, even while the main thread is
    inside a compiled call: Python runs signal handlers only between bytecodes of the main
    thread, but its C-level handler writes the signal number to the wakeup fd immediately, and a
    watcher thread blocked on that fd sets the variable that the compiled loop reads every step.
    `stop_requested()` is for Python loops between compiled calls. Re-entrant (evaluation inside
    training); inactive off the main thread or when disabled."""

    def __init__(self, flag: tf.Variable, enabled: bool = True):
        self.flag = flag
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signalled = False

    def __enter__(self):
        if not self.enabled:
            return self
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous_handler = signal.signal(signal.SIGTERM, self._on_signal)
        self._previous_fd = signal.set_wakeup_fd(self._write)
        self._thread = threading.Thread(target=self._watch, name="sigterm-watch", daemon=True)
        self._thread.start()
        return self

    def _on_signal(self, signum, frame):  # noqa: ARG002
        # Only a Python attribute (for loops between compiled calls): the watcher thread sets the
        # variable; TensorFlow ops or logging here could deadlock on a lock the interrupted code
        # holds.
        self.signalled = True

    def _watch(self) -> None:
        while True:
            data = os.read(self._read, 512)
            if signal.SIGTERM in data:
                self.flag.assign(True)
            if not data or 0 in data:  # 0: __exit__'s sentinel (no signal has number 0)
                return

    def stop_requested(self) -> bool:
        return self.signalled or bool(self.flag.numpy())

    def __exit__(self, *exc):
        if not self.enabled:
            return False
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGTERM, self._previous_handler)
        os.write(self._write, b"\0")
        self._thread.join(timeout=10)
        os.close(self._read)
        os.close(self._write)
        return False


class CheckpointStore:
    """The trainer's checkpoints: (model, optimizer, step) as output_dir/ckpt-<step> for resume,
    and with keep_best_checkpoint_by / early_stopping_patience the best evaluation (model only,
    output_dir/best/, its metric and step in output_dir/best.json)."""

    def __init__(self, trainer):
        self.trainer = trainer
        opts = trainer.options
        self.checkpoint = tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer,
                                              step=trainer.global_step)
        self.directory = self._own_directory(trainer.output_dir)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                  max_to_keep=opts.keep_checkpoint_max,
                                                  checkpoint_name=CHECKPOINT_NAME)
        self.metric = opts.keep_best_checkpoint_by or (
            trainer.task.default_eval_metric if opts.early_stopping_patience else None)
        self.keep_best = bool(opts.keep_best_checkpoint_by)
        self.best = {"value": None, "step": None, "stale": 0}
        self._best_manager = None
        self._weights_step = None
        if self.metric:
            self._load_best_state()

    def _own_directory(self, directory: str) -> str:
        """Every worker must save (collectives); only the chief's copy is kept."""
        if self.trainer.is_chief:
            return directory
        task = self.trainer.strategy.cluster_resolver.task_id
        return os.path.join(self.trainer.output_dir, f".worker_{task}_tmp",
                            os.path.relpath(directory, self.trainer.output_dir))

    # -- resume ------------------------------------------------------------------------------
    def save(self) -> str | None:
        """Saves (model, optimizer, step) at the current step; returns the chief's path. A failed
        write (disk full, read-only) leaves no ckpt-N_temp behind and is one TrainingError."""
        step = self.trainer.step
        path = _save_cleanly(self.manager, self.directory, CHECKPOINT_NAME, step)
        if not self.trainer.is_chief:
            tf.io.gfile.rmtree(self.directory)
            return None
        logger.info("saved checkpoint %s", path)
        return path

    def restore(self) -> int | None:
        """Restores the newest intact checkpoint of output_dir; returns its step (None: none).
        A damaged newest checkpoint is reported and the next older one is tried."""
        candidates = list(reversed(self.manager.checkpoints))
        damaged = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except DAMAGED_CHECKPOINT_ERRORS as e:
                damaged.append(path)
                self._say(f"Checkpoint {path} is damaged ({_first_line(e)}); trying the next "
                          f"older one")
                continue
            except (AssertionError, ValueError, tf.errors.OpError) as e:
                raise TrainingError(
                    f"cannot resume from {path}: it does not match this model/optimizer "
                    f"(another bert_config, task or --optimizer? use a new output_dir): "
                    f"{_first_line(e)}") from None
            step = self.trainer.step
            if damaged:
                self._say(f"Falling back to the newest intact checkpoint {path}")
            self._say(f"Resumed from checkpoint {path} at step {step}")
            if self.trainer.options.init_checkpoint:
                logger.info("--init_checkpoint %s ignored: resuming from %s",
                            self.trainer.options.init_checkpoint, path)
            return step
        if damaged:
            raise TrainingError(f"every checkpoint in {self.trainer.output_dir} is damaged "
                                f"({', '.join(os.path.basename(p) for p in damaged)}): delete "
                                f"them to start over, or use a new output_dir")
        return None

    # -- best evaluation ---------------------------------------------------------------------
    def _best_path(self, name: str) -> str:
        return os.path.join(self.trainer.output_dir, name)

    def _load_best_state(self) -> None:
        path = self._best_path(BEST_STATE_FILE)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                state = json.load(f)
            if state.get("metric") == self.metric:
                self.best = {k: state[k] for k in ("value", "step", "stale")}

    @property
    def best_step(self) -> int | None:
        return self.best["step"]

    def consider(self, results) -> None:
        """Records one evaluation: a better `metric` (losses lower, others higher) becomes the
        best (its weights saved with keep_best); otherwise the evaluation counts as stale."""
        if not self.metric:
            return
        if self.metric not in results:
            raise TrainingError(f"keep_best_checkpoint_by / early stopping metric "
                                f"{self.metric!r} is not an evaluation metric of this task; "
                                f"choose one of {sorted(k for k in results if k != 'global_step')}")
        value, best = float(results[self.metric]), self.best["value"]
        if best is None or best_is_better(self.metric, value, best):
            self.best = {"value": value, "step": int(results["global_step"]), "stale": 0}
            if self.keep_best:
                self._save_best()
        else:
            self.best["stale"] += 1
        if self.trainer.is_chief:
            with tf.io.gfile.GFile(self._best_path(BEST_STATE_FILE), "w") as f:
                json.dump({"metric": self.metric, **self.best}, f)

    def _best_checkpoint(self):
        if self._best_manager is None:
            best = tf.train.Checkpoint(model=self.trainer.model)
            self._best_directory = self._own_directory(self._best_path(BEST_DIR))
            self._best_manager = tf.train.CheckpointManager(best, self._best_directory,
                                                            max_to_keep=1, checkpoint_name="best")
        return self._best_manager

    def _save_best(self) -> None:
        manager = self._best_checkpoint()
        _save_cleanly(manager, self._best_directory, "best", self.trainer.step)
        if not self.trainer.is_chief:
            tf.io.gfile.rmtree(self._best_directory)

    def patience_exhausted(self) -> bool:
        patience = self.trainer.options.early_stopping_patience
        return bool(patience) and self.best["stale"] >= patience

    def describe_best(self) -> str:
        if not self.metric or self.best["value"] is None:
            return ""
        return f"  (best {self.metric} {self.best['value']:.4f} at step {self.best['step']})"

    def load_best_weights(self) -> int:
        """With keep_best: puts the best evaluation's weights into the model and returns its
        step; otherwise returns the current step."""
        if not (self.keep_best and self.best["step"] is not None):
            return self.trainer.step
        manager = self._best_checkpoint()
        latest = manager.latest_checkpoint
        if latest is None:
            raise TrainingError(f"the best checkpoint of {self.trainer.output_dir} (step "
                                f"{self.best['step']}) is missing from "
                                f"{self._best_path(BEST_DIR)}")
        manager.checkpoint.restore(latest).assert_existing_objects_matched()
        self._weights_step = self.best["step"]
        self._say(f"Final Google checkpoint: the weights of step {self.best['step']} (best "
                  f"{self.metric} {self.best['value']:.4f})")
        return self._weights_step

    def weights_step(self) -> int:
        """The step whose weights the model holds (the best one after `load_best_weights`)."""
        return self.trainer.step if self._weights_step is None else self._weights_step

    def _say(self, line: str) -> None:
        logger.info(line)
        if self.trainer.is_chief:
            print(line, file=self.trainer.progress_stream, flush=True)


def best_is_better(metric: str, value: float, best: float) -> bool:
    """Losses (a name containing "loss") are better lower; every other metric higher."""
    return value < best if "loss" in metric else value > best


def _save_cleanly(manager, directory: str, name: str, step: int) -> str:
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
        for leftover in glob.glob(os.path.join(directory, f"{name}-{step}_temp*")) + glob.glob(
                os.path.join(directory, f"{name}-{step}.*tempstate*")):
            if os.path.isdir(leftover):
                tf.io.gfile.rmtree(leftover)
            else:
                os.remove(leftover)
        raise TrainingError(f"cannot write checkpoint {os.path.join(directory, name)}-{step}: "
                            f"{_first_line(e)}") from None
