"""Extractive question answering (SQuAD v1.1 / v2.0) as a Trainer task (Google's run_squad).

Data: SQuAD examples become Google's features (`bert_tf.data.squad`: WordPiece per word through
the in-graph tokenizer, doc-stride windows, max-context flags, answer positions) once, when a
split is prepared (`QuestionAnsweringTask.prepare`); the windows then go into tf.data as int32
columns.

Loss: Google's, the mean of the start and end softmax cross-entropies of a window's answer
positions, averaged over the global batch (the normaliser is the global window count), with one
difference: the softmax runs over the window's real tokens only (`input_mask` = 1; Google's also
runs over the padding positions). A window's loss and logits then do not depend on how far it is
padded, which is what lets batches be cut to length buckets with unchanged results; padding
positions are never an answer (start/end positions lie in the window's context or at [CLS]).

Prediction sees every window exactly once (padded to a multiple of the global batch with
weight-0 copies); every replica's start/end logits and unique ids are all-gathered, and
`aggregate_eval` runs Google's post-processing (n-best, get_final_text, the v2 null rule) and,
when the file has answers, the official SQuAD metrics. Logits at padding positions are
`PADDING_LOGIT`, below any real score, so they never take one of the n-best places.

Length buckets (`bucket_size`, docs/training.md): training windows are grouped by length and
prediction windows sorted by length, every batch cut to its bucket; the start/end logits are
padded back to max_seq_length with `PADDING_LOGIT`. Only contexts longer than a window fill
max_seq_length: at Google's 384 / 128 / 64, 3% of the SQuAD v2.0 dev windows are full and the
buckets compute about half the positions (docs/training.md).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from bert_tf.config import as_config
from bert_tf.data import squad
from bert_tf.data.bucketing import pad_to_seq_length
from bert_tf.data.squad_postprocess import RawResult, predict_answers
from bert_tf.models.span_qa import BertSpanQA
from bert_tf.training.options import TrainingError
from bert_tf.training.task import Task, ordered_examples, padded_inference_dataset
from bert_tf.training.tasks.classification import FinetuneOptions

_MODEL_INPUTS = ("input_ids", "input_mask", "segment_ids")
# The start/end logit of a padding position: outside the softmax (exp underflows to exactly 0
# against any real logit) and last in the n-best order. Finite, so no inf - inf or 0 * inf.
PADDING_LOGIT = -1e9


@dataclasses.dataclass
class QuestionAnsweringOptions(FinetuneOptions):
    """run_squad.py's settings: run_classifier's plus Google's SQuAD flags.

    The number of training steps counts EXAMPLES (questions), not windows, as Google's run_squad
    does: int(num_train_examples / train_batch_size * num_train_epochs).
    """

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0

    POSITIVE = FinetuneOptions.POSITIVE + ("doc_stride", "max_query_length", "n_best_size",
                                           "max_answer_length")


@dataclasses.dataclass
class SquadData:
    """One prepared split: its examples and their features (windows)."""

    examples: list
    features: list
    is_training: bool

    @property
    def has_answers(self) -> bool:
        """Whether the file carries gold answers (then predictions can be scored)."""
        return any(ex.answers or ex.is_impossible for ex in self.examples)

    def gold(self) -> list[dict]:
        """The gold answers in SQuAD's layout (the `data` list `squad_metrics.evaluate` reads)."""
        qas = [{"id": ex.qas_id, "answers": [{"text": a} for a in ex.answers]}
               for ex in self.examples]
        return [{"paragraphs": [{"qas": qas}]}]


