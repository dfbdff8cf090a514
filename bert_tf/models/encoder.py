"""BertEncoder: embeddings → L post-LN Transformer blocks → pooler, with TF Hub's I/O names."""
from __future__ import annotations

from typing import Any, Mapping

import keras

from bert_tf.config import BertConfig, as_config
from bert_tf.layers.activations import get_activation
from bert_tf.layers.embeddings import BertEmbeddings
from bert_tf.layers.initializers import bert_initializer
from bert_tf.layers.transformer import TransformerBlock

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


@keras.saving.register_keras_serializable(package="bert_tf")
class BertEncoder(keras.Model):
    """The BERT encoder as a functional Keras model.

    Inputs: a dict of int32 [B, S] tensors `input_word_ids`, `input_mask` (1 = real token),
    `input_type_ids`. Outputs: a dict with `sequence_output` [B, S, H], `pooled_output` [B, H]
    (tanh(Dense(sequence_output[:, 0]))) and `encoder_outputs`, the list of the L blocks' outputs.

    Example:
        >>> import numpy as np
        >>> from bert_tf import BertConfig, BertEncoder
        >>> encoder = BertEncoder(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
        ...                                  num_attention_heads=4, intermediate_size=64))
        >>> ids = np.array([[2, 5, 7, 3, 0]], dtype="int32")
        >>> out = encoder({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
        ...                "input_type_ids": np.zeros_like(ids)})
        >>> out["sequence_output"].shape, len(out["encoder_outputs"])
        (TensorShape([1, 5, 32]), 2)
    """

    def __init__(self, config: BertConfig | Mapping[str, Any], **kwargs):
        config = as_config(config)
        dtype = kwargs.pop("dtype", None)
        trainable = kwargs.pop("trainable", True)
        kwargs.setdefault("name", "bert_encoder")
        embeddings = BertEmbeddings(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size, dropout=config.hidden_dropout_prob,
            initializer_range=config.initializer_range,
            layer_norm_epsilon=config.layer_norm_eps, dtype=dtype, name="embeddings")
        blocks = [
            TransformerBlock(
                intermediate_dim=config.intermediate_size,
                num_heads=config.num_attention_heads,
                dropout=config.hidden_dropout_prob,
                attention_dropout=config.attention_probs_dropout_prob,
                activation=get_activation(config.hidden_act),
                layer_norm_epsilon=config.layer_norm_eps,
                kernel_initializer=bert_initializer(config.initializer_range),
                dtype=dtype, name=f"layer_{i}")
            for i in range(config.num_hidden_layers)
        ]
        pooler = keras.layers.Dense(
            config.hidden_size, activation="tanh",
            kernel_initializer=bert_initializer(config.initializer_range),
            dtype=dtype, name="pooler")

        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ENCODER_INPUTS}
        x = embeddings(inputs["input_word_ids"], inputs["input_type_ids"])
        encoder_outputs = []
        for block in blocks:
            x = block(x, padding_mask=inputs["input_mask"])
            encoder_outputs.append(x)
        pooled_output = pooler(x[:, 0, :])
        super().__init__(
            inputs=inputs,
            outputs={"sequence_output": x, "pooled_output": pooled_output,
                     "encoder_outputs": encoder_outputs},
            dtype=dtype, **kwargs)
        self.config = config
        self.embeddings = embeddings
        self.transformer_blocks = blocks
        self.pooler = pooler
        # Through the setter, which also freezes the sublayers' variables (passing `trainable` to
        # the Model constructor only sets the flag).
        self.trainable = trainable

    def trainable_and_dtype_config(self) -> dict:
        """`trainable` and the layers' dtype policy, for the get_config of models holding this
        encoder: without them, a frozen encoder comes back from a `.keras` file trainable (and
        the saved optimizer state no longer matches), and one built with
        dtype="mixed_bfloat16" comes back float32. The policy is the sublayers' (a functional
        Model does not keep its `dtype` argument)."""
        return {"trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.embeddings.dtype_policy)}

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "name": self.name,
                **self.trainable_and_dtype_config()}

    @classmethod
    def from_config(cls, config: dict) -> "BertEncoder":
        return cls(**config)


# Google's feature names (run_pretraining / run_classifier records) → the encoder's TF Hub names.
_GOOGLE_TO_HUB = {"input_ids": "input_word_ids", "segment_ids": "input_type_ids"}


def encoder_inputs(features: Mapping[str, Any]) -> dict[str, Any]:
    """Picks the encoder's three inputs from a feature dict using Google's or TF Hub's names."""
    out = {}
    for name in ENCODER_INPUTS:
        if name in features:
            out[name] = features[name]
    for google, hub in _GOOGLE_TO_HUB.items():
        if hub not in out and google in features:
            out[hub] = features[google]
    missing = [n for n in ENCODER_INPUTS if n not in out]
    if missing:
        raise KeyError(f"features lack {missing} (Google names: input_ids, input_mask, "
                       f"segment_ids; got {sorted(features)})")
    return {k: keras.ops.cast(v, "int32") for k, v in out.items()}
