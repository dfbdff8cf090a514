"""bert_tf.training.optimization against NumPy versions of Google's optimization.py (and LAMB)."""
import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig, BertPretrainer
from bert_tf.training import (DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY, LAMB, AdamWeightDecay,
                              WarmupPolynomialDecay, create_optimizer, variable_path)

EXCLUDE = DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY


# ----------------------------------------------------------------------------- NumPy references

def np_schedule(step, init_lr, num_train_steps, num_warmup_steps, end_lr=0.0, power=1.0):
    """Google: polynomial_decay on the global step, replaced by the linear warmup before it."""
    p = min(step, num_train_steps) / num_train_steps
    decayed = (init_lr - end_lr) * (1.0 - p) ** power + end_lr
    if num_warmup_steps and step < num_warmup_steps:
        return init_lr * step / num_warmup_steps
    return decayed


def np_clip(grads, clip_norm):
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    return [g * clip_norm / max(norm, clip_norm) for g in grads]


def excluded(name, patterns=EXCLUDE):
    return any(re.search(p, name) for p in patterns)


def np_adamw_step(params, slots, grads, names, lr, wd=0.01, b1=0.9, b2=0.999, eps=1e-6):
    """Google's AdamWeightDecayOptimizer.apply_gradients, in float64."""
    for name in names:
        g = grads[name]
        m, v = slots[name]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        update = m / (np.sqrt(v) + eps)
        if wd and not excluded(name):
            update = update + wd * params[name]
        params[name] = params[name] - lr * update
        slots[name] = (m, v)


def np_lamb_step(params, slots, grads, names, lr, t, wd=0.01, b1=0.9, b2=0.999, eps=1e-6,
                 bias_correction=True):
    """The LAMB documented in bert_tf.training.LAMB, in float64 (t = 1-based step)."""
    for name in names:
        g = grads[name]
        m, v = slots[name]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        slots[name] = (m, v)
        if bias_correction:
            m, v = m / (1 - b1 ** t), v / (1 - b2 ** t)
        r = m / (np.sqrt(v) + eps)
        w = params[name]
        if wd and not excluded(name):
            r = r + wd * w
        ratio = 1.0
        if not excluded(name):
            w_norm, r_norm = np.linalg.norm(w), np.linalg.norm(r)
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
        params[name] = w - lr * ratio * r


# ----------------------------------------------------------------------------- helpers

def make_vars(values: dict):
    """keras.Variables whose paths are the dict keys ("LayerNorm/gamma", "dense/bias", ...)."""
    out = []
    for path, value in values.items():
        *scopes, leaf = path.split("/")
        ctx = [keras.name_scope(s) for s in scopes]
        for c in ctx:
            c.__enter__()
        try:
            var = keras.Variable(np.asarray(value, np.float32), name=leaf)
        finally:
            for c in reversed(ctx):
                c.__exit__(None, None, None)
        assert var.path == path, var.path
        out.append(var)
    return out


RNG = np.random.default_rng(0)
INIT = {
    "dense/kernel": RNG.normal(size=(3, 4)),
    "encoder/LayerNorm/gamma": 1.0 + 0.1 * RNG.normal(size=(4,)),
    "dense/bias": 0.1 * RNG.normal(size=(4,)),
    "zero/kernel": np.zeros((2, 2)),  # LAMB: ||w|| = 0 -> trust ratio 1
}
GRADS = [{k: RNG.normal(size=v.shape) for k, v in INIT.items()} for _ in range(3)]


def run_optimizer(opt, steps=3, init=INIT, grads=GRADS):
    variables = make_vars(init)
    names = [v.path for v in variables]
    for t in range(steps):
        opt.apply_gradients([(tf.constant(grads[t][n], tf.float32), v)
                             for n, v in zip(names, variables)])
    return {n: v.numpy() for n, v in zip(names, variables)}


def tiny_pretrainer():
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, type_vocab_size=2)
    model = BertPretrainer(config)
    model(pretraining_features())
    return model