class QuestionAnsweringTask(Task):
    """BertSpanQA on SQuAD data (`prepare` a split first; the Trainer gets `SquadData`).

    Args:
      config: BertConfig. vocab: vocab.txt path, Vocab or token list.
      options: QuestionAnsweringOptions (tokenization, windows and post-processing settings).
    """

    stat_names = ("nll", "examples")
    default_eval_metric = "f1"

    def __init__(self, config, vocab, options: QuestionAnsweringOptions):
        from bert_tf.text.tokenizer import BertTokenizer

        super().__init__(as_config(config))
        self.options = options
        self.bucket_size = options.bucket_size or None
        self.config.check_max_seq_length(options.max_seq_length, "max_seq_length")
        self.tokenizer = BertTokenizer(vocab, do_lower_case=options.do_lower_case)
        self.config.check_vocab_fits(len(self.tokenizer.vocab.tokens))
        # Set by `aggregate_eval`: (predictions, nbest, null_odds) of the last prediction run.
        self.last_predictions: tuple[dict, dict, dict] | None = None
        self._inference_data: SquadData | None = None

    def build_model(self):
        return BertSpanQA(self.config)

    def initialize(self, model, path):
        from bert_tf.checkpoints import load_google_checkpoint

        # A pretrained checkpoint has no span head (newly initialised); run_squad's fills it.
        return load_google_checkpoint(model, path, strict=True, optional_groups=("span_qa",))

    # -- data --------------------------------------------------------------------------------
    def prepare(self, examples: Sequence, is_training: bool) -> SquadData:
        """Google's feature creation for `examples` (from `squad.read_squad_examples` with the
        same `is_training`)."""
        o = self.options
        features = list(squad.convert_examples_to_features(
            examples, self.tokenizer, o.max_seq_length, o.doc_stride, o.max_query_length,
            is_training))
        if not features:
            raise TrainingError("the SQuAD file has no questions to "
                                + ("train on" if is_training else "predict"))
        return SquadData(list(examples), features, is_training)

    def train_dataset(self, data: SquadData, global_batch_size):
        if not data.is_training:
            raise TrainingError("training data must be prepared with is_training=True")
        columns = _columns(data.features, ("start_positions", "end_positions"))
        n = len(data.features)

        def dataset_fn(input_context):
            ds = tf.data.Dataset.from_tensor_slices(columns)
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            ds = ds.repeat().shuffle(min(n, 100000), seed=self.options.seed)
            ds = self.training_batches(ds, global_batch_size, input_context,
                                       self.options.max_seq_length)
            ds = ds.map(lambda c: ({k: c[k] for k in _MODEL_INPUTS},
                                   (c["start_positions"], c["end_positions"])))
            return ds.prefetch(tf.data.AUTOTUNE)

        return dataset_fn

    def eval_dataset(self, data: SquadData, global_batch_size):
        """Every window once, padded with weight-0 copies to a multiple of the global batch;
        returns (dataset_fn, number of batches); with `bucket_size`, sorted by length and cut
        to buckets. Remembers `data` for `aggregate_eval`."""
        self._inference_data = data
        return padded_inference_dataset(_columns(data.features, ("unique_ids",)),
                                        len(data.features), global_batch_size, self.bucket_size)

    # -- objective ---------------------------------------------------------------------------
    @staticmethod
    def window_logits(model, features, training):
        """The model's start/end logits, float32 [B, L], `PADDING_LOGIT` where input_mask is 0."""
        logits = model({k: features[k] for k in _MODEL_INPUTS}, training=training)
        real = tf.cast(features["input_mask"], tf.bool)
        return {name: tf.where(real, tf.cast(logits[name], tf.float32), PADDING_LOGIT)
                for name in ("start_logits", "end_logits")}

    @staticmethod
    def per_example_loss(logits, positions):
        """(CE(start) + CE(end)) / 2 per window, float32 [B] (Google's run_squad loss; with
        `window_logits` the softmax is over the real tokens)."""
        total = 0.0
        for name, position in zip(("start_logits", "end_logits"), positions):
            log_probs = tf.nn.log_softmax(tf.cast(logits[name], tf.float32), axis=-1)
            total += -tf.gather(log_probs, tf.cast(position, tf.int32), batch_dims=1)
        return total / 2.0

    def normalizers(self, batch):
        return tf.cast(tf.shape(batch[1][0])[:1], tf.float32)

    def objective(self, model, batch, totals):
        features, positions = batch
        nll = self.per_example_loss(self.window_logits(model, features, True), positions)
        stats = tf.stack([tf.reduce_sum(nll), tf.cast(tf.shape(nll)[0], tf.float32)])
        return tf.reduce_sum(nll) / totals[0], stats

    def loss_from_stats(self, stats):
        return stats[0] / stats[1]

    # -- prediction --------------------------------------------------------------------------
    def eval_step(self, model, batch):
        features, weight, index = batch
        logits = self.window_logits(model, features, False)
        # [B, L] back to [B, max_seq_length]: batches of every bucket concatenate.
        full = {name: pad_to_seq_length(value, self.options.max_seq_length, PADDING_LOGIT)
                for name, value in logits.items()}
        return {**full, "unique_ids": features["unique_ids"], "weight": weight, "index": index}

    def aggregate_eval(self, outputs):
        """Google's post-processing of the gathered logits (kept in `last_predictions`) and,
        when the data has gold answers, the official SQuAD metrics (`exact_match`, `f1`, and
        for v2 the HasAns/NoAns splits and best thresholds)."""
        from bert_tf.data import squad_metrics

        data, o = self._inference_data, self.options
        out = ordered_examples(outputs)
        results = [RawResult(int(u), s.tolist(), e.tolist()) for u, s, e in
                   zip(out["unique_ids"], out["start_logits"], out["end_logits"])]
        self.last_predictions = predict_answers(
            data.examples, data.features, results, o.n_best_size, o.max_answer_length,
            o.do_lower_case, o.version_2_with_negative, o.null_score_diff_threshold)
        if not data.has_answers:
            return {}
        predictions, _, null_odds = self.last_predictions
        metrics = squad_metrics.evaluate(data.gold(), predictions,
                                         null_odds if o.version_2_with_negative else None)
        metrics["exact_match"] = metrics.pop("exact")  # the v1.1 script's name
        return {k: float(v) for k, v in metrics.items()}

    def export_files(self):
        from bert_tf.checkpoints.google import VOCAB_NAME

        return {VOCAB_NAME: self.tokenizer.vocab.tokens}


def _columns(features, extra: Sequence[str]) -> dict[str, np.ndarray]:
    """Features as numpy columns: the model inputs int32 [N, L] and `extra` scalars [N]."""
    columns = {name: np.array([getattr(f, name) for f in features], np.int32)
               for name in _MODEL_INPUTS}
    scalars = {"unique_ids": ("unique_id", np.int64), "start_positions": ("start_position", np.int32),
               "end_positions": ("end_position", np.int32)}
    for name in extra:
        field, dtype = scalars[name]
        columns[name] = np.array([getattr(f, field) for f in features], dtype)
    return columns
