"""TFLite export with in-graph tokenization: parity with the SavedModel (float32, float16),
dynamic-range int8 agreement, the encoder, the JSON sidecar, the Runner and the script.

Each conversion happens once (module fixtures). The script's runs (a float16 conversion from the
SavedModel, and its error paths) go on in background processes while this process converts.
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (loading the SavedModel needs the tf-text ops)

from bert_tf import BertConfig
from bert_tf.serving.export import ExportSpec, export_from_checkpoint, load_model
from bert_tf.serving.tflite import (Runner, TFLiteError, check_output_path, convert, custom_ops,
                                    export_tflite, make_interpreter, sidecar_path, verify_model)
from bert_tf.text.vocab import Vocab
from google_ckpt import (random_google_arrays, tiny_config, write_arrays_as_google_checkpoint,
                         write_google_checkpoint)

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "export", "export_tflite.py")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
         "capital", "of", "france", "is", "paris", "good", "bad", "movie", "un", "##aff",
         "##able", ",", ".", "!", "a", "was", "cafe", "東", "京", "σ", "##ο", "##φ", "##ι", "##α"]
CONFIG = tiny_config(vocab_size=len(VOCAB), max_position_embeddings=32)
SEQ = 12
LABELS = ["neg", "neutral", "pos"]
# Empty and blank texts, truncation, accents, CJK, punctuation, case, unknown words, controls,
# emoji; a capital sigma only at a word's start (at a word's end TFLite lower-cases it to σ,
# the SavedModel to ς: the one known difference).
TEXTS = ["The cat sat on the mat.", "", "   ", "a good movie!", "Unaffable café, naïve élan",
         "東京 the capital 東京京", "the cat sat on the mat " * 6, "!!! ... ,,, ?!",
         "THE CAT SAT", "xyzzy plugh", "tab\there\nnewline\x00nul", "emoji 🙂 cat", "Σοφια"]
TEXTS_B = ["Paris", "the capital of France", "", "bad", "mat", "on", "the", "Café", "a",
           "good " * 20, "", "京", "σοφια"]
EXPECTED_OPS = {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets"}


def _cli(*args):
    """Starts the script; `.result()` waits for it."""
    # PYTHONPATH: export/*.py must import this checkout's bert_tf, not an installed copy.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return _Run(subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env, cwd=REPO))


class _Run:
    """A script run in the background; `.result()` waits: (returncode, stdout, stderr)."""

    def __init__(self, proc):
        self.proc, self._out = proc, None

    def result(self, timeout=300):
        if self._out is None:
            stdout, stderr = self.proc.communicate(timeout=timeout)
            self._out = (self.proc.returncode, stdout, stderr)
        return self._out


def _assert_clean_error(run, *needles):
    code, _, stderr = run.result()
    assert code == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def _spec(task, **kw):
    return ExportSpec(task, BertConfig.from_dict(CONFIG), Vocab(VOCAB), max_seq_length=SEQ, **kw)


def _close(got, want, atol):
    """Max abs diff, asserting it is within atol."""
    diff = float(np.max(np.abs(np.asarray(got) - np.asarray(want))))
    assert diff <= atol, f"max diff {diff} > {atol}"
    return diff


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("clf"))
    prefix = write_google_checkpoint(directory, CONFIG, with_pretraining_heads=False,
                                     num_classifier_labels=3, vocab_tokens=VOCAB, seed=3)
    with open(os.path.join(directory, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")
    return prefix


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, classifier_ckpt):
    return export_from_checkpoint(_spec("classifier", labels=LABELS), classifier_ckpt,
                                  tmp_path_factory.mktemp("serving"), "clf")


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory, classifier_ckpt, saved_model):
    """The script's runs, started together in the background (each is mostly TensorFlow's
    import; they overlap the conversions in this process): the SavedModel to float16, and
    three runs that must fail cleanly."""
    base = tmp_path_factory.mktemp("script")
    existing = base / "exists.tflite"
    existing.write_bytes(b"old")
    runs = {
        "float16": _cli(f"--saved_model_dir={saved_model}", "--quantize=float16",
                        f"--output_file={base / 'clf16.tflite'}"),
        "masked_lm": _cli(f"--init_checkpoint={classifier_ckpt}", "--task=masked_lm",
                          f"--output_file={base / 'mlm.tflite'}"),
        "existing": _cli(f"--saved_model_dir={saved_model}", f"--output_file={existing}"),
        "missing": _cli(f"--saved_model_dir={base / 'nope' / '1'}",
                        f"--output_file={base / 'x.tflite'}"),
    }
    yield base, runs
    for run in runs.values():  # a run no test waited for (a failure earlier): stop it
        if run.proc.poll() is None:
            run.proc.kill()
        run.proc.communicate()


@pytest.fixture(scope="module")
def classifier_tflite(tmp_path_factory, classifier_ckpt, script_runs):
    """float32 TFLite of the classifier (the script, from the SavedModel, runs meanwhile)."""
    spec = _spec("classifier", labels=LABELS)
    return export_tflite(spec, load_model(spec, classifier_ckpt),
                         tmp_path_factory.mktemp("tflite") / "clf.tflite")


@pytest.fixture(scope="module")
def saved_signatures(saved_model):
    loaded = tf.saved_model.load(saved_model)
    return loaded.signatures["serving_default"], loaded.signatures["text_pair"], loaded


# ----------------------------------------------------------------------------- classifier
def test_classifier_float32_matches_saved_model(classifier_tflite, saved_signatures):
    single, pair, _ = saved_signatures
    runner = Runner(classifier_tflite["path"])
    diffs = []
    for got, want in ((runner.predict(TEXTS), single(text=tf.constant(TEXTS))),
                      (runner.predict(TEXTS, TEXTS_B),
                       pair(text=tf.constant(TEXTS), text_b=tf.constant(TEXTS_B)))):
        assert sorted(got) == ["label", "logits", "probabilities"]
        assert got["logits"].shape == (len(TEXTS), 3) and got["logits"].dtype == np.float32
        diffs.append(_close(got["logits"], want["logits"], 1e-5))
        diffs.append(_close(got["probabilities"], want["probabilities"], 1e-5))
        assert got["label"].tolist() == [x.decode() for x in want["label"].numpy()]
    print(f"\nfloat32 max diff vs SavedModel: {max(diffs):.2e}")
    # Truncation: a long text gives the same outputs as its first SEQ - 2 pieces.
    long_text = "the cat sat on the mat " * 50
    out = runner.predict([long_text, " ".join(long_text.split()[:SEQ - 2])])["logits"]
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_sidecar_describes_the_model(classifier_tflite):
    path = classifier_tflite["path"]
    with open(sidecar_path(path)) as f:
        meta = json.load(f)
    assert sidecar_path(path) == os.path.splitext(path)[0] + ".json"
    # Written with the umask's permissions (not mkstemp's 0600), like any other output.
    umask = os.umask(0)
    os.umask(umask)
    for written in (path, sidecar_path(path)):
        assert os.stat(written).st_mode & 0o777 == 0o666 & ~umask, written
    with open(path, "rb") as f:
        data = f.read()
    assert meta["size_bytes"] == len(data) and meta["quantize"] == "none"
    assert meta["task"] == "classifier" and meta["labels"] == LABELS
    assert meta["vocab_size"] == len(VOCAB) and meta["max_seq_length"] == SEQ
    assert meta["do_lower_case"] is True and meta["tflite_file"] == "clf.tflite"
    assert meta["signatures"]["serving_default"] == {
        "inputs": {"text": {"dtype": "string", "shape": [1]}},
        "outputs": {"label": {"dtype": "string", "shape": [-1]},
                    "logits": {"dtype": "float32", "shape": [-1, 3]},
                    "probabilities": {"dtype": "float32", "shape": [-1, 3]}}}
    assert sorted(meta["signatures"]["text_pair"]["inputs"]) == ["text", "text_b"]
    # The custom ops: read from the flatbuffer, and the same as the interpreter runs.
    assert meta["custom_ops"] == custom_ops(data)
    assert EXPECTED_OPS <= set(meta["custom_ops"])
    assert not [op for op in meta["custom_ops"] if op.startswith("Flex")]
    ran = {d["op_name"] for d in make_interpreter(data)._get_ops_details()}
    assert set(meta["custom_ops"]) <= ran
    # A stock interpreter (no tf-text ops registered) cannot run it.
    with pytest.raises(RuntimeError, match="unresolved custom op: FastBertNormalize"):
        tf.lite.Interpreter(model_content=data).allocate_tensors()
    print(f"\ncustom ops: {meta['custom_ops']}; float32 size {len(data)} bytes")


def test_runner_labels_and_edge_cases(classifier_tflite, tmp_path):
    runner = Runner(classifier_tflite["path"], num_threads=1)
    assert runner.task == "classifier" and runner.labels == LABELS
    assert set(runner.signatures) == {"serving_default", "text_pair"}
    out = runner.predict(TEXTS[:4])
    assert out["label"].tolist() == [LABELS[i] for i in out["logits"].argmax(-1)]
    assert all(isinstance(x, str) for x in out["label"])
    empty = runner.predict([])
    assert empty["logits"].shape == (0, 3) and empty["label"].shape == (0,)
    assert runner.predict([b"a good movie!"])["logits"].tolist() == \
        runner.predict(["a good movie!"])["logits"].tolist()
    with pytest.raises(TypeError, match="list of texts"):
        runner.predict("a single string")
    with pytest.raises(ValueError, match="same length"):
        runner.predict(["a", "b"], ["c"])
    with pytest.raises(FileNotFoundError):
        Runner(tmp_path / "missing.tflite")
    # Without its sidecar the model still runs (labels come from the model's `label` output).
    copy = tmp_path / "bare.tflite"
    copy.write_bytes(open(classifier_tflite["path"], "rb").read())
    bare = Runner(copy)
    assert bare.metadata == {} and bare.labels == []
    assert bare.predict(TEXTS[:4])["label"].tolist() == out["label"].tolist()


def test_script_float16(script_runs, classifier_tflite, saved_signatures):
    base, runs = script_runs
    output = base / "clf16.tflite"
    code, stdout, stderr = runs["float16"].result()
    assert code == 0, stderr[-3000:]
    lines = stdout.strip().splitlines()
    assert lines[0] == str(output)
    size = os.path.getsize(output)
    assert lines[1].startswith(f"size: {size} bytes") and "quantize: float16" in lines[1]
    with open(sidecar_path(output)) as f:
        meta = json.load(f)
    assert lines[2] == f"custom ops: {', '.join(meta['custom_ops'])}"
    assert meta["quantize"] == "float16" and meta["labels"] == LABELS
    assert EXPECTED_OPS <= set(meta["custom_ops"])
    assert size < classifier_tflite["size_bytes"]
    single, pair, _ = saved_signatures
    runner = Runner(output)
    diffs = []
    for got, want in ((runner.predict(TEXTS), single(text=tf.constant(TEXTS))),
                      (runner.predict(TEXTS, TEXTS_B),
                       pair(text=tf.constant(TEXTS), text_b=tf.constant(TEXTS_B)))):
        # float16 rounding of every weight (embeddings, dense, layer norms alike) moves these
        # logits (|logit| <= 1.3) by up to 9.2e-4: 2e-3 leaves room; probabilities 1.6e-4.
        diffs.append(_close(got["logits"], want["logits"], 2e-3))
        diffs.append(_close(got["probabilities"], want["probabilities"], 1e-3))
    print(f"\nfloat16: {size} bytes (float32 {classifier_tflite['size_bytes']}), "
          f"max diff vs SavedModel: logits {max(diffs[::2]):.2e}, "
          f"probabilities {max(diffs[1::2]):.2e}")


# ----------------------------------------------------------------------------- int8
TOPICS = [["the", "cat", "sat", "on", "mat", "a"], ["capital", "of", "France", "is", "Paris"],
          ["good", "bad", "movie", "was", "unaffable"]]
NOISE = [",", ".", "!", "?", "Café", "東京", "xyzzy", "élan", "naïve"]


def _generated_texts(n, seed=7):
    """Texts of three 'topics' (80% of the words from the topic, the rest from anything)."""
    rng = random.Random(seed)
    anything = NOISE + sum(TOPICS, [])
    texts, topics = [], []
    for _ in range(n):
        topic = rng.randrange(3)
        texts.append(" ".join(rng.choice(TOPICS[topic]) if rng.random() < 0.8
                              else rng.choice(anything) for _ in range(rng.randint(1, 20))))
        topics.append(topic)
    return texts, np.array(topics)


def test_dynamic_int8_agrees_with_float32(tmp_path, classifier_tflite):
    """A classifier whose head separates the topics in the encoder's own pooled outputs (the
    class means, as a fine-tuned head would), so that all classes occur; the int8 model must
    predict the float32 model's class on >= 99% of 300 generated texts."""
    texts, topics = _generated_texts(300)
    arrays = random_google_arrays(CONFIG, with_pretraining_heads=False,
                                  num_classifier_labels=3, seed=7)
    prefix = write_arrays_as_google_checkpoint(str(tmp_path / "bert_model.ckpt"), arrays)
    spec = _spec("classifier", labels=LABELS)
    model = load_model(spec, prefix)
    pooled = model.encoder(spec.preprocessor()(tf.constant(texts)),
                           training=False)["pooled_output"].numpy()
    center = pooled.mean(0)
    weights = np.stack([pooled[topics == c].mean(0) for c in range(3)]) - center
    weights /= (pooled @ weights.T - center @ weights.T).std()  # logits of order 1..10
    arrays["output_weights"] = weights.astype(np.float32)
    arrays["output_bias"] = (-weights @ center).astype(np.float32)
    write_arrays_as_google_checkpoint(prefix, arrays)
    model = load_model(spec, prefix)
    module = spec.serving_module(model)  # the SavedModel's graph, in process
    want = {k: v.numpy() for k, v in module.serve_text(tf.constant(texts)).items()}
    classes = want["logits"].argmax(-1)
    assert np.bincount(classes, minlength=3).min() >= 50, np.bincount(classes)

    meta = export_tflite(spec, model, tmp_path / "int8.tflite", quantize="dynamic_int8")
    got = Runner(meta["path"]).predict(texts)
    agreement = float((got["logits"].argmax(-1) == classes).mean())
    diff = float(np.abs(got["probabilities"] - want["probabilities"]).max())
    print(f"\ndynamic_int8: {meta['size_bytes']} bytes (float32 "
          f"{classifier_tflite['size_bytes']}), class agreement {agreement:.4f}, "
          f"max probability diff {diff:.3f}, max logit diff "
          f"{np.abs(got['logits'] - want['logits']).max():.3f}")
    assert agreement >= 0.99
    assert meta["size_bytes"] < classifier_tflite["size_bytes"]
    assert got["label"].tolist() == [LABELS[i] for i in got["logits"].argmax(-1)]


