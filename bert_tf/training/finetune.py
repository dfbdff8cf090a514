"""Fine-tuning BERT on a sentence(-pair) classification or regression task (Google's
run_classifier main): the ClassificationTask under the Trainer, plus prediction files, the
record of what a run was trained on, and several seeds.

    >>> from bert_tf.data.glue import get_processor
    >>> from bert_tf.training.finetune import FinetuneOptions, run_finetuning
    >>> opts = FinetuneOptions(output_dir="out/mrpc", max_seq_length=128, train_batch_size=32,
    ...                        learning_rate=2e-5, num_train_epochs=3.0,
    ...                        init_checkpoint="uncased_L-12_H-768_A-12/bert_model.ckpt")
    >>> run_finetuning("mrpc", get_processor("mrpc"), "glue/MRPC", bert_config, vocab_file,
    ...                opts, do_train=True, do_eval=True, do_predict=True)  # doctest: +SKIP

Outputs in `output_dir`: `eval_results.txt` (eval_loss, the task's metrics, global_step),
`test_results.tsv` (class probabilities per line, tab-separated; regression: the score),
`<TASK>.tsv` (GLUE submission: `index<TAB>prediction` with label names), `bert_model.ckpt` +
`bert_config.json` + vocab.txt + labels.txt (Google layout), `run_info.json` (what the run was
trained on: a rerun on other data or settings is refused), TensorBoard `train/` and `eval/`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
from typing import Any, Mapping, Sequence, TextIO

import numpy as np
import tensorflow as tf

from bert_tf.checkpoints.google import RUN_INFO_NAME
from bert_tf.config import BertConfig
from bert_tf.data.glue import submission_label
from bert_tf.training.options import TrainingError
from bert_tf.training.reporting import write_eval_results, write_lines
from bert_tf.training.strategy import is_chief
from bert_tf.training.task import ordered_examples
from bert_tf.training.tasks.classification import (ClassificationTask, FinetuneOptions,
                                                   MultiLabelClassificationTask,
                                                   examples_to_arrays, has_pairs, task_metrics)
from bert_tf.training.trainer import Trainer

logger = logging.getLogger("bert_tf")

TEST_RESULTS_FILE = "test_results.tsv"
SEEDS_SUMMARY_FILE = "eval_results.txt"
RUN_INFO_FILE = RUN_INFO_NAME
# GLUE leaderboard file names of the submission (`<TASK>.tsv`); other tasks use the upper-cased
# task name.
GLUE_SUBMISSION_NAMES = {
    "cola": "CoLA", "sst-2": "SST-2", "sst2": "SST-2", "mrpc": "MRPC", "sts-b": "STS-B",
    "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI-m", "mnli-m": "MNLI-m", "mnli-mm": "MNLI-mm",
    "mnli_mismatched": "MNLI-mm", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "ax": "AX",
    "diagnostic": "AX",
}
__all__ = ["ClassifierTrainer", "FinetuneOptions", "run_finetuning", "run_finetuning_seeds",
           "submission_file_name", "summarize_seeds", "examples_to_arrays", "task_metrics"]


def submission_file_name(task_name: str) -> str:
    """`<TASK>.tsv` named as the GLUE leaderboard expects (CoLA.tsv, MNLI-m.tsv, ...)."""
    key = task_name.strip().lower()
    return GLUE_SUBMISSION_NAMES.get(key, task_name.strip().upper()) + ".tsv"


class ClassifierTrainer(Trainer):
    """A Trainer of a ClassificationTask; `train(examples, eval_examples=None)`,
    `evaluate(examples)`, `predict_outputs(...)`, `predict(task_name, examples)`.

    Args:
      bert_config, vocab, labels, is_regression, pair_inputs: see ClassificationTask.
      options: FinetuneOptions (its num_train_steps/num_warmup_steps are replaced by these).
      num_train_steps / num_warmup_steps: the optimizer's schedule (from
        `options.train_steps(len(train_examples))`; any positive value when only evaluating).
      task_name: picks the evaluation metrics.
    """

    def __init__(self, bert_config: BertConfig | Mapping[str, Any], vocab,
                 options: FinetuneOptions, labels: Sequence[str] | None = None,
                 is_regression: bool = False, num_train_steps: int = 1,
                 num_warmup_steps: int = 0, pair_inputs: bool = True, task_name: str = "tsv",
                 strategy: tf.distribute.Strategy | None = None,
                 progress_stream: TextIO | None = None):
        options = dataclasses.replace(options, num_train_steps=int(num_train_steps),
                                      num_warmup_steps=int(num_warmup_steps))
        options.validate()
        common = dict(task_name=task_name, max_seq_length=options.max_seq_length,
                      do_lower_case=options.do_lower_case, pair_inputs=pair_inputs,
                      seed=options.seed, bucket_size=options.bucket_size)
        if options.multi_label:
            if is_regression:
                raise TrainingError("multi_label and regression exclude each other")
            task = MultiLabelClassificationTask(bert_config, vocab, labels,
                                                threshold=options.label_threshold, **common)
        else:
            task = ClassificationTask(bert_config, vocab, labels, is_regression, **common)
        super().__init__(task, options, strategy=strategy, progress_stream=progress_stream)
        self.labels, self.is_regression = task.labels, task.is_regression
        self.num_classes, self.preprocessor = task.num_classes, task.preprocessor

    def predict_outputs(self, examples: Sequence[Any], batch_size: int,
                        with_labels: bool = False) -> dict[str, np.ndarray] | None:
        """Runs the model on every example once: {"logits" [N, C] float32, "loss" [N],
        "labels" [N]} (None if SIGTERM stopped it)."""
        self.check_batch_size("batch size", batch_size)
        outputs = self.infer(*self.task.inference_dataset(examples, batch_size, with_labels),
                             label="predict")
        if outputs is None:
            return None
        out = ordered_examples(outputs)
        return {"logits": out["logits"], "loss": out["loss"], "labels": out["label"]}

    def predict(self, task_name: str, examples: Sequence[Any]) -> dict[str, str]:
        """Writes test_results.tsv (probabilities, or the regression score, per line) and the
        GLUE submission `<TASK>.tsv`; returns their paths."""
        out = self.predict_outputs(examples, self.options.predict_batch_size)
        if out is None:
            self._say("Stopped by SIGTERM during prediction; no prediction files written")
            return {}
        results_path = os.path.join(self.output_dir, TEST_RESULTS_FILE)
        submission_path = os.path.join(self.output_dir, submission_file_name(task_name))
        if not self.is_chief:
            return {}
        logits = out["logits"].astype(np.float64)
        if isinstance(self.task, MultiLabelClassificationTask):
            probs = 1.0 / (1.0 + np.exp(-logits))
            rows = ["\t".join(str(float(p)) for p in row) for row in probs]
            values = [self.options.label_separator.join(
                label for label, p in zip(self.labels, row) if p > self.task.threshold)
                for row in probs]
        elif self.is_regression:
            rows = [f"{row[0]}" for row in logits]
            values = [f"{row[0]:.6f}" for row in logits]
        else:
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            rows = ["\t".join(str(float(p)) for p in row) for row in probs]
            values = [submission_label(task_name, self.labels[int(np.argmax(row))])
                      for row in logits]
        write_lines(results_path, rows)
        write_lines(submission_path, ["index\tprediction"] +
                    [f"{i}\t{value}" for i, value in enumerate(values)])
        self._say(f"wrote {results_path} and {submission_path} ({len(logits)} examples)")
        return {"test_results": results_path, "submission": submission_path}

    def warn_if_head_untrained(self) -> None:
        """Evaluating a head that was never trained gives meaningless numbers: say so."""
        report = self.init_report
        if self.resumed_from is None and (report is None or report.newly_initialized):
            message = ("WARNING: the classifier head (output_weights/output_bias) was never "
                       "trained: --init_checkpoint is not a fine-tuned checkpoint and "
                       "--output_dir holds no checkpoint, so evaluation and prediction use a "
                       "random head (set --do_train, or pass a fine-tuned checkpoint)")
            logger.warning(message)
            self._say(message)


# ----------------------------------------------------------------------------- run record
def run_record(task_name: str, train_examples: Sequence[Any], labels, options) -> dict:
    """What a training run is trained on: the task, a hash of its training examples, the
    labels and the flags that change the model."""
    digest = hashlib.sha256()
    for ex in train_examples:
        digest.update(json.dumps([ex.text_a, ex.text_b, ex.label]).encode("utf-8"))
    return {"task_name": task_name, "num_train_examples": len(train_examples),
            "train_examples_sha256": digest.hexdigest(), "labels": list(labels or []),
            **{k: getattr(options, k) for k in (
                "max_seq_length", "do_lower_case", "train_batch_size", "learning_rate",
                "num_train_epochs", "init_checkpoint", "gradient_accumulation_steps")},
            # Only when set: records written before multi-label runs existed still compare.
            **({"multi_label": True} if options.multi_label else {})}


# A resumed run must have been trained on the same data into the same kind of model; other
# settings (learning rate, epochs, ...) may change between reruns and are only reported.
_SAME_DATA_FIELDS = ("task_name", "num_train_examples", "train_examples_sha256", "labels",
                     "max_seq_length", "do_lower_case", "multi_label")


def check_run_record(output_dir: str, record: dict, progress_stream) -> None:
    """Refuses to resume a run of output_dir trained on other data (or labels, sequence length,
    casing); says what is resumed and which other settings changed. A new run's record is
    written to output_dir/run_info.json."""
    path = os.path.join(output_dir, RUN_INFO_FILE)
    has_checkpoint = tf.train.latest_checkpoint(output_dir) is not None
    if has_checkpoint and tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            previous = json.load(f)
        changed = {k: f"{k}: was {previous.get(k)!r}, now {v!r}" for k, v in record.items()
                   if previous.get(k) != v}
        refused = [changed[k] for k in _SAME_DATA_FIELDS if k in changed]
        if refused:
            raise TrainingError(
                f"--output_dir {output_dir} holds a run trained on other data or settings "
                f"({'; '.join(refused)}); use a new --output_dir, or delete that one to start "
                f"over")
        others = [v for k, v in changed.items() if k not in _SAME_DATA_FIELDS]
        print(f"Resuming the run in {output_dir} (same training data)"
              + (f"; these settings differ from that run's: {'; '.join(others)}"
                 if others else ""), file=progress_stream, flush=True)
        return
    if has_checkpoint:
        print(f"Resuming the checkpoint in {output_dir}; it has no {RUN_INFO_FILE}, so its "
              f"training data cannot be compared with this run's", file=progress_stream,
              flush=True)
        return
    tf.io.gfile.makedirs(output_dir)
    write_lines(path, [json.dumps(record, sort_keys=True, indent=1)])


# ----------------------------------------------------------------------------- driver
def _read_splits(processor, data_dir, do_train, do_eval, do_predict, is_regression):
    """The examples of each wanted split and the labels; an empty wanted split is an error. The
    training file is read first: a generic processor learns the labels from it."""
    splits = {"train": processor.get_train_examples(data_dir) if do_train else []}
    _require_examples(do_train, splits["train"], "training", processor, data_dir)
    labels = _labels(processor, data_dir, is_regression)
    splits["eval"] = processor.get_dev_examples(data_dir) if do_eval else []
    _require_examples(do_eval, splits["eval"], "dev (evaluation)", processor, data_dir)
    splits["predict"] = processor.get_test_examples(data_dir) if do_predict else []
    _require_examples(do_predict, splits["predict"], "test (prediction)", processor, data_dir)
    return splits, labels


def _require_examples(wanted, examples, name, processor, data_dir) -> None:
    if wanted and not examples:
        raise TrainingError(f"the {name} split in {data_dir} has no examples "
                            f"({type(processor).__name__})")


def _labels(processor, data_dir, is_regression):
    if is_regression:
        return None
    try:
        return processor.get_labels()
    except ValueError:  # a generic processor learns its labels from the training file
        if not processor.get_train_examples(data_dir):
            raise TrainingError(f"the labels are not given (--labels) and the training file in "
                                f"{data_dir} has no examples to learn them from") from None
        return processor.get_labels()


def run_finetuning(task_name: str, processor, data_dir: str,
                   bert_config: BertConfig | Mapping[str, Any], vocab, options: FinetuneOptions,
                   *, do_train: bool = True, do_eval: bool = False, do_predict: bool = False,
                   strategy: tf.distribute.Strategy | None = None,
                   progress_stream: TextIO | None = None) -> dict[str, Any]:
    """Google's run_classifier main for one seed. Reads the processor's examples (all of them
    first, so a missing file fails before anything is built), then trains (evaluating every
    `eval_every_n_steps` if set) / evaluates / predicts. Returns {"global_step", "preempted",
    "eval_results" (or None), "files", "trainer", "best_step"}."""
    if not (do_train or do_eval or do_predict):
        raise TrainingError("at least one of do_train, do_eval or do_predict must be true")
    options.validate()
    is_regression = bool(getattr(processor, "is_regression", False))
    splits, labels = _read_splits(processor, data_dir, do_train, do_eval, do_predict,
                                  is_regression)
    steps = options.train_steps(len(splits["train"])) if do_train else (1, 0)
    stream = progress_stream if progress_stream is not None else sys.stdout
    if do_train:
        check_run_record(options.output_dir, run_record(task_name, splits["train"], labels,
                                                        options), stream)
    trainer = ClassifierTrainer(bert_config, vocab, options, labels=labels,
                                is_regression=is_regression, num_train_steps=steps[0],
                                num_warmup_steps=steps[1], task_name=task_name,
                                pair_inputs=has_pairs([ex for s in splits.values() for ex in s]),
                                strategy=strategy, progress_stream=progress_stream)
    for wanted, name in ((do_eval, "eval_batch_size"), (do_predict, "predict_batch_size")):
        if wanted:
            trainer.check_batch_size(name, getattr(options, name))
    if not do_train:
        trainer.warn_if_head_untrained()
    result = {"global_step": trainer.step, "preempted": False, "eval_results": None,
              "files": {}, "trainer": trainer, "best_step": None}
    if do_train:
        if options.eval_every_n_steps and not do_eval:
            raise TrainingError("eval_every_n_steps evaluates on the dev split: set do_eval")
        done = trainer.train(splits["train"],
                             splits["eval"] if options.eval_every_n_steps else None)
        result.update(global_step=done.global_step, preempted=done.preempted,
                      best_step=done.best_step)
    if not result["preempted"] and do_eval:
        result["eval_results"] = trainer.evaluate(splits["eval"])
        result["preempted"] = result["eval_results"] is None
    if not result["preempted"] and do_predict:
        result["files"] = trainer.predict(task_name, splits["predict"])
        result["preempted"] = trainer.preempted
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
