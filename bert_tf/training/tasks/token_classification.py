"""Token classification (NER) as a Trainer task: BertTokenClassifier on CoNLL files.

Input pipeline: the words of a `ConllFile` are WordPiece-tokenized in the graph and cut into
doc-stride windows once per file (`bert_tf.data.token_alignment`); tf.data then holds the fixed-
length int32 features, so the step itself does no string work. Each word's label sits on its
first piece in the window where it has the most context (`label_weights` 1 there, 0 elsewhere).

Loss: Google's weighted mean over the global batch, sum(w · NLL) / sum(w) with w =
`label_weights`. The normaliser is the all-reduced sum of label weights: each replica minimises
Σ_replica w · NLL / Σ_global w, so the replicas' gradients SUM to the global-batch gradient
(and k accumulated micro-batches equal one large batch).

Evaluation and prediction see every window exactly once: the windows are padded to a multiple of
the global batch with weight-0 copies and every replica's (index, weight, predicted ids) are
all-gathered; the windows' predictions are merged back to one tag per word
(`TokenFeatures.merge`) and scored with conlleval's entity rules (`ner_metrics`).

Length buckets (`bucket_size`, docs/training.md): training windows are grouped by length and
evaluation windows sorted by length, every batch cut to its bucket. The per-token labels and
weights are cut with the ids: a word is scored at its first piece, inside the window's real
tokens, so no weighted position is ever cut (tested); predicted ids are padded back to
max_seq_length for the merge. Per-window outputs, the loss and the metrics are unchanged.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from bert_tf.config import as_config
from bert_tf.data.bucketing import pad_to_seq_length
from bert_tf.data.conll import ConllFile, check_labels
from bert_tf.data.ner_metrics import ner_metrics
from bert_tf.data.token_alignment import TokenFeatures, conll_features, create_features
from bert_tf.models.token_classifier import BertTokenClassifier
from bert_tf.training.options import TrainingError
from bert_tf.training.task import Task, ordered_examples, padded_inference_dataset
from bert_tf.training.tasks.classification import FinetuneOptions

_MODEL_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


@dataclasses.dataclass
class TokenClassificationOptions(FinetuneOptions):
    """run_ner.py's settings: run_classifier's plus the window stride for long sentences.

    `doc_stride`: how far consecutive windows of a sentence longer than max_seq_length - 2
    WordPieces start apart (None: half a window). The number of training steps counts windows
    as examples: int(windows / train_batch_size * num_train_epochs).
    """

    doc_stride: int | None = None

    def window_stride(self) -> int:
        return self.doc_stride or max(1, (self.max_seq_length - 2) // 2)

    def validate(self) -> None:
        super().validate()
        if self.doc_stride is not None and self.doc_stride < 1:
            raise TrainingError(f"doc_stride must be positive, got {self.doc_stride!r}")


class TokenClassificationTask(Task):
    """BertTokenClassifier on CoNLL files (data: a `bert_tf.data.conll.ConllFile`, IOB2 tags).

    Args:
      config: BertConfig. vocab: vocab.txt path, Vocab or token list.
      labels: the IOB2 tags in id order (labels.txt).
      max_seq_length: the window length L; doc_stride: the window stride.
      do_lower_case: the tokenizer's casing. seed: shuffling seed.
      bucket_size: batches cut to a multiple of it instead of padded to max_seq_length
        (training: windows grouped by length; evaluation: sorted by length); 0/None: fixed.

    After `aggregate_eval`, `last_predictions` holds the evaluated file's predicted tags (one
    list per sentence), for eval_predictions.txt.
    """

    stat_names = ("nll", "correct", "label_weight")
    progress_metrics = ("accuracy",)
    default_eval_metric = "eval_f1"

    def __init__(self, config, vocab, labels: Sequence[str], max_seq_length: int = 128,
                 doc_stride: int = 64, do_lower_case: bool = True, seed: int | None = None,
                 bucket_size: int | None = None):
        from bert_tf.text import BertTokenizer

        super().__init__(as_config(config))
        self.labels = check_labels(labels, "labels")
        self.config.check_max_seq_length(max_seq_length, "max_seq_length")
        self.max_seq_length, self.doc_stride, self.seed = max_seq_length, doc_stride, seed
        self.bucket_size = bucket_size or None
        self.tokenizer = BertTokenizer(vocab, do_lower_case=do_lower_case)
        self.vocab_tokens = list(self.tokenizer.vocab.tokens)
        self.config.check_vocab_fits(len(self.vocab_tokens))
        self._cache: dict[int, tuple[ConllFile, TokenFeatures]] = {}
        self._evaluated: tuple[ConllFile, TokenFeatures] | None = None
        self.last_predictions: list[list[str]] | None = None

    def build_model(self):
        return BertTokenClassifier(self.config, num_labels=len(self.labels))

    def initialize(self, model, path):
        from bert_tf.checkpoints import load_google_checkpoint

        # A pretrained checkpoint has no head (newly initialised); a fine-tuned one fills it.
        return load_google_checkpoint(model, path, strict=True, optional_groups=("classifier",))

    # -- data --------------------------------------------------------------------------------
    def features(self, conll: ConllFile, with_labels: bool = True) -> TokenFeatures:
        """The windows of a file (computed once per file object and kept)."""
        key = id(conll)
        if key not in self._cache or self._cache[key][0] is not conll:
            if with_labels:
                features = conll_features(self.tokenizer, conll, self.labels,
                                          self.max_seq_length, self.doc_stride)
            else:
                features = create_features(self.tokenizer, [s.words for s in conll.sentences],
                                           None, self.max_seq_length, self.doc_stride)
            self._cache[key] = (conll, features)
        return self._cache[key][1]

    def train_dataset(self, conll, global_batch_size):
        arrays = dict(self.features(conll).arrays)
        n = len(arrays["input_word_ids"])
        if not n:
            raise TrainingError(f"{conll.path}: no sentences to train on")

        def dataset_fn(input_context):
            ds = tf.data.Dataset.from_tensor_slices(arrays)
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            ds = ds.repeat().shuffle(min(n, 100000), seed=self.seed)
            ds = self.training_batches(ds, global_batch_size, input_context,
                                       self.max_seq_length)
            return ds.prefetch(tf.data.AUTOTUNE)

        return dataset_fn

    def eval_dataset(self, conll, global_batch_size):
        return self.inference_dataset(conll, global_batch_size, with_labels=True)

    def inference_dataset(self, conll, global_batch_size, with_labels):
        """Every window once, padded with weight-0 copies to a multiple of the global batch;
        returns (dataset_fn, number of batches); with `bucket_size`, sorted by length and cut to
        buckets. The file is remembered for `aggregate_eval` and `predicted_tags`."""
        features = self.features(conll, with_labels)
        n = len(features)
        if not n:
            raise TrainingError(f"{conll.path}: no sentences to evaluate or predict")
        self._evaluated = (conll, features)
        return padded_inference_dataset(features.arrays, n, global_batch_size, self.bucket_size)

    # -- objective and metrics ---------------------------------------------------------------
    @staticmethod
    def _scored(features, logits):
        """(weights, NLL, correct) per position, float32 [B, L]."""
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        ids = tf.cast(features["label_ids"], tf.int32)
        nll = -tf.gather(log_probs, ids, batch_dims=2)
        correct = tf.cast(tf.equal(tf.argmax(log_probs, -1, output_type=tf.int32), ids),
                          tf.float32)
        return tf.cast(features["label_weights"], tf.float32), nll, correct

    def normalizers(self, batch):
        return tf.reshape(tf.reduce_sum(tf.cast(batch["label_weights"], tf.float32)), [1])

    def objective(self, model, batch, totals):
        logits = model({name: batch[name] for name in _MODEL_INPUTS}, training=True)
        weights, nll, correct = self._scored(batch, logits)
        nll_sum = tf.reduce_sum(weights * nll)
        stats = tf.stack([nll_sum, tf.reduce_sum(weights * correct), tf.reduce_sum(weights)])
        return tf.math.divide_no_nan(nll_sum, totals[0]), stats

    def loss_from_stats(self, stats):
        return tf.math.divide_no_nan(stats[0], stats[2])

    def train_metrics(self, stats):
        return {"accuracy": float(stats[1]) / max(float(stats[2]), 1.0)}

    def eval_step(self, model, batch):
        features, weight, index = batch
        logits = tf.cast(model({name: features[name] for name in _MODEL_INPUTS},
                               training=False), tf.float32)
        weights, nll, _ = self._scored(features, logits)
        # [B, L] back to [B, max_seq_length]: batches of every bucket concatenate for `merge`.
        predicted = pad_to_seq_length(tf.argmax(logits, -1, output_type=tf.int32),
                                      self.max_seq_length)
        return {"predicted": predicted,
                "nll": tf.reduce_sum(weights * nll, -1), "label_weight": tf.reduce_sum(weights, -1),
                "weight": weight, "index": index}

    def predicted_tags(self, outputs) -> list[list[str]]:
        """The gathered outputs of `inference_dataset` → per sentence, one IOB2 tag per word."""
        out = ordered_examples(outputs)
        return [[self.labels[i] for i in ids] for ids in self._evaluated[1].merge(out["predicted"])]

    def aggregate_eval(self, outputs):
        conll = self._evaluated[0]
        self.last_predictions = self.predicted_tags(outputs)
        results = ner_metrics([s.tags for s in conll.sentences], self.last_predictions).as_dict()
        out = ordered_examples(outputs)
        results["eval_loss"] = float(out["nll"].sum() / max(out["label_weight"].sum(), 1e-12))
        results["loss"] = results["eval_loss"]  # Google's estimator reports it as `loss` too
        return {k: float(v) for k, v in results.items()}

    def export_files(self):
        from bert_tf.checkpoints.google import LABELS_NAME, VOCAB_NAME

        return {VOCAB_NAME: self.vocab_tokens, LABELS_NAME: self.labels}