def pretraining_features(batch=2, seq=8):
    rng = np.random.default_rng(1)
    return {"input_ids": rng.integers(4, 60, size=(batch, seq)).astype("int32"),
            "input_mask": np.ones((batch, seq), "int32"),
            "segment_ids": np.zeros((batch, seq), "int32"),
            "masked_lm_positions": np.tile(np.array([[1, 3]], "int32"), (batch, 1)),
            "masked_lm_ids": rng.integers(4, 60, size=(batch, 2)).astype("int32"),
            "masked_lm_weights": np.ones((batch, 2), "float32"),
            "next_sentence_labels": np.zeros((batch, 1), "int32")}


# ----------------------------------------------------------------------------- AdamWeightDecay

def test_adam_weight_decay_matches_google_numpy():
    lr = 0.01
    got = run_optimizer(AdamWeightDecay(learning_rate=lr))
    params = {k: v.astype(np.float64) for k, v in INIT.items()}
    slots = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    for t in range(3):
        np_adamw_step(params, slots, GRADS[t], list(INIT), lr)
    for name in INIT:
        np.testing.assert_allclose(got[name], params[name], atol=1e-6, rtol=0, err_msg=name)
    # The excluded variables really were not decayed: their reference without decay matches.
    assert excluded("encoder/LayerNorm/gamma") and excluded("dense/bias")
    assert not excluded("dense/kernel")


def test_adam_weight_decay_first_step_has_no_bias_correction():
    # m = 0.1 g, v = 0.001 g^2: the first update is g / (sqrt(0.001)|g| + eps) ~ 31.6 * lr.
    (var,) = make_vars({"b/bias": [0.0]})
    AdamWeightDecay(learning_rate=1e-3).apply_gradients([(tf.constant([2.0]), var)])
    expected = -1e-3 * 0.2 / (np.sqrt(0.001 * 4.0) + 1e-6)
    np.testing.assert_allclose(var.numpy(), [expected], rtol=1e-6)


def test_create_optimizer_end_to_end_matches_google_numpy():
    """Schedule + global-norm clip + AdamWeightDecay, 6 steps through warmup and decay."""
    opt = create_optimizer(1e-2, num_train_steps=8, num_warmup_steps=3)
    grads = [{k: 3.0 * RNG.normal(size=v.shape) for k, v in INIT.items()} for _ in range(6)]
    got = run_optimizer(opt, steps=6, grads=grads)
    params = {k: v.astype(np.float64) for k, v in INIT.items()}
    slots = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    for t in range(6):
        names = list(INIT)
        clipped = dict(zip(names, np_clip([grads[t][n] for n in names], 1.0)))
        np_adamw_step(params, slots, clipped, names, np_schedule(t, 1e-2, 8, 3))
    for name in INIT:
        np.testing.assert_allclose(got[name], params[name], atol=1e-6, rtol=0, err_msg=name)
    assert int(opt.iterations.numpy()) == 6


# ----------------------------------------------------------------------------- schedule

def test_schedule_values():
    s = WarmupPolynomialDecay(1e-3, num_train_steps=100, num_warmup_steps=10)
    cases = {0: 0.0, 5: 5e-4, 9: 9e-4, 10: 9e-4, 55: 4.5e-4, 99: 1e-5, 100: 0.0, 250: 0.0}
    for step, expected in cases.items():
        assert float(s(step)) == pytest.approx(expected, abs=1e-10), step
        assert float(s(step)) == pytest.approx(np_schedule(step, 1e-3, 100, 10), abs=1e-10)
    # int64 steps as the optimiser passes them, and inside a tf.function.
    assert float(tf.function(s)(tf.constant(5, tf.int64))) == pytest.approx(5e-4)


def test_schedule_without_warmup_power_and_end_lr():
    s = WarmupPolynomialDecay(2e-3, num_train_steps=10, num_warmup_steps=0, end_lr=1e-4, power=2)
    for step in (0, 3, 10, 11):
        assert float(s(step)) == pytest.approx(np_schedule(step, 2e-3, 10, 0, 1e-4, 2.0), abs=1e-9)
    assert float(s(0)) == pytest.approx(2e-3)  # no warmup: full rate on the first step
    assert float(s(50)) == pytest.approx(1e-4)


