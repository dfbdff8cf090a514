"""Tests of the test-support modules google_ckpt.py and numpy_bert.py themselves."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
import numpy_bert
from shared_data import GOOGLE_CKPT_INDEX

GOOGLE_INDEX_DIR = str(GOOGLE_CKPT_INDEX)


def _list(prefix: str) -> dict[str, tuple[int, ...]]:
    return {name: tuple(shape) for name, shape in tf.train.list_variables(prefix)}


# --------------------------------------------------------------------------- google_ckpt


def test_tiny_checkpoint_names_and_shapes(tmp_path):
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(str(tmp_path), config, vocab_tokens=["[PAD]", "a", "##b"])
    assert prefix == os.path.join(str(tmp_path), "bert_model.ckpt")
    assert os.path.exists(prefix + ".index")
    assert os.path.exists(prefix + ".data-00000-of-00001")
    assert not os.path.exists(os.path.join(str(tmp_path), "checkpoint"))
    with open(tmp_path / "bert_config.json") as f:
        assert json.load(f) == config
    assert (tmp_path / "vocab.txt").read_text().splitlines() == ["[PAD]", "a", "##b"]

    listed = _list(prefix)
    L = config["num_hidden_layers"]
    assert len(listed) == 5 + 16 * L + 2 + 7 == 46
    V, H, I, P, T = 99, 32, 37, 40, 2
    assert listed["bert/embeddings/word_embeddings"] == (V, H)
    assert listed["bert/embeddings/position_embeddings"] == (P, H)
    assert listed["bert/embeddings/token_type_embeddings"] == (T, H)
    assert listed["bert/embeddings/LayerNorm/gamma"] == (H,)
    for i in range(L):
        p = f"bert/encoder/layer_{i}/"
        for qkv in ("query", "key", "value"):
            assert listed[p + f"attention/self/{qkv}/kernel"] == (H, H)
            assert listed[p + f"attention/self/{qkv}/bias"] == (H,)
        assert listed[p + "attention/output/dense/kernel"] == (H, H)
        assert listed[p + "attention/output/LayerNorm/beta"] == (H,)
        assert listed[p + "intermediate/dense/kernel"] == (H, I)
        assert listed[p + "intermediate/dense/bias"] == (I,)
        assert listed[p + "output/dense/kernel"] == (I, H)
        assert listed[p + "output/LayerNorm/gamma"] == (H,)
    assert listed["bert/pooler/dense/kernel"] == (H, H)
    assert listed["cls/predictions/output_bias"] == (V,)
    assert listed["cls/seq_relationship/output_weights"] == (2, H)
    assert listed["cls/seq_relationship/output_bias"] == (2,)
    assert listed == google_ckpt.expected_variable_shapes(config)
    assert not any(n.endswith(("/adam_m", "/adam_v")) or n == "global_step" for n in listed)
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    assert set(dtypes.values()) == {tf.float32}


def test_classifier_slots_and_global_step(tmp_path):
    config = google_ckpt.tiny_config(num_hidden_layers=1)
    prefix = google_ckpt.write_google_checkpoint(
        str(tmp_path),
        config,
        with_pretraining_heads=False,
        num_classifier_labels=3,
        with_optimizer_slots=True,
        with_global_step=True,
    )
    listed = _list(prefix)
    trainable = 5 + 16 + 2 + 2
    assert len(listed) == 3 * trainable + 1
    assert not any(n.startswith("cls/") for n in listed)
    assert listed["output_weights"] == (3, 32)
    assert listed["output_bias"] == (3,)
    assert listed["output_weights/adam_m"] == (3, 32)
    assert listed["bert/encoder/layer_0/intermediate/dense/kernel/adam_v"] == (32, 37)
    assert listed["global_step"] == ()
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    assert dtypes["global_step"] == tf.int64
    arrays = google_ckpt.read_checkpoint_arrays(prefix)
    assert arrays["global_step"].dtype == np.int64
    for name, value in arrays.items():
        if name.endswith("/adam_v"):
            assert np.all(value >= 0)


def test_read_back_is_bit_exact_and_values_nontrivial(tmp_path):
    config = google_ckpt.tiny_config()
    expected = google_ckpt.random_google_arrays(config, num_classifier_labels=2, seed=7)
    prefix = google_ckpt.write_google_checkpoint(str(tmp_path), config, num_classifier_labels=2, seed=7)
    got = google_ckpt.read_checkpoint_arrays(prefix)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == np.float32, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)
        # Non-trivial: nothing constant, biases/betas not zero, gammas not one.
        assert np.std(value) > 1e-3, name
        if name.endswith(("bias", "beta")):
            assert np.all(value != 0), name
        if name.endswith("gamma"):
            assert np.all(value != 1) and abs(np.mean(value) - 1) < 0.1, name
    # Seeds matter, and are deterministic.
    other = google_ckpt.random_google_arrays(config, num_classifier_labels=2, seed=8)
    assert not np.array_equal(other["bert/pooler/dense/kernel"], expected["bert/pooler/dense/kernel"])
    again = google_ckpt.random_google_arrays(config, num_classifier_labels=2, seed=7)
    np.testing.assert_array_equal(again["cls/predictions/output_bias"], expected["cls/predictions/output_bias"])


def test_write_hand_crafted_arrays(tmp_path):
    arrays = {
        "bert/embeddings/word_embeddings": np.arange(6, dtype=np.float32).reshape(3, 2),
        "some/extra/variable": np.ones([4], np.float32),
        "global_step": np.array(5, np.int64),
    }
    prefix = google_ckpt.write_arrays_as_google_checkpoint(str(tmp_path / "sub" / "model.ckpt"), arrays)
    assert _list(prefix) == {"bert/embeddings/word_embeddings": (3, 2), "some/extra/variable": (4,), "global_step": ()}
    got = google_ckpt.read_checkpoint_arrays(prefix)
    for name, value in arrays.items():
        np.testing.assert_array_equal(got[name], value)
        assert got[name].dtype == value.dtype
    # Graph-mode writing did not switch this process out of eager mode.
    assert tf.executing_eagerly()


_GENUINE = [
    # (directory, with_pretraining_heads, with_global_step)
    ("uncased_L-4_H-256_A-4", True, False),
    ("uncased_L-8_H-512_A-8", True, False),
    ("chinese_L-12_H-768_A-12", True, False),
    ("chinese_wwm_L-12_H-768_A-12_hfl", True, True),
]


@pytest.mark.parametrize("name,heads,global_step", _GENUINE)
def test_expected_names_match_genuine_google_index(name, heads, global_step):
    directory = os.path.join(GOOGLE_INDEX_DIR, name)
    prefix = os.path.join(directory, "bert_model.ckpt")
    if not os.path.exists(prefix + ".index"):
        pytest.skip(f"no genuine index at {prefix}")
    with open(os.path.join(directory, "bert_config.json")) as f:
        config = json.load(f)
    expected = google_ckpt.expected_variable_shapes(
        config, with_pretraining_heads=heads, with_global_step=global_step
    )
    assert _list(prefix) == expected


def test_written_checkpoint_matches_genuine_google_index(tmp_path):
    directory = os.path.join(GOOGLE_INDEX_DIR, "uncased_L-4_H-256_A-4")
    genuine = os.path.join(directory, "bert_model.ckpt")
    if not os.path.exists(genuine + ".index"):
        pytest.skip(f"no genuine index at {genuine}")
    with open(os.path.join(directory, "bert_config.json")) as f:
        config = json.load(f)
    prefix = google_ckpt.write_google_checkpoint(str(tmp_path), config, with_pretraining_heads=True)
    assert _list(prefix) == _list(genuine)
    ours = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    theirs = tf.train.load_checkpoint(genuine).get_variable_to_dtype_map()
    assert ours == theirs


# --------------------------------------------------------------------------- numpy_bert

def _loop_gelu(x: float) -> float:
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _loop_act(name: str):
    return {
        "gelu": _loop_gelu,
        "gelu_exact": lambda x: 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))),
        "relu": lambda x: max(x, 0.0),
        "tanh": math.tanh,
    }[name]


def _loop_ln(v, g, b):
    n = len(v)
    mean = sum(v) / n
    var = sum((x - mean) ** 2 for x in v) / n
    return [(v[i] - mean) / math.sqrt(var + 1e-12) * float(g[i]) + float(b[i]) for i in range(n)]


def _loop_dense(v, kernel, bias):
    n_in, n_out = kernel.shape
    return [sum(v[i] * float(kernel[i, j]) for i in range(n_in)) + float(bias[j]) for j in range(n_out)]


def _loop_bert(arrays, config, input_ids, input_mask, token_type_ids):
    """Scalar-loop BERT (independent of numpy_bert's vectorised code)."""
    a = arrays
    H = config["hidden_size"]
    A = config["num_attention_heads"]
    D = H // A
    act = _loop_act(config["hidden_act"])
    seqs = []
    for b in range(len(input_ids)):
        S = len(input_ids[b])
        xs = []
        for s in range(S):
            e = [
                float(a["bert/embeddings/word_embeddings"][input_ids[b][s], h])
                + float(a["bert/embeddings/position_embeddings"][s, h])
                + float(a["bert/embeddings/token_type_embeddings"][token_type_ids[b][s], h])
                for h in range(H)
            ]
            xs.append(_loop_ln(e, a["bert/embeddings/LayerNorm/gamma"], a["bert/embeddings/LayerNorm/beta"]))
        for i in range(config["num_hidden_layers"]):
            p = f"bert/encoder/layer_{i}/"
            q = [_loop_dense(x, a[p + "attention/self/query/kernel"], a[p + "attention/self/query/bias"]) for x in xs]
            k = [_loop_dense(x, a[p + "attention/self/key/kernel"], a[p + "attention/self/key/bias"]) for x in xs]
            v = [_loop_dense(x, a[p + "attention/self/value/kernel"], a[p + "attention/self/value/bias"]) for x in xs]
            ctx = [[0.0] * H for _ in range(S)]
            for head in range(A):
                cols = range(head * D, (head + 1) * D)
                for s in range(S):
                    scores = [
                        sum(q[s][c] * k[t][c] for c in cols) / math.sqrt(D)
                        + (1.0 - input_mask[b][t]) * -10000.0
                        for t in range(S)
                    ]
                    m = max(scores)
                    ex = [math.exp(z - m) for z in scores]
                    tot = sum(ex)
                    for c in cols:
                        ctx[s][c] = sum(ex[t] / tot * v[t][c] for t in range(S))
            new_xs = []
            for s in range(S):
                ao = _loop_dense(ctx[s], a[p + "attention/output/dense/kernel"], a[p + "attention/output/dense/bias"])
                y = _loop_ln(
                    [xs[s][h] + ao[h] for h in range(H)],
                    a[p + "attention/output/LayerNorm/gamma"],
                    a[p + "attention/output/LayerNorm/beta"],
                )
                inter = [act(z) for z in _loop_dense(y, a[p + "intermediate/dense/kernel"], a[p + "intermediate/dense/bias"])]
                o = _loop_dense(inter, a[p + "output/dense/kernel"], a[p + "output/dense/bias"])
                new_xs.append(
                    _loop_ln([y[h] + o[h] for h in range(H)], a[p + "output/LayerNorm/gamma"], a[p + "output/LayerNorm/beta"])
                )
            xs = new_xs
        seqs.append(xs)
    pooled = [
        [math.tanh(z) for z in _loop_dense(seq[0], a["bert/pooler/dense/kernel"], a["bert/pooler/dense/bias"])]
        for seq in seqs
    ]
    return np.array(seqs), np.array(pooled)


def _small_case(hidden_act="gelu", heads=2, seed=3):
    config = google_ckpt.tiny_config(
        vocab_size=11,
        hidden_size=4,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=6,
        max_position_embeddings=8,
        type_vocab_size=3,
        hidden_act=hidden_act,
    )
    arrays = google_ckpt.random_google_arrays(config, num_classifier_labels=3, seed=seed)
    input_ids = [[2, 5, 7, 1, 0], [3, 9, 4, 10, 6]]
    input_mask = [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    token_type_ids = [[0, 0, 1, 0, 0], [0, 1, 2, 1, 1]]
    return config, arrays, input_ids, input_mask, token_type_ids


@pytest.mark.parametrize("hidden_act,heads", [("gelu", 2), ("gelu", 1), ("gelu_exact", 4), ("relu", 2), ("tanh", 2)])
def test_numpy_forward_matches_scalar_loop_reference(hidden_act, heads):
    config, arrays, ids, mask, types = _small_case(hidden_act, heads)
    out = numpy_bert.bert_forward(arrays, config, ids, mask, types)
    seq, pooled = _loop_bert(arrays, config, ids, mask, types)
    assert out["sequence_output"].dtype == np.float64
    np.testing.assert_allclose(out["sequence_output"], seq, rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["pooled_output"], pooled, rtol=0, atol=1e-10)
    assert len(out["encoder_outputs"]) == 2
    np.testing.assert_array_equal(out["encoder_outputs"][-1], out["sequence_output"])


def test_numpy_forward_head_order_matters():
    """Permuting head blocks of the query kernel changes outputs (heads are contiguous columns)."""
    config, arrays, ids, mask, types = _small_case("gelu", 2)
    base = numpy_bert.bert_forward(arrays, config, ids, mask, types)["sequence_output"]
    swapped = dict(arrays)
    k = arrays["bert/encoder/layer_0/attention/self/query/kernel"]
    swapped["bert/encoder/layer_0/attention/self/query/kernel"] = np.concatenate([k[:, 2:], k[:, :2]], axis=1)
    other = numpy_bert.bert_forward(swapped, config, ids, mask, types)["sequence_output"]
    assert np.max(np.abs(base - other)) > 1e-3


def test_numpy_forward_hand_computed_h2():
    """1 layer, 1 head, H=2, hand-chosen weights; expected values derived by hand.

    With H=2, LayerNorm maps v to sign(v0 - v1) * [1, -1] * gamma + beta (and
    to beta when v0 == v1). Q/K kernels and biases are zero, so attention is
    uniform over the valid keys; V and the attention output are identities.
    """
    config = {
        "vocab_size": 3, "hidden_size": 2, "num_hidden_layers": 1, "num_attention_heads": 1,
        "intermediate_size": 2, "max_position_embeddings": 4, "type_vocab_size": 2, "hidden_act": "gelu",
    }
    z22, z2, eye, one2 = np.zeros((2, 2)), np.zeros(2), np.eye(2), np.ones(2)
    p = "bert/encoder/layer_0/"
    arrays = {
        # token 1 -> [1, 0] (LN -> [1, -1]); token 2 -> [0, 1] (LN -> [-1, 1])
        "bert/embeddings/word_embeddings": np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        "bert/embeddings/position_embeddings": np.zeros((4, 2)),
        "bert/embeddings/token_type_embeddings": np.zeros((2, 2)),
        "bert/embeddings/LayerNorm/gamma": one2, "bert/embeddings/LayerNorm/beta": z2,
        p + "attention/self/query/kernel": z22, p + "attention/self/query/bias": z2,
        p + "attention/self/key/kernel": z22, p + "attention/self/key/bias": z2,
        p + "attention/self/value/kernel": eye, p + "attention/self/value/bias": z2,
        p + "attention/output/dense/kernel": eye, p + "attention/output/dense/bias": z2,
        p + "attention/output/LayerNorm/gamma": np.array([2.0, 3.0]),
        p + "attention/output/LayerNorm/beta": np.array([0.5, -0.25]),
        # FFN: intermediate = gelu(0) = 0, output = bias [0.5, 0].
        p + "intermediate/dense/kernel": z22, p + "intermediate/dense/bias": z2,
        p + "output/dense/kernel": z22, p + "output/dense/bias": np.array([0.5, 0.0]),
        p + "output/LayerNorm/gamma": np.array([1.0, 4.0]),
        p + "output/LayerNorm/beta": np.array([0.0, 0.125]),
        "bert/pooler/dense/kernel": np.array([[1.0, 0.0], [0.0, 2.0]]),
        "bert/pooler/dense/bias": np.array([0.0, 0.1]),
    }
    ids = [[1, 2], [1, 2]]
    mask = [[1, 1], [1, 0]]
    out = numpy_bert.bert_forward(arrays, config, ids, mask, [[0, 0], [0, 0]])
    # Example 0 (both valid): ctx = mean([1,-1],[-1,1]) = 0, so attention LN(x) keeps signs:
    #   pos0: [2, -3] + [0.5, -0.25] = [2.5, -3.25];  pos1: [-2, 3] + beta = [-1.5, 2.75].
    #   FFN adds [0.5, 0]: signs unchanged -> pos0: [1,-1]*[1,4]+[0,.125] = [1, -3.875]; pos1: [-1, 4.125].
    # Example 1 (pos1 masked): ctx = x_pos0 = [1,-1] for both positions.
    #   pos0: x+ctx = [2,-2] -> [2.5, -3.25] -> [1, -3.875];  pos1: [-1,1]+[1,-1] = 0 -> LN -> beta = [0.5, -0.25]
    #   then + [0.5, 0] = [1.0, -0.25] -> sign + -> [1, -3.875].
    expected = np.array([[[1.0, -3.875], [-1.0, 4.125]], [[1.0, -3.875], [1.0, -3.875]]])
    np.testing.assert_allclose(out["sequence_output"], expected, atol=1e-9)
    expected_pooled = np.tanh(np.array([[1.0, -7.75 + 0.1], [1.0, -7.75 + 0.1]]))
    np.testing.assert_allclose(out["pooled_output"], expected_pooled, atol=1e-9)


def test_numpy_forward_shapes_and_masking():
    config = google_ckpt.tiny_config()
    arrays = google_ckpt.random_google_arrays(config, num_classifier_labels=3, seed=1)
    rng = np.random.RandomState(0)
    B, S = 3, 9
    ids = rng.randint(0, config["vocab_size"], size=(B, S))
    mask = np.ones((B, S), np.int64)
    mask[0, 6:] = 0
    mask[2, 3:] = 0
    types = rng.randint(0, 2, size=(B, S))
    out = numpy_bert.bert_forward(arrays, config, ids, mask, types)
    assert out["sequence_output"].shape == (B, S, 32)
    assert out["pooled_output"].shape == (B, 32)
    assert [e.shape for e in out["encoder_outputs"]] == [(B, S, 32)] * 2
    assert np.all(np.isfinite(out["sequence_output"]))
    # Activations are not trivially tiny with the random weights.
    assert np.std(out["pooled_output"]) > 0.05

    ids2 = ids.copy()
    ids2[0, 7] = (ids2[0, 7] + 5) % config["vocab_size"]
    ids2[2, 4] = (ids2[2, 4] + 5) % config["vocab_size"]
    types2 = types.copy()
    types2[2, 5] = 1 - types2[2, 5]
    out2 = numpy_bert.bert_forward(arrays, config, ids2, mask, types2)
    valid = mask.astype(bool)
    np.testing.assert_allclose(out2["sequence_output"][valid], out["sequence_output"][valid], atol=1e-8)
    np.testing.assert_allclose(out2["pooled_output"], out["pooled_output"], atol=1e-8)
    # ...while a change at a valid position does change things.
    ids3 = ids.copy()
    ids3[0, 2] = (ids3[0, 2] + 5) % config["vocab_size"]
    out3 = numpy_bert.bert_forward(arrays, config, ids3, mask, types)
    assert np.max(np.abs(out3["sequence_output"][0, 0] - out["sequence_output"][0, 0])) > 1e-4
    # Defaults: mask of ones and zero token types.
    d = numpy_bert.bert_forward(arrays, config, ids)
    e = numpy_bert.bert_forward(arrays, config, ids, np.ones((B, S)), np.zeros((B, S), np.int64))
    np.testing.assert_array_equal(d["sequence_output"], e["sequence_output"])


def test_heads_mlm_nsp_classifier():
    config, arrays, ids, mask, types = _small_case("gelu", 2)
    out = numpy_bert.bert_forward(arrays, config, ids, mask, types)
    positions = np.array([[1, 2, 0], [4, 0, 3]])
    lp = numpy_bert.masked_lm_log_probs(arrays, config, out["sequence_output"], positions)
    assert lp.shape == (2, 3, 11)
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, atol=1e-12)
    # Scalar-loop check of the MLM head for one position.
    h = out["sequence_output"][1, 3].tolist()
    t = [_loop_gelu(z) for z in _loop_dense(h, arrays["cls/predictions/transform/dense/kernel"], arrays["cls/predictions/transform/dense/bias"])]
    t = _loop_ln(t, arrays["cls/predictions/transform/LayerNorm/gamma"], arrays["cls/predictions/transform/LayerNorm/beta"])
    emb = arrays["bert/embeddings/word_embeddings"]
    logits = [sum(t[j] * float(emb[v, j]) for j in range(4)) + float(arrays["cls/predictions/output_bias"][v]) for v in range(11)]
    lse = math.log(sum(math.exp(z) for z in logits))
    np.testing.assert_allclose(lp[1, 2], [z - lse for z in logits], atol=1e-10)

    nsp = numpy_bert.next_sentence_logits(arrays, out["pooled_output"])
    assert nsp.shape == (2, 2)
    w, b = arrays["cls/seq_relationship/output_weights"], arrays["cls/seq_relationship/output_bias"]
    for i in range(2):
        for c in range(2):
            ref = sum(float(out["pooled_output"][i, j]) * float(w[c, j]) for j in range(4)) + float(b[c])
            assert abs(nsp[i, c] - ref) < 1e-12
    cls = numpy_bert.classifier_logits(arrays, out["pooled_output"])
    assert cls.shape == (2, 3)
    w, b = arrays["output_weights"], arrays["output_bias"]
    np.testing.assert_allclose(cls, out["pooled_output"] @ w.T.astype(np.float64) + b, atol=1e-12)


def test_pretraining_losses():
    config, arrays, ids, mask, types = _small_case("gelu", 2)
    positions = np.array([[1, 2, 0], [4, 0, 3]])
    lm_ids = np.array([[5, 7, 0], [6, 3, 10]])
    lm_w = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    ns = np.array([[0], [1]])
    features = dict(
        input_ids=ids, input_mask=mask, segment_ids=types, masked_lm_positions=positions,
        masked_lm_ids=lm_ids, masked_lm_weights=lm_w, next_sentence_labels=ns,
    )
    res = numpy_bert.pretraining_losses(arrays, config, features)
    out = numpy_bert.bert_forward(arrays, config, ids, mask, types)
    lp = numpy_bert.masked_lm_log_probs(arrays, config, out["sequence_output"], positions)
    nll = [-lp[b, m, lm_ids[b, m]] for b in range(2) for m in range(3)]
    w = lm_w.reshape(-1)
    expected_mlm = sum(wi * li for wi, li in zip(w, nll)) / (w.sum() + 1e-5)
    assert abs(res["masked_lm_loss"] - expected_mlm) < 1e-12
    nsp_lp = numpy_bert.log_softmax(numpy_bert.next_sentence_logits(arrays, out["pooled_output"]))
    expected_nsp = -(nsp_lp[0, 0] + nsp_lp[1, 1]) / 2
    assert abs(res["next_sentence_loss"] - expected_nsp) < 1e-12
    assert abs(res["total_loss"] - expected_mlm - expected_nsp) < 1e-12
    pred = lp.argmax(-1)
    acc = sum(lm_w[b, m] * (pred[b, m] == lm_ids[b, m]) for b in range(2) for m in range(3)) / lm_w.sum()
    assert abs(res["masked_lm_accuracy"] - acc) < 1e-12
    nsp_pred = nsp_lp.argmax(-1)
    assert res["next_sentence_accuracy"] == np.mean(nsp_pred == ns[:, 0])
    # Zero-weight (padding) predictions do not affect the loss; [B] labels work too.
    features2 = dict(features, masked_lm_ids=np.array([[5, 7, 9], [6, 3, 10]]), next_sentence_labels=ns[:, 0])
    res2 = numpy_bert.pretraining_losses(arrays, config, features2)
    assert res2["masked_lm_loss"] == res["masked_lm_loss"]
    assert res2["next_sentence_loss"] == res["next_sentence_loss"]
