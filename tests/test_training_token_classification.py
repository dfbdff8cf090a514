"""TokenClassificationTask under the Trainer: global-batch normalisation (gradient accumulation
equals one big batch; two mirrored replicas equal one device, evaluation included), the
evaluation padding (every window once at any batch size), and length buckets (every weighted
label kept, the same weights and predictions as the fixed length)."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import google_ckpt  # noqa: E402
import test_run_ner as N  # noqa: E402
from shared_data import GOOGLE_CKPT_INDEX, SHARED_DATA  # noqa: E402
from test_training_bucketing import _Context, assert_same_training  # noqa: E402
from bert_tf.data.bucketing import bucket_by_length  # noqa: E402
from bert_tf.data.conll import labels_from, read_conll  # noqa: E402
from bert_tf.training.tasks.token_classification import (  # noqa: E402
    TokenClassificationOptions, TokenClassificationTask)
from bert_tf.training.trainer import Trainer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = google_ckpt.tiny_config(vocab_size=len(N.VOCAB), max_position_embeddings=32,
                                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tc")
    rng = np.random.RandomState(1)
    train = N.write_conll(directory / "train.txt", N.generated_sentences(rng, 40))
    dev = N.write_conll(directory / "dev.txt", N.generated_sentences(rng, 13))
    prefix = google_ckpt.write_google_checkpoint(str(directory / "pre"), CONFIG, seed=2)
    return {"train": train, "dev": dev, "pretrained": prefix}


def trainer(setup, out, strategy=None, bucket_size=None, **overrides):
    task = TokenClassificationTask(CONFIG, N.VOCAB, N.LABELS, N.SEQ, N.STRIDE, seed=0,
                                   bucket_size=bucket_size)
    options = TokenClassificationOptions(
        output_dir=str(out), max_seq_length=N.SEQ, num_train_steps=3, num_warmup_steps=0,
        log_steps=1, clip_norm=0.05, learning_rate=1e-3, seed=0,
        init_checkpoint=setup["pretrained"], **overrides)
    return Trainer(task, options, strategy=strategy, progress_stream=io.StringIO())


def test_gradient_accumulation_equals_one_big_batch(setup, tmp_path):
    train = read_conll(setup["train"])
    big = trainer(setup, tmp_path / "big", train_batch_size=8)
    big.train(train)
    acc = trainer(setup, tmp_path / "acc", train_batch_size=4, gradient_accumulation_steps=2)
    acc.train(train)
    np.testing.assert_allclose([h["loss"] for h in acc.history],
                               [h["loss"] for h in big.history], rtol=1e-5)
    for a, b in zip(acc.model.trainable_variables, big.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_evaluation_sees_every_window_once_at_any_batch_size(setup, tmp_path):
    dev = read_conll(setup["dev"])
    t = trainer(setup, tmp_path / "eval", eval_batch_size=1)
    one = t.evaluate(dev, write_results=False)
    t.options.eval_batch_size = 8  # windows % 8 != 0: weight-0 copies pad the last batch
    assert len(t.task.features(dev)) % 8
    eight = t.evaluate(dev, write_results=False)
    assert one["eval_num_gold_entities"] == sum(
        tag.startswith("B-") for s in dev.sentences for tag in s.tags)
    for key in one:
        if key != "global_step":
            assert eight[key] == pytest.approx(one[key], abs=1e-6), key


BUCKET = 4  # buckets 4, 8, 12, 16 = N.SEQ


def assert_labels_on_real_tokens(arrays):
    """No label and no label weight past a window's real tokens (input_mask = 1): cutting the
    padding to any bucket keeps every scored word."""
    positions = np.arange(arrays["input_mask"].shape[1])
    outside = positions[None, :] >= arrays["input_mask"].sum(1, keepdims=True)
    assert arrays["input_mask"][outside].sum() == 0  # the mask is a prefix
    assert arrays["label_weights"][outside].sum() == 0
    assert arrays["label_ids"][outside].sum() == 0


def test_bucketed_windows_keep_every_label(setup):
    task = TokenClassificationTask(CONFIG, N.VOCAB, N.LABELS, N.SEQ, N.STRIDE, seed=0,
                                   bucket_size=BUCKET)
    train = read_conll(setup["train"])
    arrays = task.features(train).arrays
    assert_labels_on_real_tokens(arrays)
    n = len(arrays["input_mask"])
    assert len(set(-(-arrays["input_mask"].sum(1) // BUCKET))) >= 3  # several buckets
    # Each window cut to its bucket holds its ids, labels and every label weight.
    ds = tf.data.Dataset.from_tensor_slices(dict(arrays, window=np.arange(n)))
    seen = set()
    for batch in bucket_by_length(ds, 8, N.SEQ, BUCKET):
        width = batch["input_mask"].shape[1]
        for row, window in enumerate(batch["window"].numpy()):
            seen.add(window)
            for name in ("input_word_ids", "input_mask", "label_ids", "label_weights"):
                np.testing.assert_array_equal(batch[name][row], arrays[name][window, :width])
            assert batch["label_weights"][row].numpy().sum() == \
                arrays["label_weights"][window].sum()
    assert seen == set(range(n))
    # The training batches: per replica, one bucket per step, the labels cut with the ids.
    for batch in task.train_dataset(train, 8)(_Context(replicas=2)).take(n // 4):
        width = batch["input_word_ids"].shape[1]
        assert width % BUCKET == 0 and batch["input_mask"].numpy().sum(1).max() > width - BUCKET
        assert {tuple(t.shape) for t in batch.values()} == {(4, width)}
        assert (batch["label_weights"].numpy() * (1 - batch["input_mask"].numpy())).sum() == 0


@pytest.mark.skipif(not (SHARED_DATA / "ner" / "wnut17").is_dir(), reason="no WNUT-17 files")
def test_wnut17_windows_label_only_real_tokens():
    """The real WNUT-17 dev file under Google's uncased vocab at max_seq_length 128."""
    vocab = GOOGLE_CKPT_INDEX / "uncased_L-4_H-256_A-4" / "vocab.txt"
    dev = read_conll(SHARED_DATA / "ner" / "wnut17" / "emerging.dev.conll")
    config = google_ckpt.tiny_config(vocab_size=30522, max_position_embeddings=128)
    task = TokenClassificationTask(config, str(vocab), labels_from(dev), 128, 64,
                                   bucket_size=16)
    arrays = task.features(dev).arrays
    assert len(arrays["input_mask"]) >= len(dev.sentences)
    assert arrays["label_ids"].any()
    assert_labels_on_real_tokens(arrays)


