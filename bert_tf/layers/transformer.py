"""The post-LN Transformer block of original BERT.

Reuses keras-hub's `TransformerEncoder` (post-LN when `normalize_first=False`) for its sublayers
and weights, which match Google's block when built with tanh-GELU and LayerNorm epsilon 1e-12.
This subclass changes these things:

* keras-hub has one `dropout` for everything; BERT has `attention_probs_dropout_prob` (on the
  attention probabilities) and `hidden_dropout_prob` (after each sub-layer) as separate fields
  (mended in `build`).
* The attention softmax always runs in float32, also under a mixed policy (keras' explicit
  attention path, taken whenever attention dropout > 0, runs it in the compute dtype).
* `call` computes the same block on the same variables, but lays attention and feed-forward out
  as 2-D MatMul + BiasAdd (+ Gelu) — the patterns TensorFlow's oneDNN rewrite fuses into single
  kernels — instead of keras' EinsumDense/Dense on 3-D tensors (BatchMatMul, separate AddV2 and
  GELU's elementwise chain). BERT-base forward, bfloat16, batch 8 × 128: 1.4× faster (measured in
  one script, old and new call alternating). `return_attention_scores=True` uses keras-hub's path.
* For training speed (issue 16), `call` also runs keras-hub's Dropout sublayers through
  `bert_tf.layers.dropout` (16 random bits per element, one multiply; same rates and seed
  generators), its LayerNorms through `bert_tf.layers.layer_norm` (closed-form gradient; same
  gamma/beta), and projects query, key and value with one [H, 3H] matmul in training (see
  `_fused_qkv`). bench/step_ab.py times each against its earlier form.

Masking: keras adds a large negative number (-1e9) to masked scores where Google adds -10000.
Both underflow to exactly 0 after the softmax in float32 for any row with at least one valid key,
so outputs are equal. They differ only on rows whose `input_mask` is all zeros (padding examples,
whose outputs nobody reads).
"""
from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.layers.modeling.transformer_layer_utils import (
    merge_padding_and_attention_mask,
)

