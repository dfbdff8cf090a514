"""BertPretrainer: encoder + tied masked-LM head + next-sentence head, with Google's losses."""
from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.layers.heads import ClassificationHead, masked_lm_head
from bert_tf.models.base import BertTaskModel
from bert_tf.models.encoder import BertEncoder, encoder_inputs

# Google's pretraining TFRecord features (create_pretraining_data.py / run_pretraining.py).
PRETRAINING_FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions",
                        "masked_lm_ids", "masked_lm_weights", "next_sentence_labels")


# The order of `pretraining_loss_sums`' entries.
PRETRAINING_SUM_NAMES = ("mlm_nll", "mlm_weight", "mlm_correct", "nsp_nll", "nsp_correct",
                         "examples")


def pretraining_loss_sums(features: Mapping[str, Any], masked_lm_logits, next_sentence_logits):
    """The sums behind Google's run_pretraining losses and accuracies, float32 [6] (see
    PRETRAINING_SUM_NAMES): Σ w·NLL, Σ w and Σ w·correct over the masked positions (w =
    masked_lm_weights, 0 for padding); Σ NLL, Σ correct and the count over the examples.

    Sums (not means) so a distributed loop can add them over replicas, micro-batches and
    evaluation batches before dividing; `pretraining_losses_from_sums` divides.
    """
    mlm_log_probs = ops.log_softmax(ops.cast(masked_lm_logits, "float32"), axis=-1)
    ids = ops.cast(features["masked_lm_ids"], "int32")
    weights = ops.cast(features["masked_lm_weights"], "float32")
    nll = -ops.squeeze(ops.take_along_axis(mlm_log_probs, ids[..., None], axis=-1), -1)
    mlm_correct = ops.cast(ops.equal(ops.cast(ops.argmax(mlm_log_probs, -1), "int32"), ids),
                           "float32")

    nsp_log_probs = ops.log_softmax(ops.cast(next_sentence_logits, "float32"), axis=-1)
    labels = ops.reshape(ops.cast(features["next_sentence_labels"], "int32"), (-1,))
    nsp_nll = -ops.squeeze(ops.take_along_axis(nsp_log_probs, labels[:, None], axis=-1), -1)
    nsp_correct = ops.cast(ops.equal(ops.cast(ops.argmax(nsp_log_probs, -1), "int32"), labels),
                           "float32")
    count = ops.cast(ops.shape(labels)[0], "float32")
    return ops.stack([ops.sum(weights * nll), ops.sum(weights), ops.sum(weights * mlm_correct),
                      ops.sum(nsp_nll), ops.sum(nsp_correct), count])


def pretraining_loss_from_sums(sums):
    """Google's total loss: masked_lm_loss = Σ w·NLL / (Σ w + 1e-5) plus the mean NSP NLL."""
    return sums[0] / (sums[1] + 1e-5) + sums[3] / sums[5]


def pretraining_losses_from_sums(sums) -> dict[str, Any]:
    """Google's losses and accuracies (tf.metrics weighted means) from `pretraining_loss_sums`
    (of one batch, or added over several)."""
    return {
        "loss": pretraining_loss_from_sums(sums),
        "masked_lm_loss": sums[0] / (sums[1] + 1e-5),
        "masked_lm_accuracy": ops.divide_no_nan(sums[2], sums[1]),
        "next_sentence_loss": ops.divide_no_nan(sums[3], sums[5]),
        "next_sentence_accuracy": ops.divide_no_nan(sums[4], sums[5]),
    }


def pretraining_losses(features: Mapping[str, Any], masked_lm_logits, next_sentence_logits
                       ) -> dict[str, Any]:
    """Google's run_pretraining losses and accuracies of one batch, in float32: `loss`,
    masked_lm_loss, masked_lm_accuracy, next_sentence_loss, next_sentence_accuracy."""
    return pretraining_losses_from_sums(
        pretraining_loss_sums(features, masked_lm_logits, next_sentence_logits))


@keras.saving.register_keras_serializable(package="bert_tf")
class BertPretrainer(BertTaskModel):
    """BERT with its two pretraining heads (Google's `cls/predictions` and `cls/seq_relationship`).

    Call on Google's pretraining feature dict (`input_ids`, `input_mask`, `segment_ids`,
    `masked_lm_positions`; the TF Hub names `input_word_ids`/`input_type_ids` work too). Returns
    the encoder outputs plus float32 `masked_lm_logits` [B, M, V] and `next_sentence_logits`
    [B, 2] (label 0 = "B follows A"). `compute_pretraining_losses(features, outputs)` gives
    Google's losses and accuracies; `fit()` works on one device through `compute_loss`.

    Example:
        >>> import numpy as np
        >>> from bert_tf import BertConfig, BertPretrainer
        >>> model = BertPretrainer(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
        ...                                   num_attention_heads=2, intermediate_size=32))
        >>> f = {"input_ids": np.array([[2, 4, 9, 3]]), "input_mask": np.ones((1, 4), "int32"),
        ...      "segment_ids": np.zeros((1, 4), "int32"), "masked_lm_positions": np.array([[2]]),
        ...      "masked_lm_ids": np.array([[8]]), "masked_lm_weights": np.ones((1, 1), "float32"),
        ...      "next_sentence_labels": np.array([[0]])}
        >>> sorted(model.compute_pretraining_losses(f, model(f)))[:2]
        ['loss', 'masked_lm_accuracy']
    """

    def __init__(self, encoder: BertEncoder | BertConfig | Mapping[str, Any], **kwargs):
        kwargs.setdefault("name", "bert_pretrainer")
        super().__init__(encoder, **kwargs)
        config, dtype = self.config, self.head_dtype
        self.masked_lm = masked_lm_head(self.encoder.embeddings.word_embeddings,
                                        hidden_act=config.hidden_act,
                                        initializer_range=config.initializer_range, dtype=dtype,
                                        layer_norm_epsilon=config.layer_norm_eps)
        self.next_sentence = ClassificationHead(2, initializer_range=config.initializer_range,
                                                dtype=dtype, name="next_sentence")
        # Build everything now so `.keras` loading and checkpoint mapping see every variable.
        self.masked_lm.build((None, None, config.hidden_size))
        self.next_sentence.build((None, config.hidden_size))
        self._finish()
        self._loss_trackers = {name: keras.metrics.Mean(name=name) for name in (
            "masked_lm_loss", "masked_lm_accuracy", "next_sentence_loss",
            "next_sentence_accuracy")}

    def call(self, features, training=None):
        outputs = dict(self.encoder(encoder_inputs(features), training=training))
        positions = ops.cast(features["masked_lm_positions"], "int32")
        outputs["masked_lm_logits"] = ops.cast(
            self.masked_lm(outputs["sequence_output"], mask_positions=positions), "float32")
        outputs["next_sentence_logits"] = ops.cast(
            self.next_sentence(outputs["pooled_output"], training=training), "float32")
        return outputs

    def compute_pretraining_losses(self, features, outputs) -> dict[str, Any]:
        """Google's losses/accuracies for `outputs = self(features)`; see `pretraining_losses`."""
        return pretraining_losses(features, outputs["masked_lm_logits"],
                                  outputs["next_sentence_logits"])

    # Keras `fit()` support (one device): x is the feature dict, labels are inside it.
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses = self.compute_pretraining_losses(x, y_pred)
        for name, tracker in self._loss_trackers.items():
            tracker.update_state(losses[name])
        return losses["loss"]

    @property
    def metrics(self):
        return super().metrics + list(self._loss_trackers.values())
