"""Fine-tuning BERT on SQuAD v1.1 / v2.0 (Google's run_squad main): the QuestionAnsweringTask
under the Trainer, plus the prediction files and the record of what a run was trained on.

    >>> from bert_tf.training.squad import QuestionAnsweringOptions, run_squad
    >>> opts = QuestionAnsweringOptions(output_dir="out/squad", train_batch_size=12,
    ...                                 learning_rate=3e-5, num_train_epochs=2.0,
    ...                                 init_checkpoint="uncased_L-12_H-768_A-12/bert_model.ckpt")
    >>> run_squad(bert_config, vocab_file, opts, train_file="train-v1.1.json",
    ...           predict_file="dev-v1.1.json")  # doctest: +SKIP

Outputs in `output_dir`: `predictions.json` ({question id: answer text}),
`nbest_predictions.json` (per question the n-best answers with probability, start_logit,
end_logit), for v2 `null_odds.json` ({question id: null score - best span score}),
`eval_results.txt` (exact_match, f1; v2: HasAns/NoAns splits and best thresholds) when the
predict file has answers, `bert_model.ckpt` + `bert_config.json` + `vocab.txt` (Google layout,
with `cls/squad/output_weights`/`output_bias`), `run_info.json`, TensorBoard `train/`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
from typing import Any, Mapping, TextIO

import tensorflow as tf

from bert_tf.config import BertConfig
from bert_tf.data import squad
from bert_tf.data.squad_postprocess import write_predictions
from bert_tf.training.finetune import check_run_record
from bert_tf.training.options import TrainingError
from bert_tf.training.tasks.question_answering import (QuestionAnsweringOptions,
                                                       QuestionAnsweringTask, SquadData)
from bert_tf.training.trainer import Trainer

logger = logging.getLogger("bert_tf")
__all__ = ["QuestionAnsweringOptions", "SquadTrainer", "read_squad_data", "run_squad"]


class SquadTrainer(Trainer):
    """A Trainer of a QuestionAnsweringTask; adds `predict(data)` (the prediction files).

    Args:
      task: the QuestionAnsweringTask (its options' settings are the run's).
      num_train_steps / num_warmup_steps: the optimizer's schedule (from
        `options.train_steps(len(train_examples))`; any positive value to only predict).
    """

    def __init__(self, task: QuestionAnsweringTask, num_train_steps: int = 1,
                 num_warmup_steps: int = 0, strategy: tf.distribute.Strategy | None = None,
                 progress_stream: TextIO | None = None):
        options = dataclasses.replace(task.options, num_train_steps=int(num_train_steps),
                                      num_warmup_steps=int(num_warmup_steps),
                                      eval_batch_size=task.options.predict_batch_size)
        super().__init__(task, options, strategy=strategy, progress_stream=progress_stream)

    def predict(self, data: SquadData) -> dict[str, Any] | None:
        """Answers every question of `data`: writes predictions.json, nbest_predictions.json,
        (v2) null_odds.json and, when `data` has gold answers, eval_results.txt. Returns
        {"files", "eval_results"}, or None when SIGTERM stopped it."""
        if data.has_answers:
            metrics = self.evaluate(data)
            if metrics is None:
                return None
        else:
            metrics = None
            self.check_batch_size("predict_batch_size", self.options.eval_batch_size)
            outputs = self.infer(*self.task.eval_dataset(data, self.options.eval_batch_size))
            if outputs is None:
                self._say("Stopped by SIGTERM during prediction; no prediction files written")
                return None
            self.task.aggregate_eval(outputs)
        files = []
        if self.is_chief:
            files = write_predictions(self.output_dir, *self.task.last_predictions)
            self._say(f"wrote {', '.join(files)} ({len(data.examples)} questions, "
                      f"{len(data.features)} windows)")
        return {"files": files, "eval_results": metrics}

    def warn_if_head_untrained(self) -> None:
        """Predicting with a span head that was never trained gives meaningless answers."""
        report = self.init_report
        if self.resumed_from is None and (report is None or report.newly_initialized):
            self._say("WARNING: the span head (cls/squad/output_weights, output_bias) was never "
                      "trained: --init_checkpoint is not a run_squad checkpoint and "
                      "--output_dir holds no checkpoint (set --do_train, or pass a fine-tuned "
                      "checkpoint)")


def read_squad_data(task: QuestionAnsweringTask, path: str, is_training: bool) -> SquadData:
    """Reads a SQuAD JSON file and makes its features with the task's tokenizer and settings."""
    if not os.path.isfile(path):
        raise TrainingError(f"SQuAD file {path} does not exist")
    examples = squad.read_squad_examples(path, is_training,
                                         task.options.version_2_with_negative)
    if not examples:
        raise TrainingError(f"{path}: no usable SQuAD questions")
    return task.prepare(examples, is_training)


def run_record(train: SquadData, options: QuestionAnsweringOptions) -> dict:
    """What a training run is trained on (see `finetune.check_run_record`)."""
    digest = hashlib.sha256()
    for ex in train.examples:
        digest.update(json.dumps([ex.qas_id, ex.question_text, ex.context_text,
                                  ex.orig_answer_text, ex.start_position,
                                  ex.is_impossible]).encode("utf-8"))
    return {"task_name": "squad_v2" if options.version_2_with_negative else "squad",
            "num_train_examples": len(train.examples),
            "train_examples_sha256": digest.hexdigest(), "labels": [],
            **{k: getattr(options, k) for k in (
                "max_seq_length", "do_lower_case", "doc_stride", "max_query_length",
                "train_batch_size", "learning_rate", "num_train_epochs", "init_checkpoint",
                "gradient_accumulation_steps")}}


def run_squad(bert_config: BertConfig | Mapping[str, Any], vocab,
              options: QuestionAnsweringOptions, *, train_file: str | None = None,
              predict_file: str | None = None, strategy: tf.distribute.Strategy | None = None,
              progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Google's run_squad main: trains on `train_file` (if given; evaluating on `predict_file`
    every `eval_every_n_steps` if set), then answers `predict_file` (if given). Both files are
    read and turned into features before anything is built, so a bad file fails first.

    Returns {"global_step", "preempted", "eval_results" (or None), "files", "trainer"}.
    """
    if not (train_file or predict_file):
        raise TrainingError("give a train_file (do_train) or a predict_file (do_predict)")
    options.validate()
    stream = progress_stream if progress_stream is not None else sys.stdout
    task = QuestionAnsweringTask(bert_config, vocab, options)
    train = read_squad_data(task, train_file, True) if train_file else None
    predict = read_squad_data(task, predict_file, False) if predict_file else None
    steps = options.train_steps(len(train.examples)) if train else (1, 0)
    if train is not None:
        check_run_record(options.output_dir, run_record(train, options), stream)
        if options.eval_every_n_steps and (predict is None or not predict.has_answers):
            raise TrainingError("eval_every_n_steps evaluates on the predict file, which must "
                                "have answers")
    trainer = SquadTrainer(task, *steps, strategy=strategy, progress_stream=progress_stream)
    result = {"global_step": trainer.step, "preempted": False, "eval_results": None,
              "files": [], "trainer": trainer}
    if train is not None:
        done = trainer.train(train, predict if options.eval_every_n_steps else None)
        result.update(global_step=done.global_step, preempted=done.preempted)
    else:
        trainer.warn_if_head_untrained()
    if predict is not None and not result["preempted"]:
        out = trainer.predict(predict)
        if out is None:
            result["preempted"] = True
        else:
            result.update(files=out["files"], eval_results=out["eval_results"])
    return result
