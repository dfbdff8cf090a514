"""BertClassifier: encoder + dropout + [C, H] head on the pooled output (Google's run_classifier)."""
from __future__ import annotations

import os
from typing import Any, Mapping

import keras
from keras import ops

from bert_tf.config import BertConfig, as_config
from bert_tf.layers.heads import ClassificationHead
from bert_tf.models.encoder import BertEncoder, encoder_inputs


@keras.saving.register_keras_serializable(package="bert_tf")
class BertClassifier(keras.Model):
    """Sentence(-pair) classifier; its head is saved as Google's top-level `output_weights` [C, H]
    and `output_bias` [C]. Call on encoder inputs (Google or TF Hub names) → float32 logits [B, C].

    Regression (e.g. STS-B): `num_classes=1`; the output [B, 1] is the score itself (train it
    with mean squared error, as `bert_tf.training.finetune` does for a processor's
    `is_regression`).
    """

    def __init__(self, config: BertConfig | Mapping[str, Any], num_classes: int,
                 dropout: float | None = None, **kwargs):
        config = as_config(config)
        kwargs.setdefault("name", "bert_classifier")
        dtype = kwargs.pop("dtype", None)
        trainable = kwargs.pop("trainable", True)
        super().__init__(dtype=dtype, **kwargs)
        self.config = config
        self.num_classes = num_classes
        self.dropout = config.hidden_dropout_prob if dropout is None else dropout
        self.encoder = BertEncoder(config, dtype=dtype)
        self.classifier = ClassificationHead(num_classes, dropout=self.dropout,
                                             initializer_range=config.initializer_range,
                                             dtype=dtype, name="classifier")
        self.classifier.build((None, config.hidden_size))
        self.built = True
        self.trainable = trainable  # the setter also freezes the sublayers (see BertEncoder)

    def call(self, features, training=None):
        pooled = self.encoder(encoder_inputs(features), training=training)["pooled_output"]
        return ops.cast(self.classifier(pooled, training=training), "float32")

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "num_classes": self.num_classes,
                "dropout": self.dropout, "name": self.name,
                **self.encoder.trainable_and_dtype_config()}

    @classmethod
    def from_config(cls, config: dict) -> "BertClassifier":
        return cls(**config)

    @classmethod
    def from_google_checkpoint(cls, path: str | os.PathLike, num_classes: int,
                               config: BertConfig | None = None, strict: bool = True,
                               **kwargs) -> "BertClassifier":
        """Loads a pretrained checkpoint (the head stays newly initialised) or a fine-tuned one
        from Google's run_classifier (its `output_weights`/`output_bias` fill the head)."""
        from bert_tf.checkpoints.google import build_from_google_checkpoint

        return build_from_google_checkpoint(cls, path, config=config, strict=strict,
                                            optional_groups=("classifier",),
                                            num_classes=num_classes, **kwargs)