def test_schedule_config_round_trip():
    s = WarmupPolynomialDecay(5e-5, 1000, 100, end_lr=1e-6, power=0.5)
    s2 = WarmupPolynomialDecay.from_config(s.get_config())
    assert s2.get_config() == s.get_config()
    ser = keras.saving.serialize_keras_object(s)
    assert "bert_tf>WarmupPolynomialDecay" in json.dumps(ser)
    s3 = keras.saving.deserialize_keras_object(ser)
    assert isinstance(s3, WarmupPolynomialDecay)
    for step in (0, 50, 100, 700, 2000):
        assert float(s3(step)) == float(s(step))


def test_optimizer_schedule_reads_iterations():
    # First step: lr(0) = 0 with a warmup, so the variable does not move (Google's behaviour).
    opt = create_optimizer(1e-2, num_train_steps=10, num_warmup_steps=2, clip_norm=None)
    (var,) = make_vars({"k/kernel": [1.0, 2.0]})
    opt.apply_gradients([(tf.constant([1.0, 1.0]), var)])
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    assert float(opt.learning_rate) == pytest.approx(5e-3)


# ----------------------------------------------------------------------------- LAMB

@pytest.mark.parametrize("bias_correction", [True, False])
def test_lamb_matches_numpy(bias_correction):
    lr = 0.01
    got = run_optimizer(LAMB(learning_rate=lr, bias_correction=bias_correction))
    params = {k: v.astype(np.float64) for k, v in INIT.items()}
    slots = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    for t in range(3):
        np_lamb_step(params, slots, GRADS[t], list(INIT), lr, t + 1,
                     bias_correction=bias_correction)
    for name in INIT:
        np.testing.assert_allclose(got[name], params[name], atol=1e-6, rtol=0, err_msg=name)


def test_lamb_differs_from_keras_lamb_on_excluded_variables():
    # Keras' Lamb applies a trust ratio to LayerNorm/bias variables; ours does not.
    init = {"x/LayerNorm/gamma": np.full((4,), 5.0)}
    grads = [{"x/LayerNorm/gamma": np.array([1.0, -1.0, 0.5, 0.1])}]
    ours = run_optimizer(LAMB(learning_rate=0.1, weight_decay_rate=0.0), 1, init, grads)
    theirs = run_optimizer(keras.optimizers.Lamb(learning_rate=0.1, epsilon=1e-6), 1, init, grads)
    assert not np.allclose(ours["x/LayerNorm/gamma"], theirs["x/LayerNorm/gamma"], atol=1e-3)


# ----------------------------------------------------------------------------- exclusions

def _expect_decay(path):
    leaf = path.rsplit("/", 1)[-1]
    if leaf in ("gamma", "beta"):
        assert "layer_norm" in path, f"LayerNorm variable outside a *layer_norm layer: {path}"
        return False
    if leaf in ("bias", "output_bias"):
        return False
    assert leaf in ("kernel", "embeddings", "output_weights"), f"unexpected variable {path}"
    return True


def test_exclusions_on_bert_pretrainer():
    model = tiny_pretrainer()
    tvars = model.trainable_variables
    paths = [variable_path(v) for v in tvars]
    assert len(set(paths)) == len(paths)
    adamw = AdamWeightDecay(learning_rate=1e-3)
    lamb = LAMB(learning_rate=1e-3)
    adamw.build(tvars)
    lamb.build(tvars)
    expected = [_expect_decay(p) for p in paths]
    assert list(adamw._decay_flags) == expected
    assert list(lamb._decay_flags) == expected
    assert list(lamb._adapt_flags) == expected
    decayed = {p for p, e in zip(paths, expected) if e}
    kept = {p for p, e in zip(paths, expected) if not e}
    # Every LayerNorm (embeddings, 2 per layer, MLM head) and every bias is excluded ...
    assert sum(p.endswith(("gamma", "beta")) for p in kept) == 2 * (1 + 2 * 2 + 1)
    assert {"embeddings/layer_norm/gamma", "layer_0/self_attention_layer_norm/beta",
            "layer_1/feedforward_layer_norm/gamma", "masked_lm/intermediate_layer_norm/beta",
            "masked_lm/output_bias", "next_sentence/output_bias", "pooler/bias",
            "layer_0/self_attention_layer/query/bias"} <= kept
    # ... and every kernel / embedding table / output_weights is decayed.
    assert {"embeddings/word_embeddings/embeddings", "embeddings/position_embeddings/embeddings",
            "embeddings/token_type_embeddings/embeddings", "pooler/kernel",
            "next_sentence/output_weights", "masked_lm/intermediate_dense/kernel",
            "layer_1/self_attention_layer/attention_output/kernel",
            "layer_0/feedforward_output_dense/kernel"} <= decayed
    # Keras 3 `name` is only the leaf, which is why the patterns are matched on the path.
    assert {v.name for v in tvars} >= {"gamma", "beta", "bias"}


