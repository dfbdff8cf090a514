"""Token-classification serving: the exported SavedModel's entities equal the in-process
prediction (`predict_entities`: training features + Keras model + NumPy decoding) for English,
accented and Chinese texts, including texts longer than one window; export metadata, warmup
records and label errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (loading the export needs the tf-text ops)

import google_ckpt
from bert_tf import BertConfig, BertEncoder, BertPreprocessor
from bert_tf.checkpoints import load_google_checkpoint
from bert_tf.data.conll import ConllError
from bert_tf.models import BertTokenClassifier
from bert_tf.serving.export import (ExportError, export_from_checkpoint, read_export_metadata,
                                    resolve_token_labels, spec_from_checkpoint)
from bert_tf.serving.token_classifier import (TokenClassifierServingModule, default_doc_stride,
                                              predict_entities)
from bert_tf.serving.warmup import read_warmup_requests

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "in",
         "new", "york", "paris", "george", "washington", "went", "to", "cafe", "##s", "un",
         "##aff", "##able", ",", ".", "!", "'", "中", "国", "北", "京", "人", "在", "é", "ecole"]
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
CONFIG = google_ckpt.tiny_config(vocab_size=len(VOCAB), max_position_embeddings=40)
SEQ, STRIDE = 12, 4
TEXTS = [
    "George Washington went to Washington.",
    "",
    "Café in Paris, un café à New York!",                      # accented (uncased: stripped)
    "北京人在中国，他们在北京。",  # Chinese: one word per character
    "the cat sat on the mat in new york " * 4 + "George Washington",  # several windows
    "ÉCOLE naïve ñ",
    "xyzzy",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A Google-layout fine-tuned checkpoint whose head is scaled up so it predicts entities."""
    directory = str(tmp_path_factory.mktemp("ner_ckpt"))
    arrays = google_ckpt.random_google_arrays(CONFIG, with_pretraining_heads=False,
                                              num_classifier_labels=len(LABELS), seed=7)
    arrays["output_weights"] = arrays["output_weights"] * 200
    arrays["output_bias"] = np.array([1.0, 0, 0, 0, 0], np.float32)
    prefix = google_ckpt.write_arrays_as_google_checkpoint(
        os.path.join(directory, "bert_model.ckpt"), arrays)
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        f.write(BertConfig.from_dict(CONFIG).to_json_string())
    for name, lines in (("vocab.txt", VOCAB), ("labels.txt", LABELS)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write("".join(f"{x}\n" for x in lines))
    return prefix


@pytest.fixture(scope="module")
def in_process(checkpoint):
    model = BertTokenClassifier(BertEncoder(BertConfig.from_dict(CONFIG)), len(LABELS))
    load_google_checkpoint(model, checkpoint, optional_groups=("classifier",))
    preprocessor = BertPreprocessor(VOCAB, do_lower_case=True, seq_length=SEQ)
    return model, preprocessor


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    spec = spec_from_checkpoint("token_classifier", checkpoint, None, None, True, SEQ, None,
                                doc_stride=STRIDE)
    return export_from_checkpoint(spec, checkpoint, str(tmp_path_factory.mktemp("export")),
                                  "ner")


def _as_lists(outputs):
    out = []
    for i, n in enumerate(outputs["num_entities"].numpy()):
        out.append([(outputs["entity_text"][i, j].numpy().decode(),
                     outputs["entity_type"][i, j].numpy().decode(),
                     float(outputs["score"][i, j]), int(outputs["start"][i, j]),
                     int(outputs["end"][i, j])) for j in range(n)])
    return out


def _check_equal(served, expected):
    assert len(served) == len(expected)
    for got, want in zip(served, expected):
        assert [(t, ty, s, e) for t, ty, _, s, e in got] == [
            (x.text, x.type, x.start, x.end) for x in want]
        np.testing.assert_allclose([g[2] for g in got], [x.score for x in want], atol=1e-5)


def test_saved_model_entities_equal_in_process_prediction(exported, in_process):
    model, preprocessor = in_process
    expected = predict_entities(model, preprocessor, LABELS, TEXTS, doc_stride=STRIDE)
    # The test is only meaningful if there are entities, in long and Chinese texts too.
    assert sum(len(e) for e in expected) >= 8
    assert expected[3] and expected[4] and expected[4][-1].end > 120
    loaded = tf.saved_model.load(exported)
    outputs = loaded.signatures["serving_default"](text=tf.constant(TEXTS))
    assert sorted(outputs) == ["end", "entity_text", "entity_type", "num_entities", "score",
                               "start"]
    served = _as_lists(outputs)
    _check_equal(served, expected)
    for text, entities in zip(TEXTS, served):
        for entity_text, entity_type, score, start, end in entities:
            assert text[start:end] == entity_text  # offsets are code points
            assert entity_type in ("LOC", "PER") and 0 < score <= 1
    # Padding, and texts one at a time give the same entities as in a batch.
    width = outputs["entity_text"].shape[1]
    assert width == max(len(e) for e in expected)
    row = int(np.argmin(outputs["num_entities"]))
    assert outputs["start"][row, -1] == -1 and outputs["entity_text"][row, -1] == b""
    for i in (3, 4):
        alone = _as_lists(loaded.signatures["serving_default"](text=tf.constant(TEXTS[i:i + 1])))
        _check_equal(alone, expected[i:i + 1])


def test_long_text_is_windowed_not_truncated(in_process):
    model, preprocessor = in_process
    module = TokenClassifierServingModule(model, preprocessor, LABELS, doc_stride=STRIDE)
    text = TEXTS[4]
    words = len(text.split())
    assert words > SEQ  # several windows
    served = _as_lists(module.entities(tf.constant([text])))[0]
    expected = predict_entities(model, preprocessor, LABELS, [text], doc_stride=STRIDE)[0]
    _check_equal([served], [expected])
    # A different stride changes the windows but still predicts every word: entities reach
    # the end of the text.
    wide = predict_entities(model, preprocessor, LABELS, [text], doc_stride=1)[0]
    assert max(e.end for e in wide) > len(text) - 20
    assert default_doc_stride(SEQ) == 5


def test_empty_batch(in_process):
    model, preprocessor = in_process
    module = TokenClassifierServingModule(model, preprocessor, LABELS)
    outputs = module.serve_text(tf.constant([], tf.string))
    assert outputs["entity_text"].shape == (0, 0) and outputs["num_entities"].shape == (0,)


def test_export_metadata_and_warmup(exported):
    metadata = read_export_metadata(exported)
    assert metadata["task"] == "token_classifier"
    assert metadata["labels"] == LABELS and metadata["doc_stride"] == STRIDE
    assert list(metadata["signatures"]) == ["serving_default"]
    requests = read_warmup_requests(os.path.join(exported, "assets.extra",
                                                 "tf_serving_warmup_requests"))
    assert [r.predict_log.request.model_spec.signature_name for r in requests] == [
        "serving_default"] * 2


def test_label_errors(checkpoint, tmp_path, in_process):
    with pytest.raises(ExportError, match="head has 5 labels but --labels names 3"):
        resolve_token_labels(checkpoint, ["O", "B-X", "I-X"])
    with pytest.raises(ConllError, match="must be IOB2 tags"):
        resolve_token_labels(checkpoint, ["O", "B-X", "I-X", "S-X", "E-X"])
    bare = google_ckpt.write_google_checkpoint(str(tmp_path / "bare"), CONFIG,
                                               with_pretraining_heads=False,
                                               num_classifier_labels=5)
    with pytest.raises(ExportError, match="no --labels given and no labels.txt"):
        resolve_token_labels(bare)
    model, preprocessor = in_process
    with pytest.raises(ValueError, match="3 labels"):
        TokenClassifierServingModule(model, preprocessor, ["O", "B-X", "I-X"])


def test_development_server_grpc_and_rest(exported, in_process):
    from bert_tf.serving import client
    from bert_tf.serving.server import ModelServer

    model, preprocessor = in_process
    expected = predict_entities(model, preprocessor, LABELS, TEXTS, doc_stride=STRIDE)
    with ModelServer(os.path.dirname(exported), "ner") as server:
        for got in (client.predict_grpc(server.grpc_address, "ner", {"text": TEXTS}),
                    client.predict_rest(server.rest_url, "ner", {"text": TEXTS})):
            got = {k: tf.constant(np.asarray(v)) for k, v in got.items()}
            _check_equal(_as_lists(got), expected)


def test_export_script_task_token_classifier(checkpoint, tmp_path):
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=repo)
    proc = subprocess.run(
        [sys.executable, os.path.join(repo, "export", "export_saved_model.py"),
         "--task=token_classifier", f"--init_checkpoint={checkpoint}",
         f"--export_dir={tmp_path}", "--model_name=ner", f"--max_seq_length={SEQ}",
         "--doc_stride=3"], capture_output=True, text=True, timeout=300, env=env, cwd=repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metadata = read_export_metadata(tmp_path / "ner" / "1")
    assert (metadata["task"], metadata["labels"], metadata["doc_stride"]) == (
        "token_classifier", LABELS, 3)
