"""Export task `embedding`: SavedModel (TF Serving layout) and TFLite, strings → embedding [B, D]."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import google_ckpt
import hf_ckpt
import bert_tf
from bert_tf.serving.compare import compare_paths
from bert_tf.serving.export import ExportSpec, export_saved_model, load_exported
from bert_tf.serving.tflite import Runner, export_tflite

GOOGLE_CONFIG = google_ckpt.tiny_config(hidden_act="gelu_exact")
TEXTS = ["The cat sat on the mat.", "A dog runs fast!", "the capital of france is paris"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("embedding")
    arrays = google_ckpt.random_google_arrays(GOOGLE_CONFIG, with_pretraining_heads=False,
                                              seed=2)
    st = hf_ckpt.write_sentence_transformer(str(base / "st"), GOOGLE_CONFIG, arrays,
                                            ("mean",), True, max_seq_length=12)
    embedder = bert_tf.from_pretrained(st).model
    spec = ExportSpec.for_embedder(embedder)
    path = export_saved_model(spec.serving_module(embedder), spec, str(base / "serving"),
                              "minilm")
    tflite = export_tflite(spec, embedder, str(base / "minilm.tflite"))
    return embedder, path, tflite


def test_saved_model_serves_the_embedding(exported):
    embedder, path, _ = exported
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](text=tf.constant(TEXTS))
    assert sorted(out) == ["embedding"] and out["embedding"].shape == (3, 32)
    np.testing.assert_allclose(out["embedding"], embedder(TEXTS), atol=1e-5)
    pair = loaded.signatures["text_pair"](text=tf.constant(TEXTS[:1]),
                                          text_b=tf.constant(TEXTS[1:2]))
    assert pair["embedding"].shape == (1, 32)
    spec, rebuilt = load_exported(path)  # the export reads back as the same model
    assert spec.task == "embedding" and spec.pooling_modes == ("mean",) and spec.normalize
    np.testing.assert_array_equal(rebuilt(TEXTS), embedder(TEXTS))
    again = bert_tf.from_pretrained(path)
    assert (again.task, again.format) == ("embedding", "saved_model")


def test_tflite_and_compare(exported):
    embedder, path, tflite = exported
    assert tflite["signatures"]["serving_default"]["outputs"]["embedding"]["shape"][-1] == 32
    got = Runner(tflite["path"]).predict(TEXTS)["embedding"]
    np.testing.assert_allclose(got, embedder(TEXTS), atol=1e-5)
    result = compare_paths(path, TEXTS, tflite_file=tflite["path"], server=False)
    assert result.max_abs_diff["TFLite"] < 1e-5
    assert result.label_mismatches == {"TFLite": 0}
    assert "embedding[32]" in result.table()
