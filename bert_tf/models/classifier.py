"""BertClassifier: encoder + dropout + [C, H] head on the pooled output (Google's run_classifier)."""
from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.layers.heads import ClassificationHead
from bert_tf.models.base import BertTaskModel
from bert_tf.models.encoder import BertEncoder, encoder_inputs


@keras.saving.register_keras_serializable(package="bert_tf")
class BertClassifier(BertTaskModel):
    """Sentence(-pair) classifier; its head is saved as Google's top-level `output_weights` [C, H]
    and `output_bias` [C]. Call on encoder inputs (Google or TF Hub names) → float32 logits [B, C].

    Regression (e.g. STS-B): `num_classes=1`; the output [B, 1] is the score itself (train it
    with mean squared error, as `bert_tf.training.tasks.classification` does for a processor's
    `is_regression`).

    `encoder`: a BertEncoder (e.g. a pretrained one) or a BertConfig to build a new one.
    """

    def __init__(self, encoder: BertEncoder | BertConfig | Mapping[str, Any], num_classes: int,
                 dropout: float | None = None, **kwargs):
        kwargs.setdefault("name", "bert_classifier")
        super().__init__(encoder, **kwargs)
        self.num_classes = num_classes
        self.dropout = self.config.hidden_dropout_prob if dropout is None else dropout
        self.classifier = ClassificationHead(num_classes, dropout=self.dropout,
                                             initializer_range=self.config.initializer_range,
                                             dtype=self.head_dtype, name="classifier")
        self.classifier.build((None, self.config.hidden_size))
        self._finish()

    def call(self, features, training=None):
        pooled = self.encoder(encoder_inputs(features), training=training)["pooled_output"]
        return ops.cast(self.classifier(pooled, training=training), "float32")

    def _task_config(self) -> dict:
        return {"num_classes": self.num_classes, "dropout": self.dropout}
