"""SavedModel export for TF Serving: string signatures, TF Serving layout, C++-loader parity,
warmup records, masked-LM fill-mask, and the export script's errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (loading the exports needs the tf-text ops)

from bert_tf import BertClassifier, BertConfig, BertEncoder, BertPretrainer, BertPreprocessor
from bert_tf.checkpoints import build_from_google_checkpoint
from bert_tf.serving.export import (ExportError, ExportSpec, export_from_checkpoint,
                                    export_saved_model, load_exported, read_export_metadata,
                                    resolve_labels, version_dir)
from bert_tf.serving.warmup import read_warmup_requests
from bert_tf.text.python_tokenizer import FullTokenizer
from bert_tf.text.vocab import Vocab
from google_ckpt import tiny_config, write_google_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "export", "export_saved_model.py")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
         "capital", "of", "france", "is", "paris", "good", "bad", "movie", "un", "##aff",
         "##able", ",", ".", "!", "a", "was", "cafe", "東", "京"]
CONFIG = tiny_config(vocab_size=len(VOCAB), max_position_embeddings=32)
SEQ = 12
LABELS = ["neg", "neutral", "pos"]
TEXTS = ["The cat sat on the mat.", "", "a good movie!", "Unaffable café, 東京",
         "the cat sat on the mat " * 6, "   ", "xyzzy"]
TEXTS_B = ["Paris", "the capital of France", "", "bad", "mat", "on", "the"]


def _cli(*args, timeout=180):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def _assert_clean_error(proc, *needles):
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if "error:" in line]
    assert len(starts) == 1, proc.stderr[-3000:]
    message = "\n".join(lines[starts[0]:])  # the message (a checkpoint listing spans lines)
    for needle in needles:
        assert needle in message, message


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("clf"))
    prefix = write_google_checkpoint(directory, CONFIG, with_pretraining_heads=False,
                                     num_classifier_labels=3, vocab_tokens=VOCAB, seed=3)
    with open(os.path.join(directory, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")
    return prefix


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory):
    return write_google_checkpoint(str(tmp_path_factory.mktemp("pre")), CONFIG,
                                   vocab_tokens=VOCAB, seed=4)


@pytest.fixture(scope="module")
def exported_classifier(tmp_path_factory, classifier_ckpt):
    """The classifier exported through the script (labels from labels.txt beside it)."""
    base = tmp_path_factory.mktemp("serving")
    proc = _cli(SCRIPT, "--task=classifier", f"--init_checkpoint={classifier_ckpt}",
                f"--export_dir={base}", "--model_name=clf", f"--max_seq_length={SEQ}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = os.path.join(base, "clf", "1")
    assert proc.stdout.strip().splitlines()[-1] == path
    return path


def _preprocessor():
    return BertPreprocessor(VOCAB, do_lower_case=True, seq_length=SEQ)


def _spec(task, **kw):
    return ExportSpec(task, BertConfig.from_dict(CONFIG), Vocab(VOCAB), max_seq_length=SEQ, **kw)


# ----------------------------------------------------------------------------- classifier
def test_classifier_layout_and_assets(exported_classifier):
    names = sorted(os.listdir(exported_classifier))
    assert names == ["assets", "assets.extra", "fingerprint.pb", "saved_model.pb", "variables"]
    with open(os.path.join(exported_classifier, "assets", "vocab.txt")) as f:
        assert f.read().splitlines() == VOCAB
    meta = read_export_metadata(exported_classifier)
    assert meta["task"] == "classifier" and meta["labels"] == LABELS
    assert meta["max_seq_length"] == SEQ and meta["do_lower_case"] is True
    assert set(meta["signatures"]) == {"serving_default", "text_pair"}
    # The tf-text ops a TF Serving build must contain (export/README.md lists them).
    assert meta["custom_ops"] == ["FastBertNormalize", "FastWordpieceTokenizeWithOffsets",
                                  "TFText>ByteSplitWithOffsets", "TFText>RoundRobinTrim",
                                  "TFText>WhitespaceTokenizeWithOffsetsV2"]
    assert meta["signatures"]["serving_default"]["inputs"] == {
        "text": {"dtype": "string", "shape": [None]}}
    # Warmup: PredictionLog records TF Serving can replay against the signatures.
    logs = read_warmup_requests(os.path.join(exported_classifier, "assets.extra",
                                             "tf_serving_warmup_requests"))
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == [
        "serving_default", "serving_default", "text_pair"]
    assert all(r.model_spec.name == "clf" for r in requests)
    loaded = tf.saved_model.load(exported_classifier)
    for r in requests:
        inputs = {k: tf.make_ndarray(v) for k, v in r.inputs.items()}
        out = loaded.signatures[r.model_spec.signature_name](**inputs)
        assert out["probabilities"].shape[0] == len(inputs["text"])


def test_classifier_outputs_equal_in_process_model(exported_classifier, classifier_ckpt):
    model = build_from_google_checkpoint(BertClassifier, classifier_ckpt, num_classes=3)
    pre = _preprocessor()
    loaded = tf.saved_model.load(exported_classifier)
    assert loaded.do_lower_case.numpy()
    assert loaded.vocab_file.asset_path.numpy().decode().endswith("assets/vocab.txt")

    for out, inputs in (
            (loaded.signatures["serving_default"](text=tf.constant(TEXTS)), pre(tf.constant(TEXTS))),
            (loaded.signatures["text_pair"](text=tf.constant(TEXTS), text_b=tf.constant(TEXTS_B)),
             pre((tf.constant(TEXTS), tf.constant(TEXTS_B))))):
        logits = model(inputs, training=False).numpy()
        np.testing.assert_allclose(out["logits"].numpy(), logits, atol=1e-5)
        np.testing.assert_allclose(out["probabilities"].numpy(),
                                   tf.nn.softmax(logits).numpy(), atol=1e-6)
        assert [x.decode() for x in out["label"].numpy()] == [LABELS[i] for i in
                                                             logits.argmax(-1)]


def test_classifier_in_cpp_loader_matches_python(exported_classifier, tmp_path):
    """`saved_model_cli run` (TF1 session loader, as TF Serving's C++ loader) == tf.saved_model."""
    proc = _cli("-m", "bert_tf.serving.saved_model_cli", "run", "--dir", exported_classifier,
                "--tag_set", "serve", "--signature_def", "text_pair",
                "--input_exprs", f"text={TEXTS!r};text_b={TEXTS_B!r}",
                "--outdir", str(tmp_path), "--overwrite")
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = tf.saved_model.load(exported_classifier).signatures["text_pair"](
        text=tf.constant(TEXTS), text_b=tf.constant(TEXTS_B))
    for name in ("probabilities", "logits"):
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected[name].numpy(),
                                   atol=1e-6)
    assert np.load(tmp_path / "label.npy", allow_pickle=True).tolist() == \
        expected["label"].numpy().tolist()


