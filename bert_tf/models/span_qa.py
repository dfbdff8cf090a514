"""BertSpanQA: encoder + [2, H] span head → start/end logits (Google's run_squad model)."""
from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import ops

from bert_tf.config import BertConfig, as_config
from bert_tf.layers.heads import ClassificationHead
from bert_tf.models.encoder import BertEncoder, encoder_inputs

SPAN_QA_OUTPUTS = ("start_logits", "end_logits")


@keras.saving.register_keras_serializable(package="bert_tf")
class BertSpanQA(keras.Model):
    """Extractive question answering on a BertEncoder.

    Every position's final hidden vector goes through one [2, H] projection (Google's
    `cls/squad/output_weights` [2, H] and `cls/squad/output_bias` [2], no dropout, as in
    run_squad's create_model): row 0 scores the position as the answer's start, row 1 as its end.

    Args:
      encoder: the BertEncoder to put the head on (its weights are shared, not copied).
      initializer_range: stddev of the head's truncated-normal initialiser.

    Google checkpoints: `bert_tf.checkpoints.load_google_checkpoint(model, path,
    optional_groups=("span_qa",))` loads a pretrained checkpoint (the head keeps its
    initialisation) or one fine-tuned by run_squad (its `cls/squad/*` fill the head);
    `save_google_checkpoint` writes the head under those names.

    Call on encoder inputs (Google or TF Hub names, int32 [B, L]) → {"start_logits": float32
    [B, L], "end_logits": float32 [B, L]}. Padding positions are not masked: post-processing
    only reads context positions.
    """

    def __init__(self, encoder: BertEncoder, initializer_range: float | None = None, **kwargs):
        if not isinstance(encoder, BertEncoder):
            raise TypeError(f"encoder must be a BertEncoder, got {type(encoder).__name__}")
        kwargs.setdefault("name", "bert_span_qa")
        kwargs.pop("dtype", None)  # the encoder's policy is the model's
        super().__init__(**kwargs)
        self.encoder = encoder
        self.config = encoder.config
        self.initializer_range = (encoder.config.initializer_range if initializer_range is None
                                  else initializer_range)
        # The [C, H] head of the classifier with C = 2 (start, end) applied at every position.
        self.span_head = ClassificationHead(2, dropout=0.0,
                                            initializer_range=self.initializer_range,
                                            dtype=encoder.embeddings.dtype_policy,
                                            name="span_head")
        self.span_head.build((None, None, encoder.config.hidden_size))
        self.built = True

    def call(self, features, training=None):
        sequence = self.encoder(encoder_inputs(features), training=training)["sequence_output"]
        logits = ops.cast(self.span_head(sequence, training=training), "float32")  # [B, L, 2]
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

    def get_config(self) -> dict:
        return {"encoder": keras.saving.serialize_keras_object(self.encoder),
                "initializer_range": self.initializer_range, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "BertSpanQA":
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)

    @classmethod
    def from_bert_config(cls, config: BertConfig | Mapping[str, Any], dtype=None,
                         **kwargs) -> "BertSpanQA":
        """A new model with a new encoder built from a BertConfig."""
        return cls(BertEncoder(as_config(config), dtype=dtype), **kwargs)