def test_exclusions_behave_on_a_real_step():
    """Zero gradients: m = v = 0, so decayed variables shrink by lr*wd and excluded stay put."""
    model = tiny_pretrainer()
    tvars = model.trainable_variables
    before = [v.numpy().copy() for v in tvars]
    opt = AdamWeightDecay(learning_rate=0.5, weight_decay_rate=0.1)
    opt.apply_gradients([(tf.zeros_like(v), v) for v in tvars])
    for v, b in zip(tvars, before):
        if _expect_decay(v.path):
            np.testing.assert_allclose(v.numpy(), b * (1 - 0.05), rtol=1e-6, err_msg=v.path)
        else:
            np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)


# ----------------------------------------------------------------------------- clipping

@pytest.mark.parametrize("cls", [AdamWeightDecay, LAMB])
@pytest.mark.parametrize("after", [False, True])
def test_huge_gradient_is_clipped_to_global_norm_1(cls, after):
    # One device: clipping before or after the (identity) all-reduce is the same.
    init = {"a/kernel": np.array([1.0, 2.0]), "b/kernel": np.array([[0.5]])}
    grads = [{"a/kernel": np.array([3e6, 0.0]), "b/kernel": np.array([[4e6]])}]
    opt = cls(learning_rate=0.01, global_clipnorm=1.0, clip_after_all_reduce=after)
    got = run_optimizer(opt, 1, init, grads)
    clipped = dict(zip(grads[0], np_clip(list(grads[0].values()), 1.0)))
    np.testing.assert_allclose(clipped["a/kernel"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b/kernel"], [[0.8]])
    # The first moment holds (1 - beta_1) * the CLIPPED gradient.
    np.testing.assert_allclose(opt._m[0].numpy(), 0.1 * clipped["a/kernel"], rtol=1e-6)
    np.testing.assert_allclose(opt._m[1].numpy(), 0.1 * clipped["b/kernel"], rtol=1e-6)
    params = {k: v.astype(np.float64) for k, v in init.items()}
    slots = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    if cls is AdamWeightDecay:
        np_adamw_step(params, slots, clipped, list(init), 0.01)
    else:
        np_lamb_step(params, slots, clipped, list(init), 0.01, 1)
    for name in init:
        np.testing.assert_allclose(got[name], params[name], atol=1e-6, rtol=0)


def test_no_clipping_when_clip_norm_is_none():
    opt = create_optimizer(1e-3, 10, 0, clip_norm=None)
    assert opt.global_clipnorm is None
    (var,) = make_vars({"a/kernel": [1.0]})
    opt.apply_gradients([(tf.constant([1e6]), var)])
    np.testing.assert_allclose(opt._m[0].numpy(), [1e5], rtol=1e-6)


def test_clip_handles_indexed_slices():
    emb = keras.layers.Embedding(10, 3)
    emb.build((None,))
    opt = AdamWeightDecay(learning_rate=0.1, global_clipnorm=1.0, weight_decay_rate=0.0)
    with tf.GradientTape() as tape:
        loss = 1e4 * tf.reduce_sum(emb(tf.constant([1, 1, 4])))
    grad = tape.gradient(loss, emb.embeddings)
    assert isinstance(grad, tf.IndexedSlices)
    opt.apply_gradients([(grad, emb.embeddings)])
    dense = np.zeros((10, 3))
    dense[1], dense[4] = 2e4, 1e4
    np.testing.assert_allclose(opt._m[0].numpy(), 0.1 * np_clip([dense], 1.0)[0], rtol=1e-5)


# ----------------------------------------------------------------------------- checkpoints

def _dense_model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="dense"),
                              keras.layers.LayerNormalization(name="layer_norm"),
                              keras.layers.Dense(2, name="out")])
    return model


