"""Output heads: the tied masked-LM head and the `[C, H]` classification head (NSP and tasks)."""
from __future__ import annotations

import keras
import keras_hub
from keras import ops

from bert_tf.layers.activations import get_activation
from bert_tf.layers.dropout import Dropout
from bert_tf.layers.initializers import bert_initializer


def masked_lm_head(word_embeddings: keras.layers.ReversibleEmbedding, hidden_act: str = "gelu",
                   initializer_range: float = 0.02, name: str = "masked_lm",
                   dtype=None, layer_norm_epsilon: float = 1e-12
                   ) -> keras_hub.layers.MaskedLMHead:
    """BERT's masked-LM head: keras-hub's MaskedLMHead set to BERT's numerics.

    gather(masked_lm_positions) → Dense(H, hidden_act) → LayerNorm(layer_norm_epsilon; Google's
    is 1e-12) → x @ word_embeddings^T + output_bias. keras-hub's defaults (erf GELU via "relu"/"gelu" strings, eps 1e-5) differ from
    Google's, hence the explicit settings. Returns logits [B, M, V].
    """
    head = keras_hub.layers.MaskedLMHead(
        token_embedding=word_embeddings,
        intermediate_activation=get_activation(hidden_act),
        layer_norm_epsilon=layer_norm_epsilon,
        kernel_initializer=bert_initializer(initializer_range),
        activation=None,
        dtype=dtype,
        name=name,
    )
    # keras-hub turns autocast off for this layer and then adds its float32 `output_bias` to the
    # compute-dtype logits; under a mixed policy inside a model that fails (bfloat16 + float32).
    # With autocast on, the bias is read in the compute dtype like every other weight.
    head.autocast = True
    return head


@keras.saving.register_keras_serializable(package="bert_tf")
class ClassificationHead(keras.layers.Layer):
    """Dropout then `x @ output_weights^T + output_bias`, weights stored [num_classes, H].

    This is Google's layout for both the next-sentence head (`cls/seq_relationship/output_weights`,
    [2, H]) and run_classifier's task head (top-level `output_weights`, [C, H]). keras-hub has no
    NSP head, and a Dense kernel would be stored transposed ([H, C]); keeping Google's layout makes
    the checkpoint mapping a plain copy.

    Example:
        >>> head = ClassificationHead(num_classes=2)
        >>> head(keras.ops.ones((3, 8))).shape
        (3, 2)
    """

    def __init__(self, num_classes: int, dropout: float = 0.0, initializer_range: float = 0.02,
                 **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.dropout_layer = Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        hidden_size = input_shape[-1]
        self.output_weights = self.add_weight(
            name="output_weights", shape=(self.num_classes, hidden_size),
            initializer=bert_initializer(self.initializer_range))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.num_classes,),
                                           initializer="zeros")
        self.built = True

    def call(self, pooled_output, training=None):
        x = self.dropout_layer(pooled_output, training=training)
        weights = ops.cast(self.output_weights, x.dtype)
        return ops.matmul(x, ops.transpose(weights)) + ops.cast(self.output_bias, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout=self.dropout,
                      initializer_range=self.initializer_range)
        return config
