"""BertSpanQA: parity with the NumPy BERT on a Google-layout run_squad checkpoint, Google names
both ways, .keras round trip."""
from __future__ import annotations

import os

import google_ckpt
import keras
import numpy as np
import numpy_bert
import pytest

from bert_tf.checkpoints import load_google_checkpoint, save_google_checkpoint
from bert_tf.config import BertConfig
from bert_tf.models import BertEncoder, BertSpanQA

ATOL = 1e-5


@pytest.fixture(scope="module")
def squad_ckpt(tmp_path_factory):
    """A run_squad-style fine-tuned checkpoint: bert/* + cls/squad/output_{weights,bias}."""
    directory = str(tmp_path_factory.mktemp("google_squad"))
    config = google_ckpt.tiny_config()
    arrays = google_ckpt.random_google_arrays(config, with_pretraining_heads=False, seed=5)
    rng = np.random.RandomState(9)
    arrays["cls/squad/output_weights"] = rng.normal(
        0, 0.2, (2, config["hidden_size"])).astype(np.float32)
    arrays["cls/squad/output_bias"] = np.array([0.3, -0.2], np.float32)
    prefix = google_ckpt.write_arrays_as_google_checkpoint(
        os.path.join(directory, "bert_model.ckpt"), arrays)
    return prefix, arrays, config


def _inputs(config, seed=2):
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, config["vocab_size"], size=(3, 9)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids = ids * mask
    segments = np.zeros_like(ids)
    segments[:, 4:] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments * mask}


def _model(prefix, config):
    model = BertSpanQA(BertEncoder(BertConfig.from_dict(config)))
    report = load_google_checkpoint(model, prefix, optional_groups=("span_qa",))
    assert not report.newly_initialized
    return model


def test_matches_numpy_reference(squad_ckpt):
    prefix, arrays, config = squad_ckpt
    model = _model(prefix, config)
    features = _inputs(config)
    out = model(features, training=False)
    ref = numpy_bert.bert_forward(arrays, config, features["input_ids"], features["input_mask"],
                                  features["segment_ids"])["sequence_output"]
    logits = ref @ arrays["cls/squad/output_weights"].astype(np.float64).T \
        + arrays["cls/squad/output_bias"]
    assert out["start_logits"].shape == (3, 9) and out["start_logits"].dtype == "float32"
    np.testing.assert_allclose(out["start_logits"], logits[..., 0], atol=ATOL)
    np.testing.assert_allclose(out["end_logits"], logits[..., 1], atol=ATOL)


def test_google_checkpoint_round_trip(squad_ckpt, tmp_path):
    prefix, arrays, config = squad_ckpt
    model = _model(prefix, config)
    saved = save_google_checkpoint(model, tmp_path)
    written = google_ckpt.read_checkpoint_arrays(saved)
    assert sorted(written) == sorted(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)


def test_pretrained_checkpoint_leaves_head_initialised(tmp_path):
    config = google_ckpt.tiny_config()
    prefix = google_ckpt.write_google_checkpoint(str(tmp_path), config, seed=1)
    model = BertSpanQA(BertEncoder(BertConfig.from_dict(config)))
    report = load_google_checkpoint(model, prefix, optional_groups=("span_qa",))
    assert sorted(report.newly_initialized) == ["cls/squad/output_bias",
                                                "cls/squad/output_weights"]
    with pytest.raises(Exception, match="cls/squad"):  # strict without the optional group
        load_google_checkpoint(BertSpanQA(BertEncoder(BertConfig.from_dict(config))), prefix)


def test_keras_round_trip(squad_ckpt, tmp_path):
    prefix, _, config = squad_ckpt
    model = _model(prefix, config)
    path = str(tmp_path / "span_qa.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, BertSpanQA)
    assert restored.get_config()["initializer_range"] == model.initializer_range
    features = _inputs(config, seed=4)
    for name in ("start_logits", "end_logits"):
        np.testing.assert_array_equal(restored(features)[name], model(features)[name])


def test_rejects_non_encoder():
    with pytest.raises(TypeError, match="BertEncoder"):
        BertSpanQA(keras.layers.Dense(2))
