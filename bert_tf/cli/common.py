"""Shared plumbing of the commands (the library itself never reads flags).

`define_*_flags()` define the flag groups several commands share (called at import; only `main`
reads FLAGS). `run(main)` runs an absl `main` and turns the errors a user can cause (bad files,
configs, checkpoints, flag values, an unwritable or full output path, SIGTERM) into one line on
stderr and exit status 2 (128 + the signal for SIGTERM/SIGINT) instead of a traceback.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Callable

from bert_tf.errors import InputError

# Errors that describe bad input rather than a bug: shown without a traceback. A bare ValueError
# is not one of them (a bug must keep its traceback): expected errors raise InputError.
USER_ERRORS = (InputError, FileNotFoundError)

# Exit status after SIGTERM / SIGINT, as a shell reports a process killed by the signal.
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_INTERRUPTED = 128 + signal.SIGINT


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so that `with` blocks unwind (temporary
    outputs are removed, see `bert_tf.io.atomic_output`) before the command exits. A
    BaseException, like KeyboardInterrupt, so that `except Exception` handlers let it pass."""


def _raise_terminated(signum, frame):
    del signum, frame
    raise Terminated()


def describe_os_error(e: OSError) -> str:
    """`<path>: <reason>` (both paths for a rename), or the error's text when it names none."""
    reason = e.strerror or str(e)
    if e.filename is None:
        return reason
    if e.filename2 is not None:
        return f"{e.filename} -> {e.filename2}: {reason}"
    return f"{e.filename}: {reason}"


def _tf_io_errors() -> tuple[type[BaseException], ...]:
    """tf.io.gfile's errors for files that cannot be read or written (only if TensorFlow is
    already loaded: a command that never imported it cannot raise them)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return ()
    e = tf.errors
    return (e.NotFoundError, e.PermissionDeniedError, e.AlreadyExistsError,
            e.ResourceExhaustedError, e.FailedPreconditionError)


def report_error(e: BaseException) -> int | None:
    """The one line a command prints for an error it expects, and the exit status; None for a
    bug (which keeps its traceback)."""
    if isinstance(e, Terminated):
        return _fail("terminated by SIGTERM; partial outputs were removed", EXIT_TERMINATED)
    if isinstance(e, KeyboardInterrupt):
        return _fail("interrupted; partial outputs were removed", EXIT_INTERRUPTED)
    if isinstance(e, OSError) and e.filename is not None:  # from the OS: name path and reason
        return _fail(describe_os_error(e))
    if isinstance(e, USER_ERRORS):
        return _fail(str(e))
    if isinstance(e, OSError):
        return _fail(describe_os_error(e))
    if isinstance(e, _tf_io_errors()):
        return _fail(str(getattr(e, "message", e)).splitlines()[0])
    return None


def _fail(message: str, status: int = 2) -> int:
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr, flush=True)
    return status


class ConciseFormatter(logging.Formatter):
    """`HH:MM:SS message` for INFO, `HH:MM:SS WARNING: message` above: what a user reads, without
    absl's thread id and source line (still there with --verbosity=debug)."""

    def __init__(self):
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            time, _, message = text.partition(" ")
            text = f"{time} {record.levelname}: {message}"
        return text


# Packages whose INFO lines (SavedModel signature renames, saver sharding, fingerprints, ...) are
# their internals: hidden by default, shown with --verbosity=debug; their warnings always show.
_LIBRARY_DIRS = tuple(f"{os.sep}{name}{os.sep}" for name in ("tensorflow", "keras", "tf_keras"))


