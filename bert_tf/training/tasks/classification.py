"""Sentence(-pair) classification and regression as a Trainer task (Google's run_classifier).

The worked example of docs/training.md. Input pipeline: the examples' raw strings go into
tf.data as (text_a, text_b, label); batches are tokenized and packed IN THE GRAPH by
`BertPreprocessor`. A task is a pair task when any of its examples has a text_b.

Loss: softmax cross-entropy (`num_classes = len(labels)`) or squared error (regression, one
output); Google's mean over the global batch. The normaliser is the global example count: each
replica minimises Σ_replica loss / global_batch_size, so the replicas' gradients SUM to the
global-batch gradient.

Evaluation and prediction see every example exactly once: the example list is padded to a
multiple of the global batch with weight-0 copies (Google's PaddingInputExample) and every
replica's (index, weight, outputs) are all-gathered, so the chief has all predictions in order.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.config import as_config
from bert_tf.models.classifier import BertClassifier
from bert_tf.training.options import TrainerOptions, TrainingError
from bert_tf.training.task import Task, inference_order, ordered_examples


@dataclasses.dataclass
class FinetuneOptions(TrainerOptions):
    """run_classifier.py's settings: the Trainer's plus tokenization, prediction batch and epochs.

    The number of training steps is int(num_train_examples / train_batch_size *
    num_train_epochs), with int(steps * warmup_proportion) warmup steps (Google's rule); see
    `with_train_steps`.
    """

    max_seq_length: int = 128
    bucket_size: int = 16
    do_lower_case: bool = True
    predict_batch_size: int = 8
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    multi_label: bool = False  # MultiLabelClassificationTask: sigmoid outputs, BCE loss
    label_threshold: float = 0.5  # multi-label decision threshold on each probability
    label_separator: str = ","  # joins the predicted labels of a multi-label example

    POSITIVE = TrainerOptions.POSITIVE + ("max_seq_length", "predict_batch_size")
    NON_NEGATIVE = TrainerOptions.NON_NEGATIVE + ("bucket_size",)  # 0: fixed length

    def validate(self) -> None:
        super().validate()
        if not self.num_train_epochs > 0:
            raise TrainingError(f"num_train_epochs must be > 0, got {self.num_train_epochs!r}")
        if not 0.0 < self.label_threshold < 1.0:
            raise TrainingError(f"label_threshold must be in (0, 1), got "
                                f"{self.label_threshold!r}")
        if not 0.0 <= self.warmup_proportion <= 1.0:
            raise TrainingError(f"warmup_proportion must be in [0, 1], got "
                                f"{self.warmup_proportion!r}")

    def train_steps(self, num_examples: int) -> tuple[int, int]:
        """(num_train_steps, num_warmup_steps) for `num_examples` training examples."""
        self.validate()
        steps = int(num_examples / self.train_batch_size * self.num_train_epochs)
        if steps < 1:
            raise TrainingError(f"{num_examples} training example(s) at train_batch_size "
                                f"{self.train_batch_size} and num_train_epochs "
                                f"{self.num_train_epochs} make no training step")
        return steps, int(steps * self.warmup_proportion)


def task_metrics(task_name: str, predictions, labels, is_regression: bool) -> dict[str, float]:
    """`glue_metrics` for GLUE/XNLI tasks; for a user's own files (tsv/csv) accuracy, or
    pearson/spearmanr for regression."""
    from bert_tf.data import metrics

    try:
        out = metrics.glue_metrics(task_name, predictions, labels)
    except ValueError as e:
        if "unknown task name" not in str(e):
            raise
        if is_regression:
            r, rho = metrics.pearson(predictions, labels), metrics.spearman(predictions, labels)
            out = {"pearson": r, "spearmanr": rho, "corr": (r + rho) / 2.0}
        else:
            out = {"accuracy": metrics.accuracy(predictions, labels)}
    return {k: float(v) for k, v in out.items()}


def examples_to_arrays(examples: Sequence[Any], labels: Sequence[str] | None,
                       is_regression: bool, with_labels: bool = True) -> dict[str, np.ndarray]:
    """InputExamples → numpy columns text_a, text_b, label (int32 ids or float32 scores)."""
    label_map = {str(label): i for i, label in enumerate(labels or [])}
    text_a, text_b, values = [], [], []
    for ex in examples:
        text_a.append("" if ex.text_a is None else str(ex.text_a))
        text_b.append("" if ex.text_b is None else str(ex.text_b))
        if not with_labels:
            values.append(0)
        elif is_regression:
            try:
                values.append(float(ex.label))
            except (TypeError, ValueError):
                raise TrainingError(f"example {ex.guid}: label {ex.label!r} is not a number "
                                    f"(regression task)") from None
        else:
            if str(ex.label) not in label_map:
                raise TrainingError(f"example {ex.guid}: label {ex.label!r} is not one of the "
                                    f"task's labels {list(label_map)}")
            values.append(label_map[str(ex.label)])
    return {"text_a": np.array(text_a, dtype=object), "text_b": np.array(text_b, dtype=object),
            "label": np.array(values, dtype=np.float32 if is_regression else np.int32)}


def has_pairs(examples: Sequence[Any]) -> bool:
    return any(getattr(ex, "text_b", None) is not None for ex in examples)


class ClassificationTask(Task):
    """BertClassifier on InputExamples (data: a sequence of `bert_tf.data.glue.InputExample`).

    Args:
      config: BertConfig. vocab: vocab.txt path, Vocab or token list.
      labels: the label strings in id order (ignored for regression).
      is_regression: one output, squared-error loss.
      task_name: picks the GLUE metrics (other names: accuracy, or pearson/spearmanr).
      max_seq_length, do_lower_case: the in-graph BertPreprocessor's settings.
      pair_inputs: pack (text_a, text_b) pairs instead of single texts.
      seed: shuffling seed.
      bucket_size: batches cut to a multiple of it instead of padded to max_seq_length
        (training: examples grouped by length; evaluation: sorted by length); 0/None: fixed.
    """

    stat_names = ("nll", "correct", "examples")
    default_eval_metric = "eval_loss"
    min_labels = 2

    def __init__(self, config, vocab, labels: Sequence[str] | None = None,
                 is_regression: bool = False, task_name: str = "tsv",
                 max_seq_length: int = 128, do_lower_case: bool = True,
                 pair_inputs: bool = True, seed: int | None = None,
                 bucket_size: int | None = None):
        from bert_tf.text import BertPreprocessor

        super().__init__(as_config(config))
        self.is_regression = bool(is_regression)
        self.labels = [] if self.is_regression else [str(x) for x in (labels or [])]
        if not self.is_regression and len(self.labels) < self.min_labels:
            raise TrainingError(f"a {type(self).__name__} needs at least {self.min_labels} "
                                f"label(s), got {self.labels}")
        self.num_classes = 1 if self.is_regression else len(self.labels)
        self.progress_metrics = () if self.is_regression else ("accuracy",)
        self.task_name, self.pair_inputs, self.seed = task_name, bool(pair_inputs), seed
        self.config.check_max_seq_length(max_seq_length, "max_seq_length")
        self.max_seq_length, self.bucket_size = max_seq_length, bucket_size or None
        self.preprocessor = BertPreprocessor(
            vocab, do_lower_case=do_lower_case, seq_length=max_seq_length,
            max_position_embeddings=self.config.max_position_embeddings)
        self.config.check_vocab_fits(len(self.preprocessor.vocab_tokens))

    def build_model(self):
        return BertClassifier(self.config, num_classes=self.num_classes)

    def initialize(self, model, path):
        from bert_tf.checkpoints import load_google_checkpoint

        # A pretrained checkpoint has no head (newly initialised); a fine-tuned one fills it.
        return load_google_checkpoint(model, path, strict=True, optional_groups=("classifier",))

    # -- data --------------------------------------------------------------------------------
    def _columns(self, examples, with_labels: bool) -> dict[str, np.ndarray]:
        return examples_to_arrays(examples, self.labels, self.is_regression, with_labels)

    def _features(self, text_a, text_b):
        return self.preprocessor((text_a, text_b) if self.pair_inputs else text_a)

    def train_dataset(self, examples, global_batch_size):
        columns = self._columns(examples, with_labels=True)
        data = (columns["text_a"].astype(str), columns["text_b"].astype(str), columns["label"])
        n = len(columns["label"])

        def dataset_fn(input_context):
            ds = tf.data.Dataset.from_tensor_slices(data)
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            ds = ds.repeat().shuffle(min(n, 100000), seed=self.seed)
            # Tokenized in batches (one graph call per batch), then (re)batched per replica.
            ds = ds.batch(input_context.get_per_replica_batch_size(global_batch_size))
            ds = ds.map(lambda a, b, y: (self._features(a, b), y),
                        num_parallel_calls=tf.data.AUTOTUNE).unbatch()
            ds = self.training_batches(ds, global_batch_size, input_context,
                                       self.max_seq_length)
            return ds.prefetch(tf.data.AUTOTUNE)

        return dataset_fn

    def eval_dataset(self, examples, global_batch_size):
        return self.inference_dataset(examples, global_batch_size, with_labels=True)

    def inference_dataset(self, examples, global_batch_size, with_labels):
        """Every example once, padded with weight-0 copies to a multiple of the global batch;
        returns (dataset_fn, number of batches)."""
        columns = self._columns(examples, with_labels)
        n = len(columns["label"])
        if not n:
            raise TrainingError("no examples to evaluate or predict")
        text_a, text_b = columns["text_a"].astype(str), columns["text_b"].astype(str)
        # With buckets, sorted by length: batches of similar lengths, short buckets.
        take, weight = inference_order(
            n, global_batch_size, self._lengths(text_a, text_b) if self.bucket_size else None)
        data = (text_a[take], text_b[take], columns["label"][take], weight, take)

        def dataset_fn(input_context):
            ds = tf.data.Dataset.from_tensor_slices(data)
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            ds = ds.batch(global_batch_size // input_context.num_input_pipelines,
                          drop_remainder=True)
            ds = ds.map(lambda a, b, y, w, i: (self._features(a, b), y, w, i),
                        num_parallel_calls=tf.data.AUTOTUNE)
            ds = self.inference_batches(ds, global_batch_size, input_context)
            return ds.prefetch(tf.data.AUTOTUNE)

        return dataset_fn, len(take) // global_batch_size

    def _lengths(self, text_a, text_b) -> np.ndarray:
        """The examples' packed lengths (int [N]): one tokenization pass to sort them."""
        ds = tf.data.Dataset.from_tensor_slices((text_a, text_b)).batch(512)
        ds = ds.map(lambda a, b: tf.reduce_sum(self._features(a, b)["input_mask"], axis=1))
        return np.concatenate([x.numpy() for x in ds])

    # -- objective and metrics ---------------------------------------------------------------
    def per_example_loss(self, logits, labels):
        """Cross-entropy of the label id, or squared error of the score (float32 [B])."""
        logits = tf.cast(logits, tf.float32)
        if self.is_regression:
            return tf.square(logits[:, 0] - tf.cast(labels, tf.float32))
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        return -tf.gather(log_probs, tf.cast(labels, tf.int32), batch_dims=1)

    def _correct(self, logits, labels):
        if self.is_regression:
            return tf.zeros_like(logits[:, 0], tf.float32)
        return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                tf.cast(labels, tf.int32)), tf.float32)

    def normalizers(self, batch):
        return tf.cast(tf.shape(batch[1])[:1], tf.float32)

    def objective(self, model, batch, totals):
        features, labels = batch
        logits = model(features, training=True)
        nll = self.per_example_loss(logits, labels)
        stats = tf.stack([tf.reduce_sum(nll), tf.reduce_sum(self._correct(logits, labels)),
                          tf.cast(tf.shape(nll)[0], tf.float32)])
        return tf.reduce_sum(nll) / totals[0], stats

    def loss_from_stats(self, stats):
        return stats[0] / stats[2]

    def train_metrics(self, stats):
        if self.is_regression:
            return {}
        return {"accuracy": float(stats[1]) / max(float(stats[2]), 1.0)}

    def eval_step(self, model, batch):
        features, labels, weight, index = batch
        logits = tf.cast(model(features, training=False), tf.float32)
        return {"logits": logits, "loss": self.per_example_loss(logits, labels),
                "label": labels, "weight": weight, "index": index}

    def aggregate_eval(self, outputs):
        out = ordered_examples(outputs)
        predictions = (out["logits"][:, 0] if self.is_regression
                       else np.argmax(out["logits"], axis=-1))
        results = task_metrics(self.task_name, predictions, out["label"], self.is_regression)
        results["eval_loss"] = float(np.mean(out["loss"]))
        return results

    def export_files(self):
        from bert_tf.checkpoints.google import LABELS_NAME, VOCAB_NAME

        files = {VOCAB_NAME: self.preprocessor.vocab_tokens}
        if not self.is_regression:
            files[LABELS_NAME] = self.labels
        return files