# ----------------------------------------------------------------------------- encoder
def test_encoder_float32_matches_serving_module(tmp_path):
    prefix = write_google_checkpoint(str(tmp_path / "pre"), CONFIG, vocab_tokens=VOCAB, seed=4)
    spec = _spec("encoder")
    model = load_model(spec, prefix)
    meta = export_tflite(spec, model, tmp_path / "enc.tflite")
    assert meta["labels"] == [] and meta["task"] == "encoder"
    assert meta["signatures"]["serving_default"]["outputs"]["sequence_output"]["shape"] == \
        [-1, SEQ, CONFIG["hidden_size"]]
    runner = Runner(meta["path"])
    module = spec.serving_module(model)  # what export_saved_model writes, in process
    diffs = []
    for got, want in ((runner.predict(TEXTS), module.serve_text(tf.constant(TEXTS))),
                      (runner.predict(TEXTS, TEXTS_B),
                       module.serve_text_pair(tf.constant(TEXTS), tf.constant(TEXTS_B)))):
        assert sorted(got) == ["encoder_outputs", "pooled_output", "sequence_output"]
        for key in got:
            diffs.append(_close(got[key], want[key], 1e-5))
        assert got["encoder_outputs"].shape == (len(TEXTS), CONFIG["num_hidden_layers"], SEQ,
                                                CONFIG["hidden_size"])
    print(f"\nencoder float32 max diff: {max(diffs):.2e}, {meta['size_bytes']} bytes")


