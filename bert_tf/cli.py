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

from bert_tf.checkpoints.google import CheckpointError
from bert_tf.config import ConfigError
from bert_tf.text.vocab import VocabError

# Errors that describe bad input rather than a bug: shown without a traceback.
USER_ERRORS = (ConfigError, CheckpointError, VocabError, FileNotFoundError, ValueError)


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


def load_model_files(init_checkpoint: str | None, bert_config_file: str | None,
                     vocab_file: str | None, max_seq_length: int | None = None,
                     do_lower_case: bool | None = None):
    """(BertConfig, Vocab) for a script: `--bert_config_file`/`--vocab_file` if given, else the
    bert_config.json / vocab.txt beside `--init_checkpoint`. Errors name the flag; a
    `do_lower_case` that disagrees with the vocab or a known model name is warned about."""
    from bert_tf.checkpoints.google import resolve_checkpoint
    from bert_tf.config import BertConfig
    from bert_tf.text.vocab import check_do_lower_case, load_vocab

    beside = os.path.dirname(resolve_checkpoint(init_checkpoint)) if init_checkpoint else None
    config_file = bert_config_file or (beside and os.path.join(beside, "bert_config.json"))
    vocab_file = vocab_file or (beside and os.path.join(beside, "vocab.txt"))
    if not config_file:
        raise ValueError("--bert_config_file is required (or --init_checkpoint with a "
                         "bert_config.json beside it)")
    if not vocab_file:
        raise ValueError("--vocab_file is required (or --init_checkpoint with a vocab.txt "
                         "beside it)")
    config = BertConfig.from_json_file(config_file)
    if max_seq_length is not None and max_seq_length > config.max_position_embeddings:
        raise ValueError(f"--max_seq_length={max_seq_length} exceeds the model's "
                         f"max_position_embeddings {config.max_position_embeddings}")
    vocab = load_vocab(vocab_file)
    if len(vocab) > config.vocab_size:
        raise ValueError(f"--vocab_file {vocab_file} has {len(vocab)} tokens but the model's "
                         f"vocab_size is {config.vocab_size}")
    if do_lower_case is not None:
        check_do_lower_case(vocab, do_lower_case, init_checkpoint=init_checkpoint)
    return config, vocab


def export_spec(task: str, init_checkpoint: str, bert_config_file: str | None,
                vocab_file: str | None, do_lower_case: bool, max_seq_length: int,
                labels: list[str] | None, **spec_kwargs):
    """The export tools' `ExportSpec` from their model flags: config and vocab as
    `load_model_files`, classifier labels from `--labels` or labels.txt beside the checkpoint."""
    from bert_tf.serving.export import ExportSpec, resolve_labels

    config, vocab = load_model_files(init_checkpoint, bert_config_file, vocab_file,
                                     max_seq_length, do_lower_case)
    if task == "classifier":
        labels = resolve_labels(init_checkpoint, labels)
    elif labels:
        raise ValueError(f"--labels applies to --task=classifier, not --task={task}")
    return ExportSpec(task, config, vocab, do_lower_case=do_lower_case,
                      max_seq_length=max_seq_length, labels=labels or [], **spec_kwargs)


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
