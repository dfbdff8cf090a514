"""Length-bucketed fine-tuning and evaluation (`Task.training_batches` / `inference_batches`,
`FinetuneOptions.bucket_size`): bucket shapes only, the same weights and predictions as the
fixed-length computation, one device equal to two mirrored replicas. Tiny BERT on CPU."""
import io
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_run_classifier as C  # noqa: E402
from bert_tf.data.bucketing import length_order  # noqa: E402
from bert_tf.data.glue import InputExample  # noqa: E402
from bert_tf.training.finetune import ClassifierTrainer  # noqa: E402
from bert_tf.training.options import TrainingError  # noqa: E402

SEQ = 32
BUCKET = 8
CONFIG = dict(C.CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
pretrained = C.pretrained


def examples(n, seed, max_words):
    """Pairs of 1..max_words + 1..3 words: packed lengths 5..max_words + 6."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        y = r.randint(0, 1)
        words = r.sample(C.FILL, r.randint(0, max_words - 1))
        words.insert(r.randint(0, len(words)), r.choice(C.POS if y else C.NEG))
        out.append(InputExample(f"e-{i}", " ".join(words),
                                " ".join(r.sample(C.FILL, r.randint(1, 3))), str(y)))
    return out


def trainer(out, pretrained, bucket_size, strategy=None, **kw):
    options = C._options(out, max_seq_length=SEQ, bucket_size=bucket_size,
                         init_checkpoint=pretrained, log_steps=1, clip_norm=0.5, **kw)
    return ClassifierTrainer(CONFIG, C._vocab(pretrained), options, labels=["0", "1"],
                             num_train_steps=3, strategy=strategy,
                             progress_stream=io.StringIO())


class _Context:
    num_input_pipelines, input_pipeline_id = 1, 0

    def __init__(self, replicas=1):
        self.replicas = replicas

    def get_per_replica_batch_size(self, global_batch_size):
        return global_batch_size // self.replicas


def assert_same_training(cut, fixed):
    """Two trainers took the same steps: losses to 1e-5, weights to 1e-6 (summation order)."""
    np.testing.assert_allclose([h["loss"] for h in cut.history],
                               [h["loss"] for h in fixed.history], rtol=1e-5)
    for a, b in zip(cut.model.trainable_variables, fixed.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def test_training_batches_are_buckets_holding_every_example(tmp_path, pretrained):
    data = examples(48, 0, 20)
    task = trainer(tmp_path, pretrained, BUCKET).task
    lengths = task._lengths(np.array([e.text_a for e in data]), np.array([e.text_b for e in data]))
    assert len(set(-(-lengths // BUCKET))) >= 3  # the data span several buckets
    ds = task.train_dataset(data, 8)(_Context(replicas=2))
    seen = []
    for features, labels in ds.take(48 // 4 * 3):  # three epochs of per-replica batches
        width = features["input_word_ids"].shape[1]
        assert width % BUCKET == 0 and width <= SEQ
        lengths = features["input_mask"].numpy().sum(1)
        assert lengths.max() > width - BUCKET  # the batch's bucket, not a larger one
        seen.append(features["input_word_ids"].shape[0])
    assert set(seen) == {4}


def test_bucketed_training_equals_fixed_length(tmp_path, pretrained):
    # Every example fits the first bucket, so batches hold the same examples either way and
    # the only difference is the cut padding: the same weights up to summation order.
    data = examples(64, 1, 2)  # packed lengths 5..8 = BUCKET
    fixed = trainer(tmp_path / "fixed", pretrained, 0, train_batch_size=16)
    fixed.train(data)
    cut = trainer(tmp_path / "cut", pretrained, BUCKET, train_batch_size=16)
    first, _ = next(iter(cut.task.train_dataset(data, 16)(_Context())))
    assert first["input_word_ids"].shape == (16, BUCKET)  # cut from SEQ = 32
    cut.train(data)
    assert_same_training(cut, fixed)


def test_bucketed_evaluation_and_prediction_equal_fixed_length(tmp_path, pretrained):
    dev = examples(37, 2, 24)  # several buckets; 37 is not a multiple of the batch
    t = trainer(tmp_path, pretrained, 0)
    fixed = t.predict_outputs(dev, batch_size=8, with_labels=True)
    fixed_metrics = t.evaluate(dev, write_results=False)
    t.task.bucket_size = BUCKET
    cut = t.predict_outputs(dev, batch_size=8, with_labels=True)
    np.testing.assert_array_equal(cut["labels"], fixed["labels"])
    np.testing.assert_allclose(cut["logits"], fixed["logits"], atol=1e-5)
    cut_metrics = t.evaluate(dev, write_results=False)
    assert cut_metrics.keys() == fixed_metrics.keys()
    for k in fixed_metrics:
        assert cut_metrics[k] == pytest.approx(fixed_metrics[k], abs=1e-5), k


def test_length_order_pads_with_the_shortest():
    take, weight = length_order([5, 3, 9, 3, 7], 4)
    np.testing.assert_array_equal(take, [1, 3, 0, 4, 2, 1, 3, 0])
    np.testing.assert_array_equal(weight, [1, 1, 1, 1, 1, 0, 0, 0])


def test_negative_bucket_size_is_an_error(tmp_path):
    with pytest.raises(TrainingError, match="bucket_size"):
        C._options(tmp_path, bucket_size=-1).validate()


MIRRORED_SCRIPT = r"""
import io, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
sys.path.insert(0, sys.argv[3])
import test_training_bucketing as B
from bert_tf.training.strategy import create_strategy

out, pre = sys.argv[1], sys.argv[2]
train, dev = B.examples(96, 3, 20), B.examples(13, 4, 24)

def run(name):
    t = B.trainer(f"{out}/{name}", pre, B.BUCKET, create_strategy(name), train_batch_size=8)
    t.train(train)
    return t, t.predict_outputs(dev, batch_size=4, with_labels=True)

one, p1 = run("one_device")
two, p2 = run("mirrored")
assert two.num_replicas == 2
np.testing.assert_allclose([h["loss"] for h in two.history], [h["loss"] for h in one.history],
                           rtol=1e-5)
for a, b in zip(one.model.trainable_variables, two.model.trainable_variables):
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)
np.testing.assert_allclose(p2["logits"], p1["logits"], atol=1e-5)
print("OK")
"""


# CI time: the Trainer's Mirrored path is in CI through test_run_classifier's mirrored test,
# bucketing through the one-device equality tests
@pytest.mark.slow
def test_bucketed_mirrored_two_cpus_equals_one_device(tmp_path, pretrained):
    # Training data over several buckets: each step's global batch is one bucket, split over
    # the replicas, so both take the same steps.
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=C.REPO)
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path), pretrained,
                           os.path.dirname(os.path.abspath(__file__))],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout
