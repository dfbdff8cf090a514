"""Fine-tuning BERT for named-entity recognition on CoNLL files (run_ner.py's driver): the
TokenClassificationTask under the Trainer, plus the CoNLL prediction files.

    >>> from bert_tf.training.ner import run_ner
    >>> from bert_tf.training.tasks.token_classification import TokenClassificationOptions
    >>> opts = TokenClassificationOptions(output_dir="out/ner", max_seq_length=128,
    ...     init_checkpoint="cased_L-12_H-768_A-12/bert_model.ckpt", do_lower_case=False)
    >>> run_ner(config, vocab, opts, train_file="train.txt", eval_file="valid.txt",
    ...         predict_file="test.txt")  # doctest: +SKIP

Outputs in `output_dir`: `eval_results.txt` (Google's `key = value`: eval_f1, eval_precision,
eval_recall (entity level, micro, conlleval's rules), eval_f1_<TYPE>, eval_accuracy (token
accuracy), eval_loss, global_step, loss), `eval_predictions.txt` (`token gold predicted`) and
`test_predictions.txt` (`token predicted`) in the CoNLL format conlleval reads, and
`bert_model.ckpt` + `bert_config.json` + vocab.txt + labels.txt (Google layout).
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Sequence, TextIO

import tensorflow as tf

from bert_tf.data.conll import (ConllFile, check_known_tags, check_labels, labels_from,
                                read_conll, read_tokens, write_predictions)
from bert_tf.training.options import TrainingError
from bert_tf.training.tasks.token_classification import (TokenClassificationOptions,
                                                         TokenClassificationTask)
from bert_tf.training.trainer import Trainer

EVAL_PREDICTIONS_FILE = "eval_predictions.txt"
TEST_PREDICTIONS_FILE = "test_predictions.txt"


@dataclasses.dataclass
class NerFiles:
    """The CoNLL files of a run (None where not wanted), read and checked up front."""

    train: ConllFile | None
    eval: ConllFile | None
    predict: ConllFile | None
    labels: list[str]


def read_ner_files(train_file: str | None, eval_file: str | None, predict_file: str | None,
                   labels: Sequence[str] | None = None, tag_scheme: str | None = None) -> NerFiles:
    """Reads every wanted file before anything is built, so bad input fails at once.

    The labels are `labels` if given, else learned from the training file (`labels_from`); an
    evaluation file's tags must all be among them (the error names its file and line).
    """
    train = read_conll(train_file, tag_scheme) if train_file else None
    evaluation = read_conll(eval_file, tag_scheme) if eval_file else None
    predict = read_tokens(predict_file) if predict_file else None
    if labels:
        labels = check_labels(labels, "--labels")
    elif train is not None:
        labels = labels_from(train)
    else:
        raise TrainingError("the labels are unknown: give --labels, train (--do_train), or "
                            "use a fine-tuned checkpoint with labels.txt beside it")
    for conll in (train, evaluation):
        if conll is not None:
            check_known_tags(conll, labels)
    return NerFiles(train, evaluation, predict, list(labels))


def run_ner(bert_config, vocab, options: TokenClassificationOptions, *,
            train_file: str | None = None, eval_file: str | None = None,
            predict_file: str | None = None, labels: Sequence[str] | None = None,
            tag_scheme: str | None = None, strategy: tf.distribute.Strategy | None = None,
            progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Trains on `train_file` (if given), evaluates on `eval_file`, predicts `predict_file`.

    Returns {"global_step", "preempted", "eval_results" (or None), "files", "trainer",
    "labels"}.
    """
    if not (train_file or eval_file or predict_file):
        raise TrainingError("nothing to do: give a training, evaluation or prediction file")
    options.validate()
    files = read_ner_files(train_file, eval_file, predict_file, labels, tag_scheme)
    if options.eval_every_n_steps and files.eval is None:
        raise TrainingError("eval_every_n_steps evaluates on the evaluation file: set do_eval")
    task = TokenClassificationTask(bert_config, vocab, files.labels, options.max_seq_length,
                                   options.window_stride(), options.do_lower_case, options.seed,
                                   bucket_size=options.bucket_size)
    steps = (options.train_steps(len(task.features(files.train)))
             if files.train is not None else (1, 0))
    options = dataclasses.replace(options, num_train_steps=steps[0], num_warmup_steps=steps[1])
    trainer = Trainer(task, options, strategy=strategy, progress_stream=progress_stream)
    for wanted, name in ((files.eval, "eval_batch_size"), (files.predict, "predict_batch_size")):
        if wanted is not None:
            trainer.check_batch_size(name, getattr(options, name))
    result = {"global_step": trainer.step, "preempted": False, "eval_results": None,
              "files": {}, "trainer": trainer, "labels": files.labels}
    if files.train is not None:
        done = trainer.train(files.train, files.eval if options.eval_every_n_steps else None)
        result.update(global_step=done.global_step, preempted=done.preempted)
    elif trainer.resumed_from is None and (trainer.init_report is None
                                           or trainer.init_report.newly_initialized):
        _say(trainer, "WARNING: the token classification head was never trained (no fine-tuned "
                      "--init_checkpoint, no checkpoint in --output_dir): predictions are random")
    if not result["preempted"] and files.eval is not None:
        result["eval_results"] = trainer.evaluate(files.eval)
        result["preempted"] = result["eval_results"] is None
        if not result["preempted"]:
            result["files"]["eval_predictions"] = _write(
                trainer, EVAL_PREDICTIONS_FILE, files.eval, task.last_predictions, True)
    if not result["preempted"] and files.predict is not None:
        outputs = trainer.infer(*task.inference_dataset(files.predict,
                                                        options.predict_batch_size, False))
        if outputs is None:
            _say(trainer, "Stopped by SIGTERM during prediction; no prediction file written")
            result["preempted"] = True
        else:
            result["files"]["test_predictions"] = _write(
                trainer, TEST_PREDICTIONS_FILE, files.predict, task.predicted_tags(outputs),
                False)
    return result


def _write(trainer, name, conll, tags, with_gold) -> str:
    path = os.path.join(trainer.output_dir, name)
    if trainer.is_chief:
        write_predictions(path, conll.sentences, tags, with_gold=with_gold)
        _say(trainer, f"wrote {path} ({len(conll.sentences)} sentences)")
    return path


def _say(trainer, line: str) -> None:
    if trainer.is_chief:
        print(line, file=trainer.progress_stream or sys.stdout, flush=True)