def test_batch_edge_cases(exported_classifier):
    serve = tf.saved_model.load(exported_classifier).signatures["serving_default"]
    empty = serve(text=tf.constant([], tf.string))
    assert empty["probabilities"].shape == (0, 3) and empty["label"].shape == (0,)
    # Long texts are truncated to max_seq_length (same result as their first pieces).
    long_text = "the cat sat on the mat " * 50
    prefix = " ".join(long_text.split()[:SEQ - 2])
    out = serve(text=tf.constant([long_text, prefix]))["logits"].numpy()
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a string tensor"):
        serve(text=tf.constant([1, 2]))


def test_regression_export_returns_score(tmp_path):
    spec = _spec("classifier")
    model = spec.build_model()
    assert model.num_classes == 1
    path = export_saved_model(spec.serving_module(model), spec, tmp_path, "stsb")
    out = tf.saved_model.load(path).signatures["text_pair"](text=tf.constant(TEXTS),
                                                            text_b=tf.constant(TEXTS_B))
    assert sorted(out) == ["score"]
    expected = model(_preprocessor()((tf.constant(TEXTS), tf.constant(TEXTS_B))))[:, 0]
    np.testing.assert_allclose(out["score"].numpy(), expected.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------- encoder
def test_encoder_signatures_match_keras(tmp_path, pretrained_ckpt):
    spec = _spec("encoder")
    path = export_from_checkpoint(spec, pretrained_ckpt, tmp_path, "enc")
    encoder = build_from_google_checkpoint(BertEncoder, pretrained_ckpt)
    inputs = _preprocessor()(tf.constant(TEXTS))
    expected = encoder(inputs, training=False)
    loaded = tf.saved_model.load(path)
    for out in (loaded.signatures["serving_default"](text=tf.constant(TEXTS)),
                loaded.signatures["encode"](**inputs)):
        np.testing.assert_allclose(out["pooled_output"], expected["pooled_output"], atol=1e-5)
        np.testing.assert_allclose(out["sequence_output"], expected["sequence_output"],
                                   atol=1e-5)
        assert out["encoder_outputs"].shape == (len(TEXTS), CONFIG["num_hidden_layers"], SEQ,
                                                CONFIG["hidden_size"])
        for i, layer in enumerate(expected["encoder_outputs"]):
            np.testing.assert_allclose(out["encoder_outputs"][:, i], layer, atol=1e-5)


# ----------------------------------------------------------------------------- masked LM
def _fill_mask_reference(pretrainer, text, k):
    """Google's tokenizer on the parts around each literal [MASK], then NumPy top-k."""
    tokenizer = FullTokenizer(Vocab(VOCAB), do_lower_case=True)
    ids = []
    for i, part in enumerate(text.split("[MASK]")):
        if i:
            ids.append(VOCAB.index("[MASK]"))
        ids += tokenizer.convert_tokens_to_ids(tokenizer.tokenize(part))
    ids = [2] + ids[:SEQ - 2] + [3]
    word_ids = np.array([ids + [0] * (SEQ - len(ids))], np.int32)
    positions = np.flatnonzero(word_ids[0] == VOCAB.index("[MASK]"))
    sequence = pretrainer.encoder({"input_word_ids": word_ids,
                                   "input_mask": (np.arange(SEQ) < len(ids))[None].astype("int32"),
                                   "input_type_ids": np.zeros_like(word_ids)})["sequence_output"]
    logits = pretrainer.masked_lm(sequence, mask_positions=positions[None].astype("int32"))
    probs = tf.nn.softmax(tf.cast(logits, tf.float64)).numpy()[0]
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return positions, top, np.take_along_axis(probs, top, axis=-1)


def test_masked_lm_fill_mask(tmp_path, pretrained_ckpt):
    spec = _spec("masked_lm", top_k=4)
    path = export_from_checkpoint(spec, pretrained_ckpt, tmp_path, "mlm")
    pretrainer = build_from_google_checkpoint(BertPretrainer, pretrained_ckpt)
    texts = ["The capital of France is [MASK].", "[MASK] cat [MASK] on the [MASK]",
             "no mask here", "the cat sat on the mat the cat sat on the [MASK]"]
    out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(texts))
    assert out["top_k_tokens"].shape == (4, 3, 4)
    for row, text in enumerate(texts):
        positions, top, scores = _fill_mask_reference(pretrainer, text, 4)
        m = len(positions)
        np.testing.assert_array_equal(out["masked_lm_positions"][row, :m], positions)
        np.testing.assert_array_equal(out["masked_lm_positions"][row, m:], -1)
        np.testing.assert_array_equal(out["top_k_ids"][row, :m], top)
        np.testing.assert_allclose(out["top_k_scores"][row, :m], scores, atol=1e-6)
        assert out["top_k_tokens"][row, :m].numpy().tolist() == \
            [[VOCAB[i].encode() for i in r] for r in top]
        assert (out["top_k_tokens"][row, m:].numpy() == b"").all()
        assert (out["top_k_scores"][row, m:].numpy() == 0).all()
    # The third text has no mask; the fourth's mask falls beyond max_seq_length (truncated).
    assert (out["masked_lm_positions"][2:].numpy() == -1).all()
    assert out["masked_lm_positions"][0, 0] == 6  # [CLS] the capital of france is [MASK]
    empty = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant([], tf.string))
    assert empty["top_k_tokens"].shape == (0, 0, 4)