def drop_library_info(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop) for an INFO-or-lower record logged from TensorFlow or Keras
    code (through absl.logging or the `tensorflow` logger)."""
    return record.levelno >= logging.WARNING or not any(
        part in (record.pathname or "") for part in _LIBRARY_DIRS)


def use_concise_log_format() -> None:
    """absl's handler prints ConciseFormatter lines, and TensorFlow's INFO lines are dropped,
    unless debug output was asked for."""
    from absl import logging as absl_logging

    from bert_tf.cli import startup

    if not startup.is_debug(sys.argv):
        handler = absl_logging.get_absl_handler()
        handler.setFormatter(ConciseFormatter())
        handler.addFilter(drop_library_info)
        logging.getLogger("tensorflow").setLevel(logging.WARNING)


def define_distribution_flags() -> None:
    """The tf.distribute and precision flags shared by run_pretraining.py and run_classifier.py."""
    from absl import flags

    flags.DEFINE_enum("distribution_strategy", "one_device",
                      ["one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                      "tf.distribute strategy (multi_worker_mirrored reads TF_CONFIG).")
    flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (--distribution_strategy=tpu).")
    flags.DEFINE_integer("num_gpus", 0, "GPUs for mirrored (0: all visible).")
    flags.DEFINE_enum("mixed_precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                      "Compute dtype policy (mixed_float16 uses dynamic loss scaling).")


def define_loop_flags() -> None:
    """Logging and checkpoint-retention flags of the training loops."""
    from absl import flags

    flags.DEFINE_integer("log_steps", 100, "Progress line and summaries every this many steps.")
    flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept in output_dir.")


def define_model_flags(init_checkpoint_help: str) -> None:
    """The model flags of the export tools: checkpoint, config, vocab, casing, sequence length
    and classifier labels (files default to those beside the checkpoint)."""
    from absl import flags

    flags.DEFINE_string("init_checkpoint", None, init_checkpoint_help)
    flags.DEFINE_string("bert_config_file", None,
                        "bert_config.json (default: beside the checkpoint).")
    flags.DEFINE_string("vocab_file", None, "vocab.txt (default: beside the checkpoint).")
    flags.DEFINE_bool("do_lower_case", True, "Lower-case input (True for uncased models).")
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length after WordPiece (truncate/pad).")
    flags.DEFINE_list("labels", None, "classifier: label names in id order (default: labels.txt "
                      "beside the checkpoint; none for a regression head).")


def define_question_answering_flags() -> None:
    """Google's run_squad question/answer flags, shared by run_squad.py and the export tool
    (each script defines its own --doc_stride: the export tool's also serves token_classifier)."""
    from absl import flags

    flags.DEFINE_integer("max_query_length", 64, "question_answering: questions are cut to "
                         "this many WordPiece tokens.")
    flags.DEFINE_integer("max_answer_length", 30, "question_answering: longest answer, in "
                         "WordPiece tokens.")
    flags.DEFINE_bool("version_2_with_negative", False, "question_answering: SQuAD v2.0, "
                      "questions may have no answer.")
    flags.DEFINE_float("null_score_diff_threshold", 0.0, "question_answering (v2): answer "
                       "nothing when null score - best span score exceeds this.")


def question_answering_kwargs(flag_values) -> dict:
    """The flags of `define_question_answering_flags` as keyword arguments (ExportSpec)."""
    return {name: getattr(flag_values, name) for name in (
        "max_query_length", "max_answer_length", "version_2_with_negative",
        "null_score_diff_threshold")}


def run(main: Callable[[list[str]], None],
        user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """`absl.app.run(main)` for a command: user errors (USER_ERRORS + the command's
    `user_errors`), OSErrors (named path and reason) and SIGTERM / Ctrl-C are reported as one
    line `<script>: error: <message>` with exit status 2 (128 + signal for the signals)."""
    from absl import app

    def guarded(argv):
        logging.getLogger("bert_tf").setLevel(logging.INFO)
        use_concise_log_format()
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            main(argv)
        except tuple(user_errors) as e:
            sys.exit(_fail(str(e)))
        except BaseException as e:  # noqa: BLE001 - re-raised below unless expected
            if isinstance(e, SystemExit):
                raise
            status = report_error(e)
            if status is None:
                raise
            sys.exit(status)
        finally:
            signal.signal(signal.SIGTERM, previous)

    app.run(guarded)


# Trainer flags shared by run_pretraining.py and run_classifier.py (TrainerOptions fields).
TRAINER_FLAGS = ("gradient_accumulation_steps", "jit_compile", "eval_every_n_steps",
                 "keep_best_checkpoint_by", "early_stopping_patience")


def define_trainer_flags() -> None:
    """The Trainer's features every training script has (read back with `trainer_flag_values`)."""
    from absl import flags

    flags.DEFINE_integer("gradient_accumulation_steps", 1,
                         "Micro-batches of train_batch_size summed per optimizer step.")
    flags.DEFINE_bool("jit_compile", False,
                      "XLA-compile the forward/backward pass (GPU/TPU/one device; not with "
                      "mirrored over CPUs).")
    flags.DEFINE_integer("iterations_per_loop", 100,
                         "Training steps inside one compiled loop (Google's TPU meaning); "
                         "SIGTERM is still honoured after the current step.")
    flags.DEFINE_integer("eval_every_n_steps", 0,
                         "Evaluate every this many steps during training (0: only at the end).")
    flags.DEFINE_string("keep_best_checkpoint_by", None,
                        "Export the weights of the evaluation with the best value of this "
                        "metric (e.g. accuracy, eval_loss; losses are minimised) as the final "
                        "Google checkpoint. Needs --eval_every_n_steps.")
    flags.DEFINE_integer("early_stopping_patience", 0,
                         "Stop after this many evaluations without improvement of "
                         "--keep_best_checkpoint_by (or the task's loss); 0: off.")


def trainer_flag_values() -> dict:
    """TrainerOptions keyword arguments from the flags of `define_trainer_flags`."""
    from absl import flags

    values = {name: flags.FLAGS[name].value for name in TRAINER_FLAGS}
    values["steps_per_loop"] = flags.FLAGS.iterations_per_loop
    return values


def define_finetune_flags() -> None:
    """Google's run_classifier flags every fine-tuning script shares (run_classifier.py,
    run_ner.py): model files, do_train/do_eval/do_predict, batch sizes, schedule, output,
    distribution, loop and Trainer flags, seed, and the SavedModel export. Read back with
    `finetune_option_values` and `check_finetune_flags`."""
    from absl import flags

    flags.DEFINE_string("vocab_file", None, "vocab.txt (default: beside --init_checkpoint).")
    flags.DEFINE_string("bert_config_file", None,
                        "bert_config.json (default: beside --init_checkpoint).")
    flags.DEFINE_string("init_checkpoint", None,
                        "Google checkpoint: pretrained (new task head) or fine-tuned (head "
                        "loaded). Ignored when --output_dir has a checkpoint (resume).")
    flags.DEFINE_bool("do_lower_case", True, "Lower-case input (True for uncased models).")
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length after WordPiece.")
    flags.DEFINE_bool("do_train", False, "Train on the training file(s).")
    flags.DEFINE_bool("do_eval", False, "Evaluate on the dev file(s).")
    flags.DEFINE_bool("do_predict", False, "Predict the test file(s).")
    flags.DEFINE_integer("train_batch_size", 32, "Global training batch size.")
    flags.DEFINE_integer("eval_batch_size", 8, "Global evaluation batch size.")
    flags.DEFINE_integer("predict_batch_size", 8, "Global prediction batch size.")
    flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate (Adam with weight decay).")
    flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs.")
    flags.DEFINE_float("warmup_proportion", 0.1,
                       "Fraction of the training steps of linear warmup.")
    flags.DEFINE_string("output_dir", None, "Checkpoints, summaries and results go here.")
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every this many steps.")
    define_distribution_flags()
    define_loop_flags()
    define_trainer_flags()
    define_bucket_flag()
    flags.DEFINE_integer("seed", None, "Random seed (head initialisation, shuffling, dropout).")
    flags.DEFINE_string("export_dir", None, "After training, export the model as a TF Serving "
                        "SavedModel (strings in) to <export_dir>/<export_model_name>/<version>.")
    flags.DEFINE_string("export_model_name", None,
                        "Model name for --export_dir (default: the task).")


def define_bucket_flag() -> None:
    """--bucket_size of the fine-tuning scripts (run_classifier, run_ner, run_squad)."""
    from absl import flags

    flags.DEFINE_integer("bucket_size", 16, "Pad each training/evaluation batch only to a "
                         "multiple of this many tokens (training batches grouped by length, "
                         "evaluation sorted by length; same per-example outputs); 0: pad to "
                         "max_seq_length.")


# FinetuneOptions fields set from the flags of `define_finetune_flags`, under the same names.
FINETUNE_FLAGS = ("output_dir", "max_seq_length", "do_lower_case", "train_batch_size",
                  "eval_batch_size", "predict_batch_size", "learning_rate", "num_train_epochs",
                  "warmup_proportion", "save_checkpoints_steps", "mixed_precision", "log_steps",
                  "seed", "keep_checkpoint_max", "init_checkpoint", "bucket_size")


def finetune_option_values() -> dict:
    """FinetuneOptions keyword arguments from the flags of `define_finetune_flags`."""
    from absl import flags

    return {**{name: flags.FLAGS[name].value for name in FINETUNE_FLAGS},
            **trainer_flag_values()}


def check_finetune_flags(export_model_name: str) -> None:
    """The checks every fine-tuning script makes before building anything: some do_* flag, and
    an --export_dir that needs training and whose version directory can be written."""
    from absl import flags

    FLAGS = flags.FLAGS
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
        raise InputError("at least one of --do_train, --do_eval or --do_predict must be set")
    if FLAGS.export_model_name and not FLAGS.export_dir:
        raise InputError("--export_model_name names the model exported to --export_dir: set "
                         "--export_dir too")
    if FLAGS.export_dir:
        if not FLAGS.do_train:
            raise InputError("--export_dir exports the model this run trains: it needs "
                             "--do_train (export other checkpoints with "
                             "export/export_saved_model.py)")
        from bert_tf.serving.export import version_dir

        version_dir(FLAGS.export_dir, export_model_name)  # fails now, not after training


def finish_finetuning(result: dict, task: str, config, vocab, export_model_name: str,
                      **spec_kwargs) -> None:
    """The end every fine-tuning script shares: after a SIGTERM, how to resume; otherwise, with
    --export_dir, the checkpoint trained in --output_dir exported as a TF Serving SavedModel
    (`ExportSpec(task, config, vocab, ...)` with the run's --do_lower_case and --max_seq_length
    plus `spec_kwargs`) under `<export_dir>/<export_model_name>/<version>`."""
    from absl import flags, logging

    FLAGS = flags.FLAGS
    if result["preempted"]:
        logging.info("stopped by SIGTERM; rerun the same command to resume")
        return
    if FLAGS.export_dir:
        from bert_tf.serving.export import ExportSpec, export_from_checkpoint

        spec = ExportSpec(task, config, vocab, do_lower_case=FLAGS.do_lower_case,
                          max_seq_length=FLAGS.max_seq_length, **spec_kwargs)
        path = export_from_checkpoint(spec, FLAGS.output_dir, FLAGS.export_dir,
                                      export_model_name)
        logging.info("exported the %s model to %s", task, path)
    logging.info("done")
