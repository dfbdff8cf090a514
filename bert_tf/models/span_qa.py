"""BertSpanQA: encoder + [2, H] span head → start/end logits (Google's run_squad model)."""
from __future__ import annotations

from typing import Any, Mapping

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.layers.heads import ClassificationHead
from bert_tf.models.base import BertTaskModel
from bert_tf.models.encoder import BertEncoder, encoder_inputs

SPAN_QA_OUTPUTS = ("start_logits", "end_logits")


@keras.saving.register_keras_serializable(package="bert_tf")
class BertSpanQA(BertTaskModel):
    """Extractive question answering on a BertEncoder.

    Every position's final hidden vector goes through one [2, H] projection (Google's
    `cls/squad/output_weights` [2, H] and `cls/squad/output_bias` [2], no dropout, as in
    run_squad's create_model): row 0 scores the position as the answer's start, row 1 as its end.

    Args:
      encoder: the BertEncoder to put the head on (its weights are shared, not copied), or a
        BertConfig / dict to build a new encoder from.
      initializer_range: stddev of the head's truncated-normal initialiser (default: the
        config's).

    Google checkpoints: `bert_tf.checkpoints.load_google_checkpoint(model, path,
    optional_groups=("span_qa",))` loads a pretrained checkpoint (the head keeps its
    initialisation) or one fine-tuned by run_squad (its `cls/squad/*` fill the head);
    `save_google_checkpoint` writes the head under those names.

    Call on encoder inputs (Google or TF Hub names, int32 [B, L]) → {"start_logits": float32
    [B, L], "end_logits": float32 [B, L]}. Padding positions are not masked: post-processing
    only reads context positions.
    """

    def __init__(self, encoder: BertEncoder | BertConfig | Mapping[str, Any],
                 initializer_range: float | None = None, **kwargs):
        if not isinstance(encoder, (BertEncoder, BertConfig, Mapping)):
            raise TypeError(f"encoder must be a BertEncoder (or a BertConfig), got "
                            f"{type(encoder).__name__}")
        kwargs.setdefault("name", "bert_span_qa")
        super().__init__(encoder, **kwargs)
        self.initializer_range = (self.config.initializer_range if initializer_range is None
                                  else initializer_range)
        # The [C, H] head of the classifier with C = 2 (start, end) applied at every position.
        self.span_head = ClassificationHead(2, dropout=0.0,
                                            initializer_range=self.initializer_range,
                                            dtype=self.head_dtype, name="span_head")
        self.span_head.build((None, None, self.config.hidden_size))
        self._finish()

    def call(self, features, training=None):
        sequence = self.encoder(encoder_inputs(features), training=training)["sequence_output"]
        logits = ops.cast(self.span_head(sequence, training=training), "float32")  # [B, L, 2]
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

    def _task_config(self) -> dict:
        return {"initializer_range": self.initializer_range}

    @classmethod
    def from_bert_config(cls, config: BertConfig | Mapping[str, Any], dtype=None,
                         **kwargs) -> "BertSpanQA":
        """A new model with a new encoder built from a BertConfig."""
        return cls(config, dtype=dtype, **kwargs)
