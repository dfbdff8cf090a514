"""Bucketed sequence length: the packer/preprocessor cut each batch to its longest row rounded up
to a bucket, and the exported SavedModels give the fixed-length outputs on texts of every length
(shorter than a bucket, between buckets, longer than max_seq_length)."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (loading the exports needs the tf-text ops)

from bert_tf import BertConfig, BertPreprocessor
from bert_tf.serving.export import ExportError, ExportSpec, export_saved_model
from bert_tf.text.packer import bucket_length, pack_inputs, trim_to_bucket
from bert_tf.text.vocab import Vocab
from google_ckpt import tiny_config

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
         "capital", "of", "france", "is", "paris", "good", "bad", "movie", ",", ".", "!"]
CONFIG = tiny_config(vocab_size=len(VOCAB), max_position_embeddings=48)
SEQ = 40
BUCKET = 8
# Packed lengths 2, 5, 11, 23 and > SEQ (truncated): every bucket and the cap.
SHORT = ["", "good movie!", "the cat sat on the mat . the cat"]
MEDIUM = SHORT + ["the cat sat on the mat , " * 3]
LONG = MEDIUM + ["the capital of france is paris . " * 8]
PAIR_B = ["paris", "", "the capital of france", "bad", "mat " * 30]


def _spec(task, bucket_size, **kw):
    return ExportSpec(task, BertConfig.from_dict(CONFIG), Vocab(VOCAB), max_seq_length=SEQ,
                      bucket_size=bucket_size, **kw)


def _export(tmp_path, task, model, **kw):
    """The bucketed SavedModel's signatures."""
    spec = _spec(task, BUCKET, **kw)
    path = export_saved_model(spec.serving_module(model), spec, tmp_path, task)
    return tf.saved_model.load(path).signatures


def _in_process(module):
    return {"serving_default": lambda text: module.serve_text(text),
            "text_pair": lambda text, text_b: module.serve_text_pair(text, text_b)}


def _fixed(task, model, **kw):
    """The fixed-length computation: the same model behind an unbucketed serving module."""
    return _in_process(_spec(task, None, **kw).serving_module(model))


# ----------------------------------------------------------------------------- packer
def test_trim_to_bucket_drops_only_padding():
    ids = tf.ragged.constant([[5, 6, 7], [], list(range(5, 20))], tf.int32)
    fixed = pack_inputs(ids, seq_length=SEQ, cls_id=2, sep_id=3)
    lengths = fixed["input_mask"].numpy().sum(1)
    for bucket, expected in ((4, 20), (8, 24), (16, 32), (64, SEQ), (1, 17)):
        out = trim_to_bucket(fixed, bucket)
        assert int(bucket_length(fixed["input_mask"], SEQ, bucket)) == expected
        for name, value in out.items():
            assert value.shape == (3, expected)
            np.testing.assert_array_equal(value, fixed[name][:, :expected])
            assert (fixed[name].numpy()[:, expected:] == (0 if name != "input_word_ids" else 0)
                    ).all()
        assert (out["input_mask"].numpy().sum(1) == lengths).all()
    assert trim_to_bucket(fixed, None) is fixed
    empty = pack_inputs(tf.ragged.constant([], tf.int32, ragged_rank=1, inner_shape=()),
                        seq_length=SEQ, cls_id=2, sep_id=3)
    assert trim_to_bucket(empty, BUCKET)["input_word_ids"].shape == (0, BUCKET)
    with pytest.raises(ValueError, match="bucket_size must be a positive int"):
        trim_to_bucket(fixed, 0)
    with pytest.raises(TypeError, match="bucket_size must be a positive int"):
        trim_to_bucket(fixed, 8.0)


def test_preprocessor_bucket_option():
    fixed = BertPreprocessor(VOCAB, seq_length=SEQ)
    bucketed = BertPreprocessor(VOCAB, seq_length=SEQ, bucket_size=BUCKET)
    for texts, width in ((SHORT[:2], 8), (SHORT, 16), (MEDIUM, 24), (LONG, SEQ)):
        want, got = fixed(texts), bucketed(texts)
        for name in want:
            assert got[name].shape == (len(texts), width)
            np.testing.assert_array_equal(got[name], want[name][:, :width])
    pair = bucketed((LONG, PAIR_B))
    np.testing.assert_array_equal(pair["input_word_ids"], fixed((LONG, PAIR_B))["input_word_ids"])
    # In a tf.function the length is dynamic; the layer round-trips through its config.
    fn = tf.function(lambda t: bucketed(t)["input_word_ids"],
                     input_signature=[tf.TensorSpec([None], tf.string)])
    assert fn(tf.constant(SHORT[:2])).shape == (2, 8)
    clone = BertPreprocessor.from_config(bucketed.get_config())
    assert clone.bucket_size == BUCKET and clone(MEDIUM)["input_mask"].shape == (4, 24)
    with pytest.raises(ValueError, match="tflite_compatible"):
        BertPreprocessor(VOCAB, seq_length=SEQ, bucket_size=8, tflite_compatible=True)
    with pytest.raises(TypeError, match="bucket_size"):
        BertPreprocessor(VOCAB, seq_length=SEQ, bucket_size="8")


