"""Dropout with 16 random bits per element and one multiply: BERT's training-step dropout.

Keras' Dropout (`tf.nn.experimental.stateless_dropout`) draws a uniform float per element in the
compute dtype (one 32-bit Philox output each), compares it with the rate, multiplies the input by
1 / (1 - rate) and selects; its gradient is another select plus a multiply. Dropout was 15% of a
BERT training step's op time on CPU. This module draws one 32-bit Philox output per TWO elements
(bitcast into two 16-bit halves), turns the comparison into a mask holding 0 or the scale in the
compute dtype, and applies it with one multiply — whose gradient is one multiply by the same mask.

The drop decision `bits < threshold` with 16-bit `bits` gives a keep probability that is a
multiple of 1/65536. The threshold is chosen so that keep probability × scale, the expectation
of the output over the input, is 1 to within 2^-17, where the scale is 1 / (1 - rate) rounded to
the compute dtype. In float32 that is the rate rounded to 1/65536. In bfloat16, whose 8-bit
significand rounds 1 / 0.9 to 1.109375, the rate moves by up to 2^-9 (1 - rate) (0.1 becomes
0.0986) so that the expectation stays exact, where a bfloat16 multiply by 1 / (1 - rate) (Keras')
keeps the rate and shrinks every activation's expectation by the scale's rounding (0.16%).

Seeds are stateless, as in Keras: each call draws the next seed from the layer's
`keras.random.SeedGenerator` (so `keras.utils.set_random_seed` or the layer's `seed` make runs
reproducible), and inference (`training` false) is the identity.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

_LEVELS = 1 << 16  # 16 random bits per element


def mask_parameters(rate: float, dtype) -> tuple[int, float]:
    """(threshold, scale) for dropping with probability ~`rate` in `dtype`.

    An element is dropped when its 16 random bits are < threshold and otherwise multiplied by
    `scale` (1 / (1 - rate) rounded to `dtype`); the threshold makes (1 - threshold / 65536) *
    scale closest to 1. Returns threshold 0 (keep all) for rates under 2^-17 and 65536 (drop all)
    for rate 1.
    """
    if rate >= 1.0:
        return _LEVELS, 0.0
    np_dtype = tf.as_dtype(dtype).as_numpy_dtype
    scale = float(np.asarray(1.0 / (1.0 - rate), dtype=np_dtype))
    threshold = int(round(_LEVELS * (1.0 - 1.0 / scale)))
    return min(max(threshold, 0), _LEVELS), scale


def random_bits16(shape: tf.Tensor, static_shape: tf.TensorShape, seed: tf.Tensor) -> tf.Tensor:
    """Uniform uint16 random bits of `shape`, from half as many stateless 32-bit Philox draws.

    When the last dimension is statically even, the [..., last / 2] uint32 draw bitcasts to
    [..., last / 2, 2] uint16, which reshapes to [..., last] without a copy.
    """
    last = static_shape[-1] if static_shape.rank else None
    if last is not None and last % 2 == 0:
        half = tf.concat([shape[:-1], [last // 2]], axis=0)
        bits = tf.random.stateless_uniform(half, seed, minval=None, maxval=None,
                                           dtype=tf.uint32)
        return tf.reshape(tf.bitcast(bits, tf.uint16), shape)
    size = tf.reduce_prod(shape)
    bits = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None,
                                       dtype=tf.uint32)
    return tf.reshape(tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:size], shape)


def stateless_seed(seed_generator: keras.random.SeedGenerator) -> tf.Tensor:
    """The generator's next seed as the int32 [2] tensor stateless ops take (also under XLA)."""
    seed = tf.convert_to_tensor(seed_generator.next())
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return seed


def dropout(inputs: tf.Tensor, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """Zeroes elements of `inputs` with probability ~`rate`, scales the others to keep the mean.

    Args:
        inputs: float tensor of any shape [...] (float32, bfloat16 or float16).
        rate: Python float in [0, 1], the drop probability (see `mask_parameters`).
        seed: int32 or int64 [2] stateless seed.

    Returns:
        A tensor like `inputs`: inputs * mask with mask[i] in {0, scale}.
    """
    threshold, scale = mask_parameters(rate, inputs.dtype)
    if threshold == 0:
        return inputs
    if threshold == _LEVELS:
        return tf.zeros_like(inputs)
    with tf.name_scope("dropout"):
        bits = random_bits16(tf.shape(inputs), inputs.shape, seed)
        mask = tf.where(bits >= tf.constant(threshold, tf.uint16),
                        tf.constant(scale, inputs.dtype), tf.constant(0, inputs.dtype))
        return inputs * tf.stop_gradient(mask)


def apply(layer: keras.layers.Dropout, inputs, training=None):
    """Runs a Keras Dropout layer's dropout (its `rate` and seed generator) the cheap way above.

    Used on keras-hub's Dropout sublayers of `TransformerBlock` (their variables and seeds stay
    where they are) and by our `Dropout` layer. Identity unless `training` is true.
    """
    if not training or not layer.rate:
        return inputs
    return dropout(inputs, layer.rate, stateless_seed(layer.seed_generator))


@keras.saving.register_keras_serializable(package="bert_tf")
class Dropout(keras.layers.Dropout):
    """keras.layers.Dropout (same arguments, config and seeds) computed by `dropout` above.

    `noise_shape` is not supported (BERT never shares masks across positions).

    Example:
        >>> layer = Dropout(0.5, seed=1)
        >>> x = keras.ops.ones((2, 4))
        >>> bool((layer(x, training=False) == x).numpy().all())
        True
        >>> set(layer(x, training=True).numpy().ravel().tolist()) <= {0.0, 2.0}
        True
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if noise_shape is not None:
            raise ValueError("bert_tf.layers.Dropout does not support noise_shape")
        super().__init__(rate, seed=seed, **kwargs)

    def call(self, inputs, training=False):
        return apply(self, inputs, training)
