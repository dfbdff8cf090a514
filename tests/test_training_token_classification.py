"""TokenClassificationTask under the Trainer: global-batch normalisation (gradient accumulation
equals one big batch; two mirrored replicas equal one device, evaluation included), and the
evaluation padding (every window once at any batch size)."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import google_ckpt  # noqa: E402
import test_run_ner as N  # noqa: E402
from bert_tf.data.conll import read_conll  # noqa: E402
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


def trainer(setup, out, strategy=None, **overrides):
    task = TokenClassificationTask(CONFIG, N.VOCAB, N.LABELS, N.SEQ, N.STRIDE, seed=0)
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
                  eval_batch_size=4)
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


def test_mirrored_two_cpus_equals_one_device(setup, tmp_path):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path),
                           os.path.dirname(os.path.abspath(__file__)), setup["train"],
                           setup["dev"], setup["pretrained"]],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout
