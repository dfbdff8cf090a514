"""bert_tf.layers.dropout: keep rate, expectation, seeds, inference identity, gradient, .keras."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.layers import dropout as dropout_lib
from bert_tf.layers.dropout import Dropout, dropout, mask_parameters

SEED = tf.constant([3, 7], tf.int32)


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.9, 1e-4])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_mask_parameters_keep_the_expectation(rate, dtype):
    threshold, scale = mask_parameters(rate, dtype)
    keep = 1.0 - threshold / 65536
    assert abs(keep * scale - 1.0) <= 2 ** -17 * scale + 1e-12
    assert scale == float(np.asarray(1.0 / (1.0 - rate), tf.as_dtype(dtype).as_numpy_dtype))
    if dtype == "float32":  # the rate itself, to 1/65536
        assert threshold == round(rate * 65536)
    else:  # the scale's rounding (relative error <= 2^-9 in bfloat16) moves the rate a little
        assert abs(threshold / 65536 - rate) <= 2 ** -9 * (1 - rate) + 1 / 65536


def test_mask_parameters_edges():
    assert mask_parameters(1.0, "float32") == (65536, 0.0)
    assert mask_parameters(1e-7, "float32")[0] == 0
    x = tf.ones([4, 6])
    assert dropout(x, 1e-7, SEED) is x
    np.testing.assert_array_equal(dropout(x, 1.0, SEED).numpy(), np.zeros([4, 6]))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_keep_rate_and_expectation_within_statistical_bounds(dtype):
    rate, n = 0.1, 1024 * 512
    x = tf.ones([1024, 512], dtype)
    y = dropout(x, rate, SEED)
    assert y.dtype == x.dtype and y.shape == x.shape
    threshold, scale = mask_parameters(rate, dtype)
    values = y.numpy().astype(np.float64)
    assert set(np.unique(values).tolist()) == {0.0, scale}
    keep = 1.0 - threshold / 65536
    sigma = math.sqrt(keep * (1 - keep) / n)
    assert abs((values != 0).mean() - keep) < 5 * sigma
    # Expectation of the output is the input's (1 up to the statistical error of the mean).
    assert abs(values.mean() - 1.0) < 5 * sigma * scale
    # Both 16-bit halves of each 32-bit draw are used and unbiased: even and odd columns.
    for half in (values[:, 0::2], values[:, 1::2]):
        assert abs((half != 0).mean() - keep) < 5 * sigma * math.sqrt(2)
    # Neighbouring elements (the two halves of one draw) are independent.
    pairs = (values[:, 0::2] != 0) & (values[:, 1::2] != 0)
    assert abs(pairs.mean() - keep ** 2) < 5 * math.sqrt(keep ** 2 * (1 - keep ** 2) / (n / 2))


def test_odd_and_dynamic_shapes():
    x = tf.ones([3, 7, 5])
    y = dropout(x, 0.5, SEED)
    assert y.shape == x.shape
    assert set(np.unique(y.numpy()).tolist()) <= {0.0, 2.0}
    fn = tf.function(lambda t: dropout(t, 0.5, SEED),
                     input_signature=[tf.TensorSpec([None, None], tf.float32)])
    np.testing.assert_array_equal(fn(tf.ones([6, 8])).numpy(),
                                  dropout(tf.ones([6, 8]), 0.5, SEED).numpy())
    assert fn(tf.ones([3, 5])).shape == (3, 5)


def test_deterministic_given_the_seed_and_xla_equal():
    x = tf.random.stateless_normal([16, 64], [1, 1])
    a, b = dropout(x, 0.3, SEED), dropout(x, 0.3, SEED)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), dropout(x, 0.3, tf.constant([3, 8])).numpy())
    xla = tf.function(lambda t: dropout(t, 0.3, SEED), jit_compile=True)
    np.testing.assert_array_equal(xla(x).numpy(), a.numpy())


def test_gradient_is_the_mask():
    x = tf.random.stateless_normal([8, 32], [2, 2])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = dropout(x, 0.4, SEED)
    grad = tape.gradient(y, x).numpy()
    mask = (y.numpy() / x.numpy())
    np.testing.assert_allclose(grad, mask, rtol=1e-6)
    assert set(np.unique(grad).tolist()) == {0.0, mask_parameters(0.4, "float32")[1]}


def test_layer_seeds_training_flag_and_keras_file(tmp_path):
    x = np.ones((4, 64), "float32")
    layer = Dropout(0.5, seed=11)
    for training in (False, None):
        np.testing.assert_array_equal(layer(x, training=training).numpy(), x)
    first, second = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.array_equal(first, second)  # the seed generator advances
    again = Dropout(0.5, seed=11)  # same seed, same sequence of masks
    np.testing.assert_array_equal(again(x, training=True).numpy(), first)
    assert set(np.unique(first).tolist()) == {0.0, 2.0}

    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(3)(Dropout(0.2, seed=5, name="drop")(inputs)))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    drop = loaded.get_layer("drop")
    assert type(drop) is Dropout and drop.rate == 0.2 and drop.seed == 5
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="noise_shape"):
        Dropout(0.1, noise_shape=(1, 64))


def test_apply_uses_a_keras_dropout_layers_rate_and_seed():
    layer = keras.layers.Dropout(0.25, seed=4)
    x = tf.ones([8, 128])
    np.testing.assert_array_equal(dropout_lib.apply(layer, x, False).numpy(), x.numpy())
    y = dropout_lib.apply(layer, x, True).numpy()
    assert set(np.unique(y).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (y == 0).mean() < 0.35