# ----------------------------------------------------------------------------- errors
def test_library_errors(tmp_path, classifier_tflite):
    with pytest.raises(TFLiteError, match="masked_lm.*cannot be exported to TFLite"):
        convert(_spec("masked_lm"), None)
    with pytest.raises(TFLiteError, match="unknown quantize 'int4'"):
        convert(_spec("encoder"), None, quantize="int4")
    with pytest.raises(TFLiteError, match="already exists: pass --overwrite"):
        check_output_path(classifier_tflite["path"])
    with pytest.raises(TFLiteError, match="would be overwritten by its JSON sidecar"):
        check_output_path(tmp_path / "model.json")
    assert check_output_path(classifier_tflite["path"], overwrite=True) == \
        sidecar_path(classifier_tflite["path"])

    # A TF op the converter keeps as a custom op (allow_custom_ops) that no registrar provides.
    @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="text")])
    def split(text):
        return {"words": tf.strings.split(text).flat_values}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [split.get_concrete_function()], split)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    model = converter.convert()
    assert custom_ops(model) == ["StringSplitV2"]
    with pytest.raises(TFLiteError, match="StringSplitV2.*unresolved custom op"):
        verify_model(model)


def test_script_errors(script_runs):
    base, runs = script_runs
    _assert_clean_error(runs["masked_lm"], "masked_lm", "cannot be exported to TFLite")
    _assert_clean_error(runs["existing"], str(base / "exists.tflite"), "already exists",
                        "--overwrite")
    _assert_clean_error(runs["missing"], "--saved_model_dir", "nope", "does not exist")
    assert (base / "exists.tflite").read_bytes() == b"old"
    for name in ("mlm", "x"):
        assert not os.path.exists(base / f"{name}.tflite")
        assert not os.path.exists(base / f"{name}.json")
