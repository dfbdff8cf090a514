"""bert_tf.layers.layer_norm against Keras' LayerNormalization: values and gradients."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.layers import layer_norm as layer_norm_lib


def _keras_layer(hidden, dtype=None, seed=0, **kwargs):
    layer = keras.layers.LayerNormalization(epsilon=1e-12, dtype=dtype, **kwargs)
    layer.build((None, hidden))
    rng = np.random.RandomState(seed)
    layer.gamma.assign(rng.normal(1.0, 0.3, size=hidden).astype("float32"))
    layer.beta.assign(rng.normal(0.0, 0.3, size=hidden).astype("float32"))
    return layer


def _inputs(shape, seed=1):
    # An offset and uneven scales per row: the statistics must be computed stably.
    rng = np.random.RandomState(seed)
    x = rng.normal(size=shape) * rng.uniform(0.1, 5.0, size=shape[:-1] + (1,)) + 7.0
    return tf.constant(x.astype("float32"))


def _values_and_grads(fn, layer, x, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * dy)
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [y] + grads


def test_values_and_gradients_equal_keras_in_float32():
    layer = _keras_layer(16)
    x = _inputs((3, 7, 16))
    dy = tf.constant(np.random.RandomState(2).normal(size=(3, 7, 16)).astype("float32"))
    ours = _values_and_grads(lambda t: layer_norm_lib.apply(layer, t), layer, x, dy)
    ref = _values_and_grads(layer, layer, x, dy)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), ours, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    assert ours[0].dtype == tf.float32


def test_bfloat16_input_float32_statistics():
    """Under mixed_bfloat16: float32 statistics and arithmetic, one rounding of the output."""
    layer = _keras_layer(32, dtype="mixed_bfloat16")
    x = tf.cast(_inputs((4, 5, 32)), tf.bfloat16)
    ours = layer_norm_lib.apply(layer, x)
    assert ours.dtype == tf.bfloat16
    exact = _keras_layer(32)(tf.cast(x, tf.float32)).numpy()
    # Within half a bfloat16 ulp of the float32 result (plus float32 noise at ties).
    np.testing.assert_allclose(tf.cast(ours, tf.float32).numpy(), exact, rtol=2 ** -8, atol=1e-6)
    keras_bf16 = tf.cast(layer(x), tf.float32).numpy()
    assert np.mean(tf.cast(ours, tf.float32).numpy() == keras_bf16) > 0.99
    dy = tf.ones_like(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer_norm_lib.apply(layer, x)
    dx = tape.gradient(y, x, output_gradients=tf.cast(dy, tf.bfloat16))
    assert dx.dtype == tf.bfloat16


def test_jit_compiled_equals_eager():
    layer = _keras_layer(8)
    x = _inputs((5, 8))
    fn = tf.function(lambda t: layer_norm_lib.apply(layer, t), jit_compile=True)
    np.testing.assert_allclose(fn(x).numpy(), layer_norm_lib.apply(layer, x).numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"axis": 1}, {"center": False}, {"scale": False}])
def test_other_layer_norms_run_their_own_call(kwargs):
    layer = keras.layers.LayerNormalization(epsilon=1e-3, **kwargs)
    x = _inputs((2, 4, 6))
    np.testing.assert_array_equal(layer_norm_lib.apply(layer, x).numpy(), layer(x).numpy())


def test_pure_bfloat16_policy_variables():
    """Under dtype="bfloat16" gamma and beta are bfloat16 variables (SavedModel bf16 export)."""
    layer = _keras_layer(16, dtype="bfloat16")
    assert layer.gamma.dtype == "bfloat16"
    x = tf.cast(_inputs((3, 16)), tf.bfloat16)
    ours = tf.cast(layer_norm_lib.apply(layer, x), tf.float32).numpy()
    np.testing.assert_allclose(ours, tf.cast(layer(x), tf.float32).numpy(), rtol=2 ** -7,
                               atol=1e-2)
