"""The post-LN Transformer block of original BERT.

Reuses keras-hub's `TransformerEncoder` (post-LN when `normalize_first=False`), which matches
Google's block when built with tanh-GELU and LayerNorm epsilon 1e-12. It differs from BERT in two
ways that this subclass mends, in `build`, without touching its weights or call path:

* keras-hub has one `dropout` for everything; BERT has `attention_probs_dropout_prob` (on the
  attention probabilities) and `hidden_dropout_prob` (after each sub-layer) as separate fields.
* Under a mixed policy its explicit-attention path (taken whenever attention dropout > 0, i.e. in
  training) runs the softmax in the compute dtype (bfloat16/float16); we keep it in float32.
  The fused path Keras takes when attention dropout is 0 already runs its softmax in float32.

Masking: keras adds a large negative number (-1e9) to masked scores where Google adds -10000.
Both underflow to exactly 0 after the softmax in float32 for any row with at least one valid key,
so outputs are equal. They differ only on rows whose `input_mask` is all zeros (padding examples,
whose outputs nobody reads).
"""
from __future__ import annotations

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="bert_tf")
class TransformerBlock(keras_hub.layers.TransformerEncoder):
    """keras-hub's TransformerEncoder with BERT's separate attention dropout and a float32 softmax.

    Args:
        intermediate_dim: size of the feed-forward layer (BERT's intermediate_size).
        num_heads: number of attention heads.
        dropout: BERT's hidden_dropout_prob (after attention output and feed-forward output).
        attention_dropout: BERT's attention_probs_dropout_prob; defaults to `dropout`.
        **kwargs: passed to keras_hub.layers.TransformerEncoder (activation, layer_norm_epsilon,
            kernel_initializer, name, dtype...).

    Call: `block(x, padding_mask=input_mask)` with x [B, S, H] and input_mask [B, S] (1 = attend).
    """

    def __init__(self, intermediate_dim: int, num_heads: int, dropout: float = 0.0,
                 attention_dropout: float | None = None, **kwargs):
        super().__init__(intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
                         **kwargs)
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout

    def build(self, inputs_shape):
        hidden_dropout = self.dropout
        # keras-hub passes self.dropout to MultiHeadAttention (attention-probs dropout) and to both
        # residual-branch Dropout layers; build with the attention rate, then set the others back.
        self.dropout = self.attention_dropout
        try:
            super().build(inputs_shape)
        finally:
            self.dropout = hidden_dropout
        self._self_attention_dropout.rate = hidden_dropout
        self._feedforward_dropout.rate = hidden_dropout
        self._self_attention_layer._softmax.dtype_policy = "float32"

    def get_config(self) -> dict:
        config = super().get_config()
        config["attention_dropout"] = self.attention_dropout
        return config