from bert_tf.layers import activations, dropout, layer_norm


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

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None,
             return_attention_scores=False):
        if return_attention_scores or self.normalize_first:
            return super().call(inputs, padding_mask=padding_mask,
                                attention_mask=attention_mask, training=training,
                                return_attention_scores=return_attention_scores)
        # BERT's post-LN block on keras-hub's sublayers (same weights, same math as the parent's
        # call), with attention and feed-forward laid out for oneDNN's fused kernels.
        mask = merge_padding_and_attention_mask(inputs, padding_mask, attention_mask)
        attended = self._self_attention(inputs, mask, training)
        x = layer_norm.apply(
            self._self_attention_layer_norm,
            inputs + dropout.apply(self._self_attention_dropout, attended, training))
        y = dropout.apply(self._feedforward_dropout, self._feedforward(x), training)
        return layer_norm.apply(self._feedforward_layer_norm, x + y)

    def _self_attention(self, x, mask, training):
        """keras MultiHeadAttention's computation on its own variables, with 2-D MatMul +
        BiasAdd projections and [B, N, S, D] batch matmuls.

        The layer's EinsumDense projections run as BatchMatMul + AddV2 and its score/context
        einsums transpose on every call; 2-D MatMul + BiasAdd is what oneDNN fuses. In training
        the projections are `_fused_qkv`; otherwise `_separate_qkv` (see there why). The rest is
        `_attend`.
        """
        mha = self._self_attention_layer
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        shape = [batch, length, mha.num_heads, mha.key_dim]
        project = self._fused_qkv if training else self._separate_qkv
        query, key, value = project(tf.reshape(x, [-1, x.shape[-1]]), shape)
        return self._attend(x, query, key, value, mask, training)

    def _fused_qkv(self, flat, shape):
        """Scaled query, key and value [B, N, S, D] of `flat` [B S, H] from one [H, 3H] matmul.

        The three [H, H] kernels are concatenated into one [H, 3H] kernel inside the step
        (variables and checkpoints keep keras' three layers): one matmul with 3x wider output
        and one transpose instead of three of each, and the 1/sqrt(D) query scale is folded into
        the query kernel and bias (exact when D is a power of 4, as in every BERT). The concat
        copies 3H^2 weights per call, which a training step's forward and backward over B S
        rows amortize.
        """
        mha = self._self_attention_layer
        hidden = flat.shape[-1]
        query_scale = tf.cast(1.0 / mha.key_dim ** 0.5, flat.dtype)
        dense = (mha.query_dense, mha.key_dense, mha.value_dense)
        kernels = [tf.reshape(d.kernel, [hidden, -1]) for d in dense]
        biases = [tf.reshape(d.bias, [-1]) for d in dense]
        kernel = tf.concat([kernels[0] * query_scale] + kernels[1:], axis=1)  # [H, 3 N D]
        bias = tf.concat([biases[0] * query_scale] + biases[1:], axis=0)
        qkv = tf.nn.bias_add(tf.matmul(flat, kernel), bias)
        qkv = tf.transpose(tf.reshape(qkv, shape[:2] + [3] + shape[2:]),
                           [2, 0, 3, 1, 4])  # [3, B, N, S, D]
        return tf.unstack(qkv, axis=0)

    def _separate_qkv(self, flat, shape):
        """Scaled query, key and value [B, N, S, D] of `flat` [B S, H] from three matmuls.

        At inference a short request makes the concat of `_fused_qkv` the larger cost: BERT-base
        fp32 forward on 1 x 32 tokens took 65 ms with it and 55 ms with this form (one process,
        the two alternating); at 32 x 32 they were within noise. The query is scaled after its
        projection ([B S, H] products, no kernel copy).
        """
        mha = self._self_attention_layer
        hidden = flat.shape[-1]

        def project(dense):
            y = tf.nn.bias_add(tf.matmul(flat, tf.reshape(dense.kernel, [hidden, -1])),
                               tf.reshape(dense.bias, [-1]))
            return tf.transpose(tf.reshape(y, shape), [0, 2, 1, 3])

        query_scale = tf.cast(1.0 / mha.key_dim ** 0.5, flat.dtype)
        return (project(mha.query_dense) * query_scale, project(mha.key_dense),
                project(mha.value_dense))

    def _attend(self, x, query, key, value, mask, training):
        """Attention of [B, N, S, D] (scaled) query, key and value, then the output projection
        back to x's shape [B, S, H]. Scores, mask and softmax in float32 (masked keys get -1e9,
        as keras' masked softmax); dropout on the probabilities."""
        mha = self._self_attention_layer
        hidden = x.shape[-1]
        heads, key_dim = mha.num_heads, mha.key_dim
        scores = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32)  # [B, N, S, S]
        if mask is not None:
            scores += (1.0 - tf.cast(mask[:, tf.newaxis, :, :], tf.float32)) * -1e9
        probs = tf.cast(tf.nn.softmax(scores, axis=-1), x.dtype)
        probs = dropout.apply(mha._dropout_layer, probs, training)  # noqa: SLF001
        context = tf.reshape(tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3]),
                             [-1, heads * key_dim])
        out = mha.output_dense
        y = tf.nn.bias_add(tf.matmul(context, tf.reshape(out.kernel, [heads * key_dim, hidden])),
                           out.bias)
        return tf.reshape(y, tf.shape(x))

    def _feedforward(self, x):
        """intermediate Dense + activation + output Dense, as 2-D MatMul + BiasAdd (+ Gelu).

        keras.layers.Dense on [B, S, H] runs BatchMatMul, a separate AddV2 and GELU's chain of
        elementwise ops; TensorFlow's oneDNN graph rewrite only fuses MatMul + BiasAdd + Gelu
        (or Relu) into one kernel for 2-D MatMul. Measured on BERT-base's feed-forward,
        [32 × 128, 768 → 3072 → 768] bfloat16: 2.3× faster. Same variables, same values.
        """
        inner, outer = self._feedforward_intermediate_dense, self._feedforward_output_dense
        shape = tf.shape(x)
        h = tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), inner.kernel), inner.bias)
        if inner.activation is activations.gelu:
            h = tf.nn.gelu(h, approximate=True)
        elif inner.activation is activations.gelu_exact:
            h = tf.nn.gelu(h, approximate=False)
        else:
            h = inner.activation(h)
        out = tf.nn.bias_add(tf.matmul(h, outer.kernel), outer.bias)
        return tf.reshape(out, shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config["attention_dropout"] = self.attention_dropout
        return config