def test_masked_lm_needs_pretraining_heads(tmp_path, classifier_ckpt):
    proc = _cli(SCRIPT, "--task=masked_lm", f"--init_checkpoint={classifier_ckpt}",
                f"--export_dir={tmp_path}", "--model_name=m", f"--max_seq_length={SEQ}")
    _assert_clean_error(proc, "does not match the model", "cls/predictions")


# ----------------------------------------------------------------------------- versions, reload
def test_versions_overwrite_and_reload(tmp_path, classifier_ckpt):
    spec = _spec("classifier", labels=LABELS)
    first = export_from_checkpoint(spec, classifier_ckpt, tmp_path, "m")
    second = export_from_checkpoint(spec, classifier_ckpt, tmp_path, "m")
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    with pytest.raises(ExportError, match="already exists: pass --overwrite"):
        export_from_checkpoint(spec, classifier_ckpt, tmp_path, "m", version=2)
    os.remove(os.path.join(second, "assets.extra", "bert_tf_export.json"))
    export_from_checkpoint(spec, classifier_ckpt, tmp_path, "m", version=2, overwrite=True)
    assert read_export_metadata(second)["labels"] == LABELS  # replaced, complete again
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2"]  # no staging directories left
    assert version_dir(tmp_path, "m") == (os.path.join(tmp_path, "m", "3"), 3)
    # The exported weights rebuild the Keras model exactly (used by the TFLite converter).
    spec2, model = load_exported(second)
    assert spec2.labels == LABELS and spec2.task == "classifier"
    reference = build_from_google_checkpoint(BertClassifier, classifier_ckpt, num_classes=3)
    for a, b in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "bfloat16"])
