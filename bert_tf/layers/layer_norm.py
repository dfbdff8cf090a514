"""BERT's LayerNorm over the last axis with float32 statistics, in fewer passes for training.

Keras' LayerNormalization computes mean and variance with `tf.nn.moments` and lets autodiff
differentiate the chain (moments, rsqrt, scale and shift): about a dozen passes over the
activations in the backward step. This module computes the same function on the same
`gamma`/`beta` variables with the standard closed-form gradient,

    x_hat = (x - mean) * inv,  inv = 1 / sqrt(var + epsilon),  y = x_hat * gamma + beta
    dx = inv * (g - mean(g) - x_hat * mean(g * x_hat)),  g = dy * gamma
    dgamma = sum(dy * x_hat),  dbeta = sum(dy)   (sums over all but the last axis)

with statistics and arithmetic in float32 whatever the input dtype (as Keras), the output cast
back to the input's dtype.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """Layer normalization of `x` over its last axis.

    Args:
        x: float tensor [..., H] (float32, bfloat16 or float16).
        gamma: [H] scale (float32, or the policy's dtype under a pure low-precision policy).
        beta: [H] offset (likewise).
        epsilon: added to the variance (BERT: 1e-12).

    Returns:
        [..., H] in x's dtype.
    """
    dtype = x.dtype

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        mean = tf.reduce_mean(x32, axis=-1, keepdims=True)
        centered = x32 - mean
        inv = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
                            + epsilon)
        x_hat = centered * inv
        y = tf.cast(x_hat * gamma + beta, dtype)

        def grad(dy):
            dy = tf.cast(dy, tf.float32)
            g = dy * gamma
            mean_g = tf.reduce_mean(g, axis=-1, keepdims=True)
            mean_gx = tf.reduce_mean(g * x_hat, axis=-1, keepdims=True)
            dx = (g - mean_g - x_hat * mean_gx) * inv
            rows = tf.reshape(dy, [-1, dy.shape[-1]])
            dgamma = tf.reduce_sum(rows * tf.reshape(x_hat, [-1, dy.shape[-1]]), axis=0)
            return tf.cast(dx, dtype), dgamma, tf.reduce_sum(rows, axis=0)

        return y, grad

    with tf.name_scope("layer_norm"):
        # tf.cast: the variables are float32 under float32 and mixed policies (a no-op), the
        # compute dtype under a pure bfloat16/float16 policy.
        return normalize(x, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32))


def apply(layer: keras.layers.LayerNormalization, x):
    """`layer(x)` for a Keras LayerNormalization over the last axis, computed by `layer_norm`.

    The layer's variables (gamma, beta: float32 also under a mixed policy), epsilon and output
    dtype (its compute dtype) are used; a layer without scale/center or over other axes runs
    its own call.
    """
    axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
    last = axis in (-1, (-1,), len(x.shape) - 1, (len(x.shape) - 1,))
    if not (last and layer.scale and layer.center) or getattr(layer, "rms_scaling", False):
        return layer(x)
    if not layer.built:
        layer.build(x.shape)
    y = layer_norm(x, layer.gamma, layer.beta, layer.epsilon)
    return tf.cast(y, layer.compute_dtype)