def _train_step(model, opt, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))


@pytest.mark.parametrize("optimizer_type", ["adamw", "lamb"])
@pytest.mark.parametrize("build_before_restore", [True, False])
def test_checkpoint_restores_slots(tmp_path, optimizer_type, build_before_restore):
    x = np.random.default_rng(2).normal(size=(8, 5)).astype("float32")
    y = np.random.default_rng(3).normal(size=(8, 2)).astype("float32")
    model = _dense_model()
    opt = create_optimizer(1e-2, 10, 2, optimizer_type=optimizer_type)
    for _ in range(3):
        _train_step(model, opt, x, y)
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    saved_slots = [v.numpy() for v in opt._m + opt._v]
    _train_step(model, opt, x, y)
    expected = [v.numpy() for v in model.trainable_variables]
    expected_m = [v.numpy() for v in opt._m]

    model2 = _dense_model()  # same seed: same initial weights, overwritten by the restore anyway
    for v in model2.trainable_variables:
        v.assign(tf.zeros_like(v))
    opt2 = create_optimizer(1e-2, 10, 2, optimizer_type=optimizer_type)
    if build_before_restore:
        opt2.build(model2.trainable_variables)
    status = tf.train.Checkpoint(model=model2, optimizer=opt2).restore(path)
    if not build_before_restore:
        opt2.build(model2.trainable_variables)  # deferred restoration of the slots
    status.assert_consumed()
    assert int(opt2.iterations.numpy()) == 3
    for a, b in zip(opt2._m + opt2._v, saved_slots):
        np.testing.assert_array_equal(a.numpy(), b)
    _train_step(model2, opt2, x, y)
    for a, b in zip(model2.trainable_variables, expected):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-7)
    for a, b in zip(opt2._m, expected_m):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-7)


def test_optimizer_config_round_trip():
    opt = create_optimizer(3e-4, 100, 10, optimizer_type="lamb", weight_decay_rate=0.02)
    ser = keras.saving.serialize_keras_object(opt)
    opt2 = keras.saving.deserialize_keras_object(json.loads(json.dumps(ser)))
    assert isinstance(opt2, LAMB)
    cfg, cfg2 = opt.get_config(), opt2.get_config()
    cfg.pop("name"), cfg2.pop("name")
    assert cfg == cfg2
    assert cfg["weight_decay_rate"] == 0.02 and cfg["global_clipnorm"] == 1.0
    assert cfg["exclude_from_weight_decay"] == list(EXCLUDE)
    opt3 = AdamWeightDecay.from_config(AdamWeightDecay(learning_rate=1e-3).get_config())
    assert opt3.epsilon == 1e-6 and opt3.weight_decay_rate == 0.01
    with pytest.raises(ValueError, match="weight_decay_rate"):
        AdamWeightDecay(weight_decay=0.1)


# ----------------------------------------------------------------------------- XLA, mixed precision

def _embedding_model():
    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((3,), dtype="int32"),
                             keras.layers.Embedding(20, 4, name="embeddings"),
                             keras.layers.Flatten(),
                             keras.layers.Dense(6, name="dense"),
                             keras.layers.LayerNormalization(name="layer_norm"),
                             keras.layers.Dense(2, name="out")])