def test_bfloat16_export_stays_close(tmp_path, classifier_ckpt, policy):
    spec = _spec("classifier", labels=LABELS, dtype_policy=policy)
    path = export_from_checkpoint(spec, classifier_ckpt, tmp_path, "bf16")
    out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(TEXTS))
    assert out["probabilities"].dtype == tf.float32
    reference = build_from_google_checkpoint(BertClassifier, classifier_ckpt, num_classes=3)
    expected = tf.nn.softmax(reference(_preprocessor()(tf.constant(TEXTS)))).numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=2e-2)


# ----------------------------------------------------------------------------- bad input
def test_labels_resolution(classifier_ckpt, pretrained_ckpt, tmp_path):
    assert resolve_labels(classifier_ckpt) == LABELS  # labels.txt beside it
    assert resolve_labels(classifier_ckpt, ["a", "b", "c"]) == ["a", "b", "c"]
    with pytest.raises(ExportError, match="has 3 classes but --labels names 2"):
        resolve_labels(classifier_ckpt, ["a", "b"])
    with pytest.raises(ExportError, match="no classifier head"):
        resolve_labels(pretrained_ckpt)
    with pytest.raises(ExportError, match="unknown task 'ner'"):
        _spec("ner")
    with pytest.raises(ExportError, match="exceeds the model's max_position_embeddings"):
        ExportSpec("encoder", BertConfig.from_dict(CONFIG), Vocab(VOCAB), max_seq_length=64)


def test_script_errors(tmp_path, classifier_ckpt, exported_classifier):
    base = os.path.dirname(os.path.dirname(exported_classifier))
    common = (SCRIPT, f"--init_checkpoint={classifier_ckpt}", f"--max_seq_length={SEQ}")
    _assert_clean_error(_cli(*common, f"--export_dir={base}", "--model_name=clf", "--version=1"),
                        os.path.join(base, "clf", "1"), "already exists", "--overwrite")
    _assert_clean_error(_cli(*common, f"--export_dir={tmp_path}", "--model_name=x",
                             f"--vocab_file={tmp_path / 'missing.txt'}"), "missing.txt")
    _assert_clean_error(_cli(*common, f"--export_dir={tmp_path}", "--model_name=x",
                             "--labels=a,b"), "3 classes", "--labels names 2")
    # A checkpoint that does not fit the config: the loader's listing.
    wrong = dict(CONFIG, num_hidden_layers=3)
    config_file = tmp_path / "wrong_config.json"
    config_file.write_text(json.dumps(wrong))
    _assert_clean_error(_cli(*common, f"--export_dir={tmp_path}", "--model_name=x",
                             f"--bert_config_file={config_file}"),
                        "does not match the model", "layer_2")
    assert not os.path.exists(tmp_path / "x")  # nothing half-written
