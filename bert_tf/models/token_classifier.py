"""BertTokenClassifier: a BertEncoder + dropout + a [num_labels, H] head on every position (NER).

Google's checkpoint naming for the head is run_classifier's: top-level `output_weights`
[num_labels, H] and `output_bias` [num_labels] (the layout the TF1 BERT NER ports use as well),
so `save_google_checkpoint` / `load_google_checkpoint` handle it through the `classifier` entry
of `bert_tf.checkpoints.names.google_name_table`. The label names live in labels.txt beside the
checkpoint (`bert_tf.data.conll.write_labels`).

Loading a Google checkpoint (pretrained: the head stays newly initialised; or one saved from this
model: the head comes back too) goes through the checkpoints layer, which sits above the models:

    >>> from bert_tf.checkpoints import load_google_checkpoint  # doctest: +SKIP
    >>> model = BertTokenClassifier(BertEncoder(config), num_labels=len(labels))  # doctest: +SKIP
    >>> load_google_checkpoint(model, "uncased_L-12_H-768_A-12",  # doctest: +SKIP
    ...                        optional_groups=("classifier",))
"""
from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.layers.heads import ClassificationHead
from bert_tf.models.base import BertTaskModel
from bert_tf.models.encoder import BertEncoder, encoder_inputs


def token_classification_loss(features, logits) -> dict:
    """The loss and accuracy over the scored positions, in float32.

    loss = sum(w * NLL) / (sum(w) + 1e-5), with w = `label_weights` [B, L] (1 at the first piece
    of each word in its max-context window, 0 elsewhere; `bert_tf.data.token_alignment`) and
    NLL the negative log-likelihood of `label_ids` [B, L] under `logits` [B, L, C];
    accuracy = the weighted fraction of positions whose argmax is the label.
    """
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    ids = ops.cast(features["label_ids"], "int32")
    weights = ops.cast(features["label_weights"], "float32")
    nll = -ops.squeeze(ops.take_along_axis(log_probs, ids[..., None], axis=-1), -1)
    weight_sum = ops.sum(weights)
    correct = ops.cast(ops.equal(ops.argmax(log_probs, -1), ids), "float32")
    return {"loss": ops.sum(weights * nll) / (weight_sum + 1e-5),
            "accuracy": ops.divide_no_nan(ops.sum(weights * correct), weight_sum)}


@keras.saving.register_keras_serializable(package="bert_tf")
class BertTokenClassifier(BertTaskModel):
    """Per-token classifier over a BertEncoder's `sequence_output`.

    Args:
        encoder: a `BertEncoder` (pretrained or not; its dtype policy is the head's too), or a
            BertConfig / dict to build a new one.
        num_labels: the number of tags (e.g. len(labels.txt)).
        dropout: dropout before the head; default the encoder config's hidden_dropout_prob.

    Call on encoder inputs (Google or TF Hub names, int32 [B, L]) → float32 logits
    [B, L, num_labels]. Positions that are padding or not a word's first piece get logits too;
    the loss and the decoding weight them out (see `bert_tf.data.token_alignment`).
    """

    def __init__(self, encoder: BertEncoder | BertConfig | Mapping[str, Any], num_labels: int,
                 dropout: float | None = None, **kwargs):
        kwargs.setdefault("name", "bert_token_classifier")
        super().__init__(encoder, **kwargs)
        self.num_labels = int(num_labels)
        self.dropout = self.config.hidden_dropout_prob if dropout is None else float(dropout)
        self.classifier = ClassificationHead(self.num_labels, dropout=self.dropout,
                                             initializer_range=self.config.initializer_range,
                                             dtype=self.head_dtype, name="classifier")
        self.classifier.build((None, None, self.config.hidden_size))
        self._finish()

    def call(self, features, training=None):
        sequence_output = self.encoder(encoder_inputs(features),
                                       training=training)["sequence_output"]
        return ops.cast(self.classifier(sequence_output, training=training), "float32")

    def _task_config(self) -> dict:
        return {"num_labels": self.num_labels, "dropout": self.dropout}