@pytest.mark.parametrize("optimizer_type", ["adamw", "lamb"])
def test_jit_compile_matches_eager(optimizer_type):
    """XLA step == eager step (embedding IndexedSlices, LayerNorm, dense kernels)."""
    ids = np.array([[1, 2, 2], [5, 1, 9]], "int32")
    results = []
    for jit in (False, True):
        model = _embedding_model()
        for i, v in enumerate(model.trainable_variables):  # identical start for both runs
            v.assign(tf.random.stateless_normal(v.shape, (1, i), stddev=0.05))
        opt = create_optimizer(1e-2, 10, 1, optimizer_type=optimizer_type)

        def step():
            with tf.GradientTape() as tape:
                loss = 10.0 * tf.reduce_sum(tf.square(model(ids) - 1.0))  # clip is active
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        fn = tf.function(step, jit_compile=True) if jit else step
        for _ in range(3):
            fn()
        assert int(opt.iterations.numpy()) == 3
        results.append([v.numpy() for v in model.trainable_variables])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    model = _dense_model()
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    opt = create_optimizer(1e-2, 10, 0)
    if policy == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt, initial_scale=128.0)
    x = np.ones((4, 5), "float32")
    before = [v.numpy().copy() for v in model.trainable_variables]

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(x), "float32") - 1.0))
            scaled = opt.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))

    for _ in range(2):
        step()
    inner = opt.inner_optimizer if policy == "mixed_float16" else opt
    assert int(inner.iterations.numpy()) == 2
    assert all(m.dtype == "float32" for m in inner._m)
    for v, b in zip(model.trainable_variables, before):
        assert v.dtype == "float32" and np.all(np.isfinite(v.numpy()))
        assert not np.array_equal(v.numpy(), b)


# ----------------------------------------------------------------------------- tf.distribute

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, os, time
    T0 = time.time()
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from bert_tf.training import create_optimizer

    GLOBAL_BATCH = 8
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, size=(GLOBAL_BATCH, 3)).astype("int32")
    y = rng.normal(size=(GLOBAL_BATCH, 2)).astype("float32")

    def build_model():
        keras.utils.set_random_seed(1)
        return keras.Sequential([keras.Input((3,), dtype="int32"),
                                 keras.layers.Embedding(20, 4, name="embeddings"),
                                 keras.layers.Flatten(),
                                 keras.layers.Dense(6, name="dense"),
                                 keras.layers.LayerNormalization(name="layer_norm"),
                                 keras.layers.Dense(2, name="out")])

    def loss_fn(model, x, t, scale):
        per_example = tf.reduce_sum(tf.square(model(x) - t), axis=-1)
        return scale * tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)

    def grads_of(model, x, t, scale):
        with tf.GradientTape() as tape:
            loss = loss_fn(model, x, t, scale)
        return tape.gradient(loss, model.trainable_variables)

    # One strategy for every run: a second MirroredStrategy in the same process reuses the
    # collective instance keys and its all-reduces clash with the first one's.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def mirrored(kind, clip, after, scale, steps=3):
        with strategy.scope():
            model = build_model()
            opt = create_optimizer(1e-2, 10, 1, optimizer_type=kind, clip_norm=clip)
            opt.clip_after_all_reduce = after
            # Slots must exist before the tf.function: Keras 3 cannot create them lazily on the
            # first apply_gradients inside strategy.run (keras.optimizers.Adam fails the same way).
            opt.build(model.trainable_variables)
        ds = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors((ids, y)).unbatch().batch(GLOBAL_BATCH).repeat())
        it = iter(ds)

        @tf.function
        def train_step(batch):
            def replica_step(x, t):
                g = grads_of(model, x, t, scale)
                opt.apply_gradients(zip(g, model.trainable_variables))
            strategy.run(replica_step, args=batch)

        for _ in range(steps):
            train_step(next(it))
        assert len(model.trainable_variables[0].value.values) == 2  # really mirrored
        return [v.numpy() for v in model.trainable_variables], int(opt.iterations.numpy())

    def single(kind, clip, scale, per_replica_clip, steps=3):
        model = build_model()
        opt = create_optimizer(1e-2, 10, 1, optimizer_type=kind,
                               clip_norm=None if per_replica_clip else clip)
        for _ in range(steps):
            if per_replica_clip:  # what Google's TPU step does: clip each half, then sum
                halves = [grads_of(model, ids[i * 4:(i + 1) * 4],
                                   y[i * 4:(i + 1) * 4], scale) for i in range(2)]
                halves = [tf.clip_by_global_norm([tf.convert_to_tensor(g) for g in h], clip)[0]
                          for h in halves]
                g = [a + b for a, b in zip(*halves)]
            else:
                g = grads_of(model, ids, y, scale)
            opt.apply_gradients(zip(g, model.trainable_variables))
        return [v.numpy() for v in model.trainable_variables]

    def diff(a, b):
        return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))

    out = {}
    small, big = 1e-2, 1e4
    model = build_model()
    out["small_grad_norm"] = float(tf.linalg.global_norm(
        [tf.convert_to_tensor(g) for g in grads_of(model, ids, y, small)]))
    # Default create_optimizer (clip 1.0), gradient norm below 1: same as one device.
    got, out["iterations"] = mirrored("adamw", 1.0, False, small)
    ref = single("adamw", 1.0, small, False)
    out["clip_inactive"] = diff(got, ref)
    out["moved"] = diff(ref, build_model().get_weights())
    # Active clip, default: each replica clips its own gradient before the SUM.
    per_replica = mirrored("adamw", 1.0, False, big)[0]
    out["per_replica"] = diff(per_replica, single("adamw", 1.0, big, True))
    out["per_replica_vs_global"] = diff(per_replica, single("adamw", 1.0, big, False))
    # Active clip, clip_after_all_reduce=True: same as one device on the global batch.
    for kind in ("adamw", "lamb"):
        out[kind + "_after_all_reduce"] = diff(mirrored(kind, 1.0, True, big)[0],
                                               single(kind, 1.0, big, False))
    out["seconds"] = time.time() - T0
    print("RESULT " + json.dumps(out))
