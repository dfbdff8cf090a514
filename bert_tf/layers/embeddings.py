"""BERT's embedding layer: word + position + token type, then LayerNorm and dropout."""
from __future__ import annotations

import keras
import keras_hub

from bert_tf.layers import dropout as dropout_lib
from bert_tf.layers import layer_norm as layer_norm_lib
from bert_tf.layers.initializers import bert_initializer


@keras.saving.register_keras_serializable(package="bert_tf")
class BertEmbeddings(keras.layers.Layer):
    """Sum of word, position (first S rows) and token-type embeddings, LayerNorm, dropout.

    The word table is keras' `ReversibleEmbedding`, so the masked-LM head can reuse it as the tied
    output projection; positions come from keras-hub's `PositionEmbedding` (a learned [P, H] table
    sliced to the input length, exactly BERT's).

    Call: `embeddings(input_word_ids, input_type_ids)` with int [B, S] tensors → [B, S, H].
    """

    def __init__(self, vocab_size: int, hidden_size: int, max_position_embeddings: int,
                 type_vocab_size: int, dropout: float = 0.1, initializer_range: float = 0.02,
                 layer_norm_epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.layer_norm_epsilon = layer_norm_epsilon
        self.word_embeddings = keras.layers.ReversibleEmbedding(
            vocab_size, hidden_size, tie_weights=True,
            embeddings_initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy, name="word_embeddings")
        self.position_embeddings = keras_hub.layers.PositionEmbedding(
            sequence_length=max_position_embeddings,
            initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy, name="position_embeddings")
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size, hidden_size,
            embeddings_initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy, name="token_type_embeddings")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
        self.dropout_layer = dropout_lib.Dropout(dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_word_ids_shape, input_type_ids_shape=None):
        self.word_embeddings.build(input_word_ids_shape)
        self.token_type_embeddings.build(input_word_ids_shape)
        hidden_shape = tuple(input_word_ids_shape) + (self.hidden_size,)
        self.position_embeddings.build(hidden_shape)
        self.layer_norm.build(hidden_shape)
        self.built = True

    def call(self, input_word_ids, input_type_ids, training=None):
        words = self.word_embeddings(input_word_ids)
        x = words + self.position_embeddings(words) + self.token_type_embeddings(input_type_ids)
        return self.dropout_layer(layer_norm_lib.apply(self.layer_norm, x), training=training)

    def compute_output_shape(self, input_word_ids_shape, input_type_ids_shape=None):
        return tuple(input_word_ids_shape) + (self.hidden_size,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      max_position_embeddings=self.max_position_embeddings,
                      type_vocab_size=self.type_vocab_size, dropout=self.dropout,
                      initializer_range=self.initializer_range,
                      layer_norm_epsilon=self.layer_norm_epsilon)
        return config