# ----------------------------------------------------------------------------- SavedModels
@pytest.mark.parametrize("policy", ["float32", "bfloat16"])
def test_classifier_bucketed_equals_fixed(tmp_path, policy):
    spec = _spec("classifier", BUCKET, labels=["a", "b", "c"], dtype_policy=policy)
    model = spec.build_model()
    if policy == "float32":
        bucketed = _export(tmp_path, "classifier", model, labels=["a", "b", "c"])
    else:  # in-process (saves an export): the same module the SavedModel serves
        bucketed = _in_process(spec.serving_module(model))
    fixed = _fixed("classifier", model, labels=["a", "b", "c"], dtype_policy=policy)
    atol = 1e-5 if policy == "float32" else 1e-2  # bf16: only summation order may differ
    for texts in (SHORT[:1], SHORT, MEDIUM, LONG):
        want = fixed["serving_default"](text=tf.constant(texts))
        got = bucketed["serving_default"](text=tf.constant(texts))
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=atol)
        np.testing.assert_allclose(got["logits"], want["logits"], atol=atol)
    want = fixed["text_pair"](text=tf.constant(LONG), text_b=tf.constant(PAIR_B))
    got = bucketed["text_pair"](text=tf.constant(LONG), text_b=tf.constant(PAIR_B))
    np.testing.assert_allclose(got["logits"], want["logits"], atol=atol)
    got = bucketed["serving_default"](text=tf.constant([], tf.string))
    assert got["probabilities"].shape == (0, 3)


def test_encoder_bucketed_equals_fixed_on_real_tokens(tmp_path):
    model = _spec("encoder", BUCKET).build_model()
    bucketed = _export(tmp_path, "encoder", model)["serving_default"]
    fixed = _fixed("encoder", model)["serving_default"]
    mask = BertPreprocessor(VOCAB, seq_length=SEQ)(MEDIUM)["input_mask"].numpy().astype(bool)
    want, got = fixed(text=tf.constant(MEDIUM)), bucketed(text=tf.constant(MEDIUM))
    np.testing.assert_allclose(got["pooled_output"], want["pooled_output"], atol=1e-5)
    # Same [B, SEQ, H] shape; real tokens equal, zeros past the batch's bucket (24).
    assert got["sequence_output"].shape == want["sequence_output"].shape
    np.testing.assert_allclose(got["sequence_output"].numpy()[mask],
                               want["sequence_output"].numpy()[mask], atol=1e-5)
    assert (got["sequence_output"].numpy()[:, 24:] == 0).all()
    assert (got["encoder_outputs"].numpy()[:, :, 24:] == 0).all()
    assert got["encoder_outputs"].shape == want["encoder_outputs"].shape
    np.testing.assert_allclose(got["encoder_outputs"].numpy().transpose(0, 2, 1, 3)[mask],
                               want["encoder_outputs"].numpy().transpose(0, 2, 1, 3)[mask],
                               atol=1e-5)


def test_masked_lm_bucketed_equals_fixed(tmp_path):
    model = _spec("masked_lm", BUCKET).build_model()
    bucketed = _export(tmp_path, "masked_lm", model, top_k=3)["serving_default"]
    fixed = _fixed("masked_lm", model, top_k=3)["serving_default"]
    texts = ["[MASK] movie", "the cat sat on the [MASK] . the [MASK] sat",
             "the capital of france is [MASK] . " * 4 + "[MASK]", "no mask"]
    want, got = fixed(text=tf.constant(texts)), bucketed(text=tf.constant(texts))
    np.testing.assert_array_equal(got["masked_lm_positions"], want["masked_lm_positions"])
    assert got["masked_lm_positions"].numpy()[2].max() > 16  # a mask in a later bucket
    np.testing.assert_array_equal(got["top_k_ids"], want["top_k_ids"])
    np.testing.assert_allclose(got["top_k_scores"], want["top_k_scores"], atol=1e-5)
    short = bucketed(text=tf.constant(texts[:1]))  # one 8-wide bucket
    np.testing.assert_array_equal(short["masked_lm_positions"], [[1]])
    np.testing.assert_array_equal(short["top_k_ids"][0], want["top_k_ids"][0, :1])


def test_spec_bucket_size(tmp_path):
    assert ExportSpec.from_json(_spec("encoder", BUCKET).to_json(), Vocab(VOCAB)).bucket_size == 8
    legacy = _spec("encoder", BUCKET).to_json()
    del legacy["bucket_size"]  # an export from before buckets packed to max_seq_length
    assert ExportSpec.from_json(legacy, Vocab(VOCAB)).bucket_size is None
    assert _spec("encoder", BUCKET).preprocessor(tflite_compatible=True).bucket_size is None
    with pytest.raises(ExportError, match="bucket_size must be a positive int"):
        _spec("encoder", -1)


def test_export_script_bucket_size_flag(tmp_path):
    """--bucket_size reaches the export's metadata; a negative one is a one-line error."""
    import os
    import subprocess
    import sys

    from bert_tf.serving.export import read_export_metadata
    from google_ckpt import write_google_checkpoint

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = write_google_checkpoint(str(tmp_path / "ckpt"), CONFIG, vocab_tokens=VOCAB, seed=1)
    # PYTHONPATH: the script imports this checkout's bert_tf, not an installed one.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=repo)

    def export(*flags):
        return subprocess.run(
            [sys.executable, os.path.join(repo, "export", "export_saved_model.py"),
             "--task=encoder", f"--init_checkpoint={prefix}", f"--export_dir={tmp_path}",
             "--model_name=enc", f"--max_seq_length={SEQ}", *flags],
            capture_output=True, text=True, timeout=300, env=env, cwd=repo)

    proc = export("--bucket_size=-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "bucket_size must be a positive int or None, got -1" in proc.stderr
    proc = export("--bucket_size=0")  # 0: fixed length
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_export_metadata(proc.stdout.strip().splitlines()[-1])["bucket_size"] is None