""")


def test_mirrored_strategy_two_logical_cpus():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True,
                          text=True, timeout=300, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["small_grad_norm"] < 1.0, out  # so the first comparison has no active clip
    assert out["iterations"] == 3
    assert out["moved"] > 1e-3, out  # the comparison is not vacuous
    assert out["clip_inactive"] < 2e-6, out
    assert out["per_replica"] < 2e-6, out
    assert out["per_replica_vs_global"] > 1e-3, out  # the two modes do differ
    assert out["adamw_after_all_reduce"] < 2e-6, out
    assert out["lamb_after_all_reduce"] < 2e-6, out


# ----------------------------------------------------------------------------- create_optimizer

def test_create_optimizer_types_and_defaults():
    adamw = create_optimizer(1e-4, 100, 10)
    lamb = create_optimizer(1e-4, 100, 10, optimizer_type="lamb", weight_decay_rate=0.0,
                            clip_norm=2.0, end_lr=1e-6, power=2.0)
    assert isinstance(adamw, AdamWeightDecay) and isinstance(lamb, LAMB)
    assert adamw.global_clipnorm == 1.0 and lamb.global_clipnorm == 2.0
    assert adamw.epsilon == 1e-6 and adamw.beta_1 == 0.9 and adamw.beta_2 == 0.999
    assert adamw.weight_decay_rate == 0.01 and lamb.weight_decay_rate == 0.0
    assert adamw.clip_after_all_reduce is False
    sched = lamb._learning_rate
    assert isinstance(sched, WarmupPolynomialDecay)
    assert (sched.end_lr, sched.power, sched.num_warmup_steps) == (1e-6, 2.0, 10)
    assert isinstance(create_optimizer(1e-4, 10, 0, optimizer_type="LAMB"), LAMB)


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer_type="sgd"), r"Unknown optimizer_type 'sgd'.*'adamw', 'lamb'"),
    (dict(num_warmup_steps=11), r"num_warmup_steps \(11\) must not exceed num_train_steps"),
    (dict(init_lr=0.0), "init_lr must be a positive"),
    (dict(init_lr=-1e-4), "init_lr must be a positive"),
    (dict(num_train_steps=0, num_warmup_steps=0), "num_train_steps must be a positive"),
    (dict(num_train_steps=-5, num_warmup_steps=0), "num_train_steps must be a positive"),
    (dict(num_warmup_steps=-1), "num_warmup_steps must be a non-negative"),
    (dict(num_train_steps=10.5), "num_train_steps must be a positive integer"),
    (dict(clip_norm=0.0), "clip_norm must be a positive"),
    (dict(weight_decay_rate=-0.1), "weight_decay_rate must be a non-negative"),
    (dict(end_lr=1.0), "end_lr"),
    (dict(power=0.0), "power must be a positive"),
])
def test_create_optimizer_errors(kwargs, match):
    args = dict(init_lr=1e-4, num_train_steps=10, num_warmup_steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        create_optimizer(**args)