def _short_sentences(count):
    """Sentences of at most 6 pieces ("unaffable" has 3): windows of at most 8, one bucket."""
    rng = np.random.RandomState(5)
    return [(words, tags) for words, tags in N.generated_sentences(rng, count * 16)
            if len(words) + 2 * words.count("Unaffable") <= 6][:count]


def test_bucketed_training_equals_fixed_length(setup, tmp_path):
    # Every window fits the first bucket, so batches hold the same windows either way and the
    # only difference is the cut padding: the same weights up to summation order.
    train = read_conll(N.write_conll(tmp_path / "short.txt", _short_sentences(40)))
    fixed = trainer(setup, tmp_path / "fixed", train_batch_size=8)
    cut = trainer(setup, tmp_path / "cut", bucket_size=8, train_batch_size=8)
    assert cut.task.features(train).arrays["input_mask"].sum(1).max() <= 8
    first = next(iter(cut.task.train_dataset(train, 8)(_Context())))
    assert first["input_word_ids"].shape == (8, 8)  # cut from N.SEQ = 16
    fixed.train(train)
    cut.train(train)
    assert_same_training(cut, fixed)


def test_bucketed_evaluation_equals_fixed_length(setup, tmp_path):
    # Short sentences (windows of 4-8 tokens) and long ones (several full windows of 16).
    rng = np.random.RandomState(6)
    dev = read_conll(N.write_conll(tmp_path / "dev.txt", _short_sentences(10)
                                   + N.generated_sentences(rng, 13)))
    t = trainer(setup, tmp_path / "eval", eval_batch_size=4)
    t.train(read_conll(setup["train"]))
    lengths = np.sort(t.task.features(dev).arrays["input_mask"].sum(1))
    assert len(lengths) % 4  # the last batch is padded with weight-0 copies
    assert len(set(-(-lengths[3::4] // BUCKET))) >= 3  # the sorted batches span 3+ buckets
    fixed = t.evaluate(dev, write_results=False)
    fixed_tags = t.task.last_predictions
    t.task.bucket_size = BUCKET
    cut = t.evaluate(dev, write_results=False)
    assert t.task.last_predictions == fixed_tags
    assert cut.keys() == fixed.keys()
    for key in fixed:  # the same tags give the same entity metrics; the loss up to rounding
        assert cut[key] == pytest.approx(fixed[key], abs=1e-6 if "loss" in key else 0), key


MIRRORED_SCRIPT = r"""
import io, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
sys.path.insert(0, sys.argv[2])
import test_training_token_classification as T
from bert_tf.data.conll import read_conll
from bert_tf.training.strategy import create_strategy

out, setup = sys.argv[1], dict(zip(("train", "dev", "pretrained"), sys.argv[3:6]))
train, dev = read_conll(setup["train"]), read_conll(setup["dev"])
runs = {}
for name in ("one_device", "mirrored"):
    t = T.trainer(setup, f"{out}/{name}", strategy=create_strategy(name), train_batch_size=8,
                  eval_batch_size=4, bucket_size=T.BUCKET)
    t.train(train)
    runs[name] = (t, t.evaluate(dev, write_results=False))
(one, r1), (two, r2) = runs["one_device"], runs["mirrored"]
assert two.num_replicas == 2
np.testing.assert_allclose([h["loss"] for h in two.history], [h["loss"] for h in one.history],
                           rtol=1e-5)
for a, b in zip(one.model.trainable_variables, two.model.trainable_variables):
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)
for key in r1:
    assert abs(r1[key] - r2[key]) <= 1e-5, (key, r1[key], r2[key])
assert one.task.last_predictions == two.task.last_predictions
print("OK")
"""


# CI time: the shared Trainer's Mirrored path is in CI through test_run_classifier's mirrored test
@pytest.mark.slow
def test_mirrored_two_cpus_equals_one_device(setup, tmp_path):
    """With length buckets: every step's global batch is one bucket, split over the replicas,
    and the evaluation's per-replica batches have one shape."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path),
                           os.path.dirname(os.path.abspath(__file__)), setup["train"],
                           setup["dev"], setup["pretrained"]],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout
