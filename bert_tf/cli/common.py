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
