"""Shared plumbing for the absl front-end scripts (the library itself never reads flags).

`define_*_flags()` define the flags the training scripts share (the scripts call them at import;
only `main` reads FLAGS). `run(main)` runs an absl `main` and turns the package's user-facing errors (bad files, configs,
checkpoints, flag values) into one clear line on stderr and exit status 2, instead of a traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from bert_tf.errors import InputError

# Errors that describe bad input rather than a bug: shown without a traceback.
# TODO(issue 12): drop bare ValueError once every expected error raises InputError.
USER_ERRORS = (InputError, FileNotFoundError, ValueError)


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


def run(main: Callable[[list[str]], None],
        user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """`absl.app.run(main)` with user errors (USER_ERRORS + the script's `user_errors`) reported
    as `<script>: error: <message>`."""
    from absl import app

    def guarded(argv):
        logging.getLogger("bert_tf").setLevel(logging.INFO)
        try:
            main(argv)
        except USER_ERRORS + tuple(user_errors) as e:
            print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
            sys.exit(2)

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