def multi_hot(examples: Sequence[Any], labels: Sequence[str], with_labels: bool = True
              ) -> np.ndarray:
    """float32 [N, C]: 1 where the example (label: a tuple of label strings) has label c."""
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros([len(examples), len(labels)], np.float32)
    for row, ex in zip(out, examples if with_labels else ()):
        names = (ex.label,) if isinstance(ex.label, str) else tuple(ex.label or ())
        for name in names:
            if name not in index:
                raise TrainingError(f"example {ex.guid}: label {name!r} is not one of the "
                                    f"task's labels {list(labels)}")
            row[index[name]] = 1.0
    return out


class MultiLabelClassificationTask(ClassificationTask):
    """Multi-label classification: every label is an independent yes/no (sigmoid outputs).

    Each example's label is a tuple of label strings (`TsvProcessor(label_separator=...)`).
    Loss: binary cross-entropy averaged over the labels, Google's mean over the global batch;
    a label is predicted when its probability exceeds `threshold`. Evaluation: micro/macro F1
    and exact match (`bert_tf.data.metrics.multi_label_metrics`) plus eval_loss.

    Args: as `ClassificationTask` (no regression), plus
      threshold: the decision threshold on each label's probability, in (0, 1).
    """

    min_labels = 1

    def __init__(self, config, vocab, labels: Sequence[str], threshold: float = 0.5, **kwargs):
        if not 0.0 < threshold < 1.0:
            raise TrainingError(f"the multi-label threshold must be in (0, 1), got {threshold!r}")
        super().__init__(config, vocab, labels=labels, **kwargs)
        self.threshold = float(threshold)
        self.progress_metrics = ("exact_match",)

    def _columns(self, examples, with_labels):
        columns = examples_to_arrays(examples, None, True, with_labels=False)
        columns["label"] = multi_hot(examples, self.labels, with_labels)
        return columns

    def per_example_loss(self, logits, labels):
        """Binary cross-entropy averaged over the labels (float32 [B])."""
        logits = tf.cast(logits, tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, tf.float32), logits)
        return tf.reduce_mean(bce, axis=-1)

    def predicted(self, logits):
        """bool [B, C]: probability > threshold, i.e. logit > logit(threshold)."""
        return tf.cast(logits, tf.float32) > math.log(self.threshold / (1.0 - self.threshold))

    def _correct(self, logits, labels):
        return tf.cast(tf.reduce_all(tf.equal(self.predicted(logits), labels > 0.5), axis=-1),
                       tf.float32)

    def train_metrics(self, stats):
        return {"exact_match": float(stats[1]) / max(float(stats[2]), 1.0)}

    def aggregate_eval(self, outputs):
        from bert_tf.data.metrics import multi_label_metrics

        out = ordered_examples(outputs)
        probabilities = 1.0 / (1.0 + np.exp(-out["logits"].astype(np.float64)))
        metrics = multi_label_metrics(probabilities > self.threshold, out["label"] > 0.5)
        results = {f"eval_{name}": value for name, value in metrics.items()}
        results["eval_loss"] = float(np.mean(out["loss"]))
        return results
