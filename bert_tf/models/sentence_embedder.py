"""SentenceEmbedder: strings → one vector per text (sentence-transformers' Pooling + Normalize).

Example:
    >>> import bert_tf
    >>> embedder = bert_tf.from_pretrained("all-MiniLM-L6-v2/").model  # doctest: +SKIP
    >>> embedder(["A man is eating food.", "A man rides a horse."]).shape  # doctest: +SKIP
    TensorShape([2, 384])
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from bert_tf.models.encoder import BertEncoder
from bert_tf.text.preprocessor import BertPreprocessor

# sentence-transformers' pooling modes, in the order it concatenates them when several are on.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")


def pool_tokens(sequence_output, input_mask, pooling_modes: Sequence[str] = ("mean",)):
    """sentence-transformers' Pooling on BERT's token vectors.

    Args:
        sequence_output: float [B, S, H] token vectors.
        input_mask: int [B, S], 1 for real tokens ([CLS] and [SEP] included, as in
            sentence-transformers).
        pooling_modes: any of POOLING_MODES; several are concatenated in POOLING_MODES order.
            "mean" = sum of real tokens / max(count, 1e-9); "max" = max over real tokens (padding
            set to -1e9 first); "cls" = the first token; "mean_sqrt_len_tokens" = sum / sqrt(count).
    Returns:
        float32 [B, H * len(pooling_modes)].
    """
    x = ops.cast(sequence_output, "float32")
    mask = ops.cast(input_mask, "float32")[:, :, None]  # [B, S, 1]
    summed = ops.sum(x * mask, axis=1)
    count = ops.maximum(ops.sum(mask, axis=1), 1e-9)
    pooled = {
        "cls": lambda: x[:, 0],
        "max": lambda: ops.max(ops.where(mask > 0, x, -1e9), axis=1),
        "mean": lambda: summed / count,
        "mean_sqrt_len_tokens": lambda: summed / ops.sqrt(count),
    }
    parts = [pooled[mode]() for mode in POOLING_MODES if mode in pooling_modes]
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)


def l2_normalize(x):
    """x / max(||x||_2, 1e-12) per row (torch.nn.functional.normalize, as sentence-transformers'
    Normalize module)."""
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, 1e-12)


@keras.saving.register_keras_serializable(package="bert_tf")
class SentenceEmbedder(keras.Model):
    """A BertEncoder and a pooling of its token vectors into one sentence embedding.

    Args:
        encoder: the BertEncoder (its weights are this model's weights).
        preprocessor: the BertPreprocessor for string input (vocab, casing, max_seq_length);
            optional when the model is only called on packed encoder inputs.
        pooling_modes: see `pool_tokens` (sentence-transformers' default: mean).
        normalize: L2-normalise the embeddings (sentence-transformers' Normalize module).

    Call with strings ([B] tf.string tensor or a list of str) or with the encoder's input dict
    (`input_word_ids`, `input_mask`, `input_type_ids`) → float32 `embedding` [B, D].
    """

    def __init__(self, encoder: BertEncoder | dict, preprocessor: BertPreprocessor | dict | None
                 = None, pooling_modes: Sequence[str] = ("mean",), normalize: bool = False,
                 **kwargs):
        kwargs.setdefault("name", "sentence_embedder")
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        unknown = [m for m in pooling_modes if m not in POOLING_MODES]
        if unknown or not pooling_modes:
            raise ValueError(f"pooling_modes must be a non-empty subset of {POOLING_MODES}, got "
                             f"{list(pooling_modes)}")
        self.encoder = encoder
        self.preprocessor = preprocessor
        self.config = encoder.config
        self.pooling_modes = tuple(m for m in POOLING_MODES if m in pooling_modes)
        self.normalize = bool(normalize)
        self.built = True

    @property
    def embedding_size(self) -> int:
        return self.config.hidden_size * len(self.pooling_modes)

    def embed(self, inputs, training=None):
        """Embeddings [B, D] from packed encoder inputs."""
        out = self.encoder(inputs, training=training)
        embedding = pool_tokens(out["sequence_output"], inputs["input_mask"], self.pooling_modes)
        return l2_normalize(embedding) if self.normalize else embedding

    def __call__(self, inputs, *args, **kwargs):
        # Strings are packed before Keras sees them (Keras rejects lists of str as inputs).
        if not isinstance(inputs, dict):
            if self.preprocessor is None:
                raise ValueError("this SentenceEmbedder has no preprocessor: call it on encoder "
                                 "inputs, or build it with one to embed strings")
            inputs = self.preprocessor(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None):
        return self.embed(inputs, training=training)

    def get_config(self) -> dict:
        return {"encoder": keras.saving.serialize_keras_object(self.encoder),
                "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)
                if self.preprocessor is not None else None,
                "pooling_modes": list(self.pooling_modes), "normalize": self.normalize,
                "name": self.name}
