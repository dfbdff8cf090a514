"""Numeric parity of BertEncoder / BertPretrainer / BertClassifier with Google's BERT.

A random checkpoint in Google's exact TF1 layout (tests/google_ckpt.py) is loaded through the
public `from_google_checkpoint` constructors and run on a padded two-segment batch; every output
is compared with the independent float64 NumPy reference (tests/numpy_bert.py).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
import numpy_bert
from bert_tf import BertClassifier, BertConfig, BertEncoder, BertPretrainer
from bert_tf.checkpoints import build_from_google_checkpoint, load_google_checkpoint

ATOL = 1e-5
B, S, M = 4, 10, 3


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _batch(config: dict, seed: int = 1) -> dict[str, np.ndarray]:
    """Padded two-segment batch: row lengths 10, 7, 2, 1 (every row has >= 1 valid token)."""
    rng = np.random.RandomState(seed)
    V = config["vocab_size"]
    lengths = [S, 7, 2, 1]
    ids = np.zeros((B, S), np.int32)
    mask = np.zeros((B, S), np.int32)
    segments = np.zeros((B, S), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.randint(1, V, size=n)
        mask[row, :n] = 1
        segments[row, n // 2 + 1:n] = 1  # [CLS] A A ... B B (segment B non-empty when n >= 3)
    positions = np.array([[1, 4, 8], [2, 5, 0], [1, 0, 0], [0, 0, 0]], np.int32)
    weights = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": segments,
        "masked_lm_positions": positions,
        "masked_lm_ids": rng.randint(0, V, size=(B, M)).astype(np.int32),
        "masked_lm_weights": weights,
        "next_sentence_labels": np.array([[0], [1], [1], [0]], np.int32),
    }


def _hub_inputs(features: dict) -> dict:
    return {"input_word_ids": features["input_ids"], "input_mask": features["input_mask"],
            "input_type_ids": features["segment_ids"]}


@pytest.fixture(scope="module")
def pretraining_ckpt(tmp_path_factory):
    """(directory, prefix, arrays, config dict) of a random Google pretraining checkpoint."""
    directory = str(tmp_path_factory.mktemp("google_pretraining"))
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(directory, config, seed=3)
    return directory, prefix, google_ckpt.read_checkpoint_arrays(prefix), config


def _check_encoder_outputs(outputs, ref, num_layers: int) -> None:
    assert outputs["sequence_output"].shape == ref["sequence_output"].shape
    assert outputs["pooled_output"].shape == ref["pooled_output"].shape
    assert _max_diff(outputs["sequence_output"], ref["sequence_output"]) <= ATOL
    assert _max_diff(outputs["pooled_output"], ref["pooled_output"]) <= ATOL
    assert len(outputs["encoder_outputs"]) == num_layers == len(ref["encoder_outputs"])
    for ours, theirs in zip(outputs["encoder_outputs"], ref["encoder_outputs"]):
        assert _max_diff(ours, theirs) <= ATOL
    # The last block's output is the sequence output.
    np.testing.assert_array_equal(np.asarray(outputs["encoder_outputs"][-1]),
                                  np.asarray(outputs["sequence_output"]))


def _check_pretrainer(model, arrays, config: dict, features: dict) -> None:
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])
    log_probs = numpy_bert.masked_lm_log_probs(arrays, config, ref["sequence_output"],
                                               features["masked_lm_positions"])
    # Make some masked-LM predictions right so the accuracy is not trivially 0.
    features = dict(features)
    ids = features["masked_lm_ids"].copy()
    ids[0, 0], ids[0, 2], ids[1, 1] = np.argmax(log_probs, -1)[[0, 0, 1], [0, 2, 1]]
    features["masked_lm_ids"] = ids

    outputs = model(features, training=False)
    _check_encoder_outputs(outputs, ref, config["num_hidden_layers"])

    mlm_logits = outputs["masked_lm_logits"]
    assert mlm_logits.dtype == tf.float32
    assert tuple(mlm_logits.shape) == (B, M, config["vocab_size"])
    assert _max_diff(tf.nn.log_softmax(mlm_logits, axis=-1), log_probs) <= ATOL
    nsp = numpy_bert.next_sentence_logits(arrays, ref["pooled_output"])
    assert tuple(outputs["next_sentence_logits"].shape) == (B, 2)
    assert _max_diff(outputs["next_sentence_logits"], nsp) <= ATOL

    losses = model.compute_pretraining_losses(features, outputs)
    expected = numpy_bert.pretraining_losses(arrays, config, features)
    assert expected["masked_lm_accuracy"] == pytest.approx(3 / 6)
    for ours, theirs in (("masked_lm_loss", "masked_lm_loss"),
                         ("next_sentence_loss", "next_sentence_loss"),
                         ("loss", "total_loss"),
                         ("masked_lm_accuracy", "masked_lm_accuracy"),
                         ("next_sentence_accuracy", "next_sentence_accuracy")):
        assert abs(float(losses[ours]) - expected[theirs]) <= ATOL, ours


# --------------------------------------------------------------------------- pretrainer


@pytest.mark.parametrize("use_prefix", [False, True], ids=["dir", "prefix"])
def test_pretrainer_matches_google_reference(pretraining_ckpt, use_prefix):
    directory, prefix, arrays, config = pretraining_ckpt
    model = build_from_google_checkpoint(BertPretrainer, prefix if use_prefix else directory)
    assert model.config.to_dict() == config
    _check_pretrainer(model, arrays, config, _batch(config))


def test_pretrainer_accepts_flat_next_sentence_labels_and_hub_names(pretraining_ckpt):
    directory, _, arrays, config = pretraining_ckpt
    model = build_from_google_checkpoint(BertPretrainer, directory)
    features = _batch(config, seed=5)
    features["next_sentence_labels"] = features["next_sentence_labels"].reshape(-1)
    hub = dict(features)
    hub["input_word_ids"] = hub.pop("input_ids")
    hub["input_type_ids"] = hub.pop("segment_ids")
    losses = model.compute_pretraining_losses(hub, model(hub, training=False))
    expected = numpy_bert.pretraining_losses(arrays, config, features)
    assert abs(float(losses["loss"]) - expected["total_loss"]) <= ATOL
    assert abs(float(losses["next_sentence_loss"]) - expected["next_sentence_loss"]) <= ATOL


@pytest.mark.parametrize("hidden_act", ["gelu_exact", "relu"])
def test_pretrainer_other_activations(pretraining_ckpt, hidden_act):
    directory, _, arrays, config = pretraining_ckpt
    config = dict(config, hidden_act=hidden_act)
    model = build_from_google_checkpoint(BertPretrainer, directory, config=BertConfig.from_dict(config))
    assert model.config.hidden_act == hidden_act
    _check_pretrainer(model, arrays, config, _batch(config, seed=2))
    # The activation really matters: the tanh-gelu reference is well outside the tolerance
    # (erf vs tanh GELU differ by ~5e-4 here, relu by far more).
    gelu_ref = numpy_bert.bert_forward(arrays, dict(config, hidden_act="gelu"),
                                       *(_batch(config, seed=2)[k] for k in
                                         ("input_ids", "input_mask", "segment_ids")))
    ours = model.encoder(_hub_inputs(_batch(config, seed=2)), training=False)
    assert _max_diff(ours["sequence_output"], gelu_ref["sequence_output"]) > 10 * ATOL


def test_wrong_activation_would_be_detected(pretraining_ckpt):
    """Sanity of the comparison itself: a relu model does not match the gelu reference."""
    directory, _, arrays, config = pretraining_ckpt
    model = build_from_google_checkpoint(BertEncoder, 
        directory, config=BertConfig.from_dict(dict(config, hidden_act="relu")))
    features = _batch(config)
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])
    ours = model(_hub_inputs(features), training=False)
    assert _max_diff(ours["sequence_output"], ref["sequence_output"]) > 1e-3


# --------------------------------------------------------------------------- encoder


@pytest.mark.parametrize("use_prefix", [False, True], ids=["dir", "prefix"])
def test_encoder_matches_google_reference(pretraining_ckpt, use_prefix):
    directory, prefix, arrays, config = pretraining_ckpt
    encoder = build_from_google_checkpoint(BertEncoder, prefix if use_prefix else directory)
    features = _batch(config)
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])
    _check_encoder_outputs(encoder(_hub_inputs(features), training=False), ref,
                           config["num_hidden_layers"])


def test_padding_tokens_do_not_change_valid_outputs(pretraining_ckpt):
    directory, _, _, config = pretraining_ckpt
    encoder = build_from_google_checkpoint(BertEncoder, directory)
    features = _hub_inputs(_batch(config))
    changed = dict(features)
    mask = features["input_mask"]
    changed["input_word_ids"] = np.where(mask == 1, features["input_word_ids"], 17).astype(np.int32)
    changed["input_type_ids"] = np.where(mask == 1, features["input_type_ids"], 1).astype(np.int32)
    a = encoder(features, training=False)["sequence_output"].numpy()
    b = encoder(changed, training=False)["sequence_output"].numpy()
    valid = mask.astype(bool)
    assert np.abs(a[valid] - b[valid]).max() <= 1e-6
    assert np.abs(a[~valid] - b[~valid]).max() > 1e-3  # padded positions did change


def test_dropout_off_in_inference_on_in_training(pretraining_ckpt):
    directory, _, arrays, config = pretraining_ckpt
    model = build_from_google_checkpoint(BertPretrainer, directory)
    features = _batch(config)
    eval_a = model(features, training=False)
    eval_b = model(features, training=False)
    np.testing.assert_array_equal(eval_a["sequence_output"].numpy(), eval_b["sequence_output"].numpy())
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])
    assert _max_diff(eval_a["sequence_output"], ref["sequence_output"]) <= ATOL

    train_a = model(features, training=True)
    train_b = model(features, training=True)
    for key in ("sequence_output", "pooled_output", "masked_lm_logits"):
        assert _max_diff(train_a[key], train_b[key]) > 1e-3, key
        assert _max_diff(train_a[key], eval_a[key]) > 1e-3, key
    # Default call (no training argument) is inference.
    default = model(features)
    np.testing.assert_allclose(default["sequence_output"].numpy(),
                               eval_a["sequence_output"].numpy(), atol=1e-6)


# --------------------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    """A run_classifier-style fine-tuned checkpoint: bert/* + top-level output_weights [3, H],
    Adam slots and global_step, no cls/ heads."""
    directory = str(tmp_path_factory.mktemp("google_classifier"))
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(
        directory, config, with_pretraining_heads=False, num_classifier_labels=3,
        with_optimizer_slots=True, with_global_step=True, seed=11)
    return directory, prefix, google_ckpt.read_checkpoint_arrays(prefix), config


def test_classifier_matches_google_reference(classifier_ckpt):
    directory, prefix, arrays, config = classifier_ckpt
    assert arrays["output_weights"].shape == (3, config["hidden_size"])
    model = build_from_google_checkpoint(BertClassifier, prefix, num_classes=3)
    np.testing.assert_array_equal(model.classifier.output_weights.numpy(), arrays["output_weights"])
    features = _batch(config)
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])
    expected = numpy_bert.classifier_logits(arrays, ref["pooled_output"])
    logits = model(features, training=False)
    assert logits.dtype == tf.float32
    assert tuple(logits.shape) == (B, 3)
    assert _max_diff(logits, expected) <= ATOL
    # TF Hub input names work too.
    assert _max_diff(model(_hub_inputs(features), training=False), expected) <= ATOL
    # Dropout on the pooled output (and in the encoder) is active only in training.
    t1 = model(features, training=True).numpy()
    t2 = model(features, training=True).numpy()
    assert np.abs(t1 - t2).max() > 1e-4


def test_classifier_load_report_for_fine_tuned_checkpoint(classifier_ckpt):
    _, prefix, arrays, config = classifier_ckpt
    model = BertClassifier(BertConfig.from_dict(config), num_classes=3)
    report = load_google_checkpoint(model, prefix, optional_groups=("classifier",))
    assert report.ok
    assert report.newly_initialized == []
    assert report.unused == []
    assert "output_weights" in report.loaded and "output_bias" in report.loaded
    num_trainable = len(google_ckpt.expected_variable_shapes(
        config, with_pretraining_heads=False, num_classifier_labels=3))
    assert len(report.loaded) == num_trainable
    assert report.skipped_training_state == 2 * num_trainable + 1  # adam_m, adam_v, global_step


def test_pretraining_checkpoint_into_classifier_leaves_head_new(pretraining_ckpt):
    directory, prefix, arrays, config = pretraining_ckpt
    model = BertClassifier(BertConfig.from_dict(config), num_classes=3)
    initial_head = model.classifier.output_weights.numpy().copy()
    report = load_google_checkpoint(model, prefix, optional_groups=("classifier",))
    assert sorted(report.newly_initialized) == ["output_bias", "output_weights"]
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    assert sorted(report.unused) == sorted(n for n in arrays if n.startswith("cls/"))
    np.testing.assert_array_equal(model.classifier.output_weights.numpy(), initial_head)
    np.testing.assert_array_equal(model.classifier.output_bias.numpy(), np.zeros(3, np.float32))
    # Encoder weights are loaded: the pooled output matches the reference.
    features = _batch(config)
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])
    pooled = model.encoder(_hub_inputs(features), training=False)["pooled_output"]
    assert _max_diff(pooled, ref["pooled_output"]) <= ATOL
    # Logits use the (new) head on top of the loaded encoder.
    head_arrays = {"output_weights": initial_head, "output_bias": np.zeros(3)}
    assert _max_diff(model(features, training=False),
                     numpy_bert.classifier_logits(head_arrays, ref["pooled_output"])) <= ATOL

    # Without optional_groups the missing head is an error in strict mode...
    from bert_tf.checkpoints import CheckpointMismatchError
    with pytest.raises(CheckpointMismatchError, match="output_weights"):
        load_google_checkpoint(BertClassifier(BertConfig.from_dict(config), num_classes=3), prefix)
    # ...but from_google_checkpoint treats the classifier head as optional.
    loaded = build_from_google_checkpoint(BertClassifier, directory, num_classes=3)
    assert loaded.num_classes == 3


# --------------------------------------------------------------------------- loss formulas


def _crafted_logits(ids: np.ndarray, vocab: int) -> np.ndarray:
    """Logits whose argmax is `ids` (so every prediction is right)."""
    logits = np.zeros(ids.shape + (vocab,), np.float32)
    np.put_along_axis(logits, ids[..., None].astype(np.int64), 5.0, axis=-1)
    return logits


def test_pretraining_loss_formula_on_crafted_logits():
    from bert_tf.models import pretraining_losses

    rng = np.random.RandomState(0)
    V = 7
    ids = rng.randint(0, V, size=(2, 3)).astype(np.int32)
    weights = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    logits = rng.standard_normal((2, 3, V)).astype(np.float32)
    nsp_logits = np.array([[2.0, -1.0], [0.5, 1.5]], np.float32)
    features = {"masked_lm_ids": ids, "masked_lm_weights": weights,
                "next_sentence_labels": np.array([[0], [0]], np.int32)}
    losses = pretraining_losses(features, logits, nsp_logits)
    log_probs = numpy_bert.log_softmax(logits.astype(np.float64))
    nll = -np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]
    expected_mlm = np.sum(weights * nll) / (np.sum(weights) + 1e-5)  # Google's exact formula
    nsp_nll = -numpy_bert.log_softmax(nsp_logits.astype(np.float64))[:, 0]
    assert abs(float(losses["masked_lm_loss"]) - expected_mlm) <= 1e-6
    assert abs(float(losses["next_sentence_loss"]) - nsp_nll.mean()) <= 1e-6
    assert abs(float(losses["loss"]) - expected_mlm - nsp_nll.mean()) <= 1e-6
    assert float(losses["next_sentence_accuracy"]) == 0.5
    # Weight-0 positions do not count: changing their logits changes nothing.
    changed = logits.copy()
    changed[0, 2] += 100.0
    changed[1, 1:] -= 50.0
    again = pretraining_losses(features, changed, nsp_logits)
    assert float(again["masked_lm_loss"]) == pytest.approx(float(losses["masked_lm_loss"]), abs=1e-6)


def test_masked_lm_accuracy_is_googles_weighted_fraction():
    from bert_tf.models import pretraining_losses

    ids = np.array([[3, 1, 4], [1, 5, 0]], np.int32)
    weights = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    features = {"masked_lm_ids": ids, "masked_lm_weights": weights,
                "next_sentence_labels": np.array([0, 1], np.int32)}
    nsp_logits = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    losses = pretraining_losses(features, _crafted_logits(ids, 6), nsp_logits)
    assert float(losses["next_sentence_accuracy"]) == 1.0
    assert abs(float(losses["masked_lm_accuracy"]) - 1.0) <= 1e-7
