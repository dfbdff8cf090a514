"""Pretraining: input pipeline, the custom training loop under every strategy, run_pretraining.py.

Everything runs on CPU with a tiny BERT on generated records. Tests that need logical CPU
devices or several processes run in subprocesses (logical devices must be configured before
the first TensorFlow op), each bounded by a timeout.
"""
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig, BertPretrainer
from bert_tf.checkpoints import (CheckpointMismatchError, build_from_google_checkpoint,
                                 save_google_checkpoint)
from bert_tf.data.pretraining_dataset import list_input_files, pretraining_dataset
from bert_tf.data.records import RecordError, encode_example
from bert_tf.training.run_control import NonFiniteLossError
from bert_tf.training.tasks.pretraining import (PretrainingOptions, PretrainingTrainer,
                                   TrainingError, loss_sums, run_pretraining)
from bert_tf.training.strategy import StrategyError, create_strategy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_pretraining.py")
S, M = 16, 4  # max_seq_length, max_predictions_per_seq of the generated records
CONFIG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=64, max_position_embeddings=32, hidden_act="gelu",
              type_vocab_size=2)
NO_DROPOUT = dict(CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


# ----------------------------------------------------------------------------- helpers
def _examples(n=64, distinct=8, seq=S, preds=M, seed=0, nan_weights=False):
    """`distinct` random instances repeated to n records: learnable by memorisation."""
    rng = np.random.default_rng(seed)
    base = []
    for i in range(distinct):
        ids = [2] + rng.integers(5, CONFIG["vocab_size"], seq - 2).tolist() + [3]
        positions = sorted(rng.choice(np.arange(1, seq - 1), preds, replace=False).tolist())
        labels = [ids[p] for p in positions]
        masked = list(ids)
        for p in positions:
            masked[p] = 4
        data = encode_example(masked, [0] * (seq // 2) + [1] * (seq - seq // 2), positions,
                              labels, i % 2, seq, preds)
        if nan_weights:
            example = tf.train.Example.FromString(data)
            weights = example.features.feature["masked_lm_weights"].float_list
            weights.value[:] = [float("nan")] * len(weights.value)
            data = example.SerializeToString()
        base.append(data)
    return [base[j % distinct] for j in range(n)]


def write_records(path, **kwargs):
    with tf.io.TFRecordWriter(str(path)) as w:
        for data in _examples(**kwargs):
            w.write(data)
    return str(path)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("records") / "train.tfrecord")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "bert_config.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def options(output_dir, **overrides):
    values = dict(output_dir=str(output_dir), max_seq_length=S, max_predictions_per_seq=M,
                  train_batch_size=8, eval_batch_size=8, learning_rate=1e-2,
                  num_train_steps=30, num_warmup_steps=3, save_checkpoints_steps=10,
                  log_steps=10, max_eval_steps=4, seed=1)
    values.update(overrides)
    return PretrainingOptions(**values)


def trainer(output_dir, config=CONFIG, strategy="one_device", **overrides):
    return PretrainingTrainer(BertConfig(**config), options(output_dir, **overrides),
                              strategy=create_strategy(strategy) if strategy else None,
                              progress_stream=io.StringIO())


def _env():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    env.pop("TF_CONFIG", None)
    return env


def cli_args(records, config_file, output_dir, *extra):
    return [sys.executable, SCRIPT, f"--bert_config_file={config_file}",
            f"--input_file={records}", f"--output_dir={output_dir}", f"--max_seq_length={S}",
            f"--max_predictions_per_seq={M}", "--train_batch_size=8", "--learning_rate=1e-2",
            "--num_warmup_steps=2", *extra]


def run_cli(args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=_env())


def _latest_step(output_dir):
    latest = tf.train.latest_checkpoint(str(output_dir))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def _scalar_tags(directory):
    tags = set()
    for name in os.listdir(directory):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            tags.update(v.tag for v in event.summary.value)
    return tags


# ----------------------------------------------------------------------------- data
def test_pretraining_dataset_batches_and_sharding(records, tmp_path):
    second = write_records(tmp_path / "b.tfrecord", seed=1)
    assert list_input_files(f"{records}, {tmp_path}/*.tfrecord") == [records, second]
    ds = pretraining_dataset(f"{records},{second}", 8, S, M, is_training=True, seed=0)
    batch = next(iter(ds))
    assert batch["input_ids"].shape == (8, S) and batch["input_ids"].dtype == tf.int32
    assert batch["masked_lm_weights"].dtype == tf.float32
    assert batch["next_sentence_labels"].shape == (8, 1)
    # Two input pipelines over two files: each reads one file; batches are per replica.
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                     num_replicas_in_sync=2)
    ds = pretraining_dataset(f"{records},{second}", 8, S, M, is_training=False,
                             input_context=ctx)
    first = next(iter(ds))
    assert first["input_ids"].shape == (4, S)
    expected = tf.io.parse_single_example(
        next(iter(tf.data.TFRecordDataset(second))),
        {"input_ids": tf.io.FixedLenFeature([S], tf.int64)})["input_ids"]
    np.testing.assert_array_equal(first["input_ids"][0], expected)
    with pytest.raises(ValueError, match="not divisible by the 2 replicas"):
        pretraining_dataset(records, 5, S, M, is_training=False, input_context=ctx)


def test_loss_sums_match_google_losses(records):
    model = BertPretrainer(BertConfig(**CONFIG))
    features = next(iter(pretraining_dataset(records, 8, S, M, is_training=False)))
    outputs = model(features)
    google = model.compute_pretraining_losses(features, outputs)
    s = loss_sums(features, outputs).numpy()
    np.testing.assert_allclose(s[0] / (s[1] + 1e-5) + s[3] / s[5], float(google["loss"]),
                               rtol=1e-6)
    np.testing.assert_allclose(s[2] / s[1], float(google["masked_lm_accuracy"]), rtol=1e-6)
    np.testing.assert_allclose(s[4] / s[5], float(google["next_sentence_accuracy"]), rtol=1e-6)


# ----------------------------------------------------------------------------- training
def test_train_evaluate_and_export(records, tmp_path):
    out = tmp_path / "out"
    stream = io.StringIO()
    result = run_pretraining(BertConfig(**CONFIG), options(out), train_input=records,
                             eval_input=records, do_train=True, do_eval=True,
                             strategy=create_strategy("one_device"), progress_stream=stream)
    assert result["global_step"] == 30 and not result["preempted"]
    lines = [ln for ln in stream.getvalue().splitlines() if ln.startswith("step ")]
    # The first step is reported on its own (a slow setup shows at once), then every log_steps.
    assert [ln.split()[1] for ln in lines] == ["1/30", "10/30", "20/30", "30/30"]
    assert "first step" in lines[0] and "masked_lm_accuracy" in lines[0]
    assert "examples/s" in lines[1] and "ETA" in lines[1] and "masked_lm_accuracy" in lines[1]
    losses = [float(ln.split()[3]) for ln in lines]
    assert losses[-1] < losses[0] - 0.5, losses
    assert {"loss", "masked_lm_accuracy", "next_sentence_accuracy", "learning_rate",
            "examples_per_second"} <= _scalar_tags(out / "train")
    # Google's eval_results.txt.
    text = (out / "eval_results.txt").read_text().splitlines()
    results = dict(line.split(" = ") for line in text)
    assert set(results) == {"global_step", "loss", "masked_lm_accuracy", "masked_lm_loss",
                            "next_sentence_accuracy", "next_sentence_loss"}
    assert results["global_step"] == "30"
    assert float(results["masked_lm_accuracy"]) > 0.2
    assert _latest_step(out) == 30
    # The Google checkpoint holds the trained weights (and global_step).
    assert int(tf.train.load_checkpoint(str(out / "bert_model.ckpt")).get_tensor(
        "global_step")) == 30
    reloaded = build_from_google_checkpoint(BertPretrainer, str(out / "bert_model.ckpt"))
    # Resumes ckpt-30; --init_checkpoint (here one that would not even load) is ignored.
    other = save_google_checkpoint(BertPretrainer(BertConfig(**dict(CONFIG, hidden_size=48))),
                                   tmp_path / "other" / "bert_model.ckpt")
    trained = PretrainingTrainer(BertConfig(**CONFIG), options(out, init_checkpoint=other),
                                 progress_stream=io.StringIO())
    assert trained.step == 30 and trained.resumed_from == 30
    for a, b in zip(trained.model.trainable_variables, reloaded.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_gradient_accumulation_equals_one_large_batch(records, tmp_path):
    common = dict(config=NO_DROPOUT, num_train_steps=2, log_steps=1, clip_norm=0.05,
                  num_warmup_steps=0, strategy=None)
    big = trainer(tmp_path / "big", train_batch_size=8, **common)
    big.train(records)
    acc = trainer(tmp_path / "acc", train_batch_size=4, gradient_accumulation_steps=2, **common)
    acc.train(records)
    np.testing.assert_allclose([h["loss"] for h in acc.history],
                               [h["loss"] for h in big.history], rtol=1e-5)
    for a, b in zip(acc.model.trainable_variables, big.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-6)


def test_mixed_bfloat16_trains(records, tmp_path):
    t = trainer(tmp_path / "bf16", mixed_precision="mixed_bfloat16")
    t.train(records)
    losses = [h["loss"] for h in t.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.5, losses
    assert t.model.encoder.compute_dtype == "bfloat16"
    assert t.model.trainable_variables[0].dtype == "float32"


def test_dynamic_masking_batch_transform_trains(records, tmp_path):
    masking = pytest.importorskip("bert_tf.data.dynamic_masking")
    transform = masking.dynamic_masking_fn(CONFIG["vocab_size"], mask_id=4, cls_id=2, sep_id=3,
                                           pad_id=0, max_predictions_per_seq=M, seed=0)
    t = PretrainingTrainer(BertConfig(**CONFIG), options(tmp_path / "dyn", num_train_steps=10,
                                                         log_steps=5),
                           strategy=create_strategy("one_device"), train_batch_transform=transform,
                           progress_stream=io.StringIO())
    assert t.train(records).global_step == 10
    assert all(np.isfinite(h["loss"]) for h in t.history)


def test_jit_compile_on_one_device(records, tmp_path):
    t = trainer(tmp_path / "jit", jit_compile=True, gradient_accumulation_steps=2,
                train_batch_size=4)
    t.train(records)
    losses = [h["loss"] for h in t.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses


# ----------------------------------------------------------------------------- errors
def test_glob_matching_nothing(records, tmp_path):
    with pytest.raises(RecordError, match=r"match no file: '.*nothing-\*\.tfrecord'"):
        run_pretraining(BertConfig(**CONFIG), options(tmp_path / "o"),
                        train_input=f"{records},{tmp_path}/nothing-*.tfrecord")


def test_records_with_another_seq_length(tmp_path):
    other = write_records(tmp_path / "long.tfrecord", seq=2 * S)
    with pytest.raises(RecordError, match=rf"long.tfrecord: records were written with "
                                          rf"max_seq_length={2 * S}"):
        trainer(tmp_path / "o").train(other)


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_damaged_tfrecord_names_the_file(records, tmp_path, damage):
    data = bytearray(open(records, "rb").read())
    if damage == "corrupted":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[:-37]
    bad = tmp_path / f"{damage}.tfrecord"
    bad.write_bytes(bytes(data))
    with pytest.raises(RecordError, match=rf"{damage}.tfrecord is corrupted or truncated"):
        trainer(tmp_path / "o", num_train_steps=200).train(f"{records},{bad}")


def test_init_checkpoint_from_another_config(records, tmp_path):
    other = BertPretrainer(BertConfig(**dict(CONFIG, hidden_size=48)))
    ckpt = save_google_checkpoint(other, tmp_path / "other" / "bert_model.ckpt")
    with pytest.raises(CheckpointMismatchError, match="does not match the model") as info:
        trainer(tmp_path / "o", init_checkpoint=ckpt)
    assert info.value.report.mismatched


def test_resume_with_another_config_is_a_clear_error(records, tmp_path):
    trainer(tmp_path / "o", num_train_steps=2, num_warmup_steps=0).train(records)
    with pytest.raises(TrainingError, match=r"cannot resume from .*ckpt-2: it does not match"):
        trainer(tmp_path / "o", config=dict(CONFIG, hidden_size=48))


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TrainingError, match="output_dir .*file/out is not writable"):
        trainer(blocker / "out")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(records, tmp_path):
    out = tmp_path / "o"
    trainer(out, num_train_steps=3, save_checkpoints_steps=3).train(records)
    assert _latest_step(out) == 3
    poisoned = write_records(tmp_path / "nan.tfrecord", nan_weights=True)
    t = trainer(out, num_train_steps=6, save_checkpoints_steps=1)
    assert t.resumed_from == 3
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 4: .*ckpt-3") as info:
        t.train(poisoned)
    assert info.value.step == 4
    assert _latest_step(out) == 3
    assert int(tf.train.load_checkpoint(str(out / "bert_model.ckpt")).get_tensor(
        "global_step")) == 3  # the export of the first run, not overwritten


def test_unknown_strategy():
    with pytest.raises(StrategyError, match="unknown distribution_strategy 'horovod'"):
        create_strategy("horovod")


# ----------------------------------------------------------------------------- CLI
def test_cli_init_checkpoint_mismatch_is_one_clear_error(records, config_file, tmp_path):
    other = BertPretrainer(BertConfig(**dict(CONFIG, num_hidden_layers=2)))
    ckpt = save_google_checkpoint(other, tmp_path / "other" / "bert_model.ckpt")
    proc = run_cli(cli_args(records, config_file, tmp_path / "o", "--do_train",
                            "--num_train_steps=5", f"--init_checkpoint={ckpt}"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "run_pretraining.py: error: checkpoint" in proc.stderr
    assert "in the checkpoint but not in the model" in proc.stderr
    assert "bert/encoder/layer_1/output/dense/kernel" in proc.stderr
    assert "hint: num_hidden_layers: checkpoint has 2, the config says 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_output_dir_is_a_complete_google_model_directory(records, tmp_path):
    """With --vocab_file, output_dir holds bert_model.ckpt + bert_config.json + vocab.txt."""
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(json.dumps(dict(CONFIG, hidden_act="gelu", type_vocab_size=2)))
    vocab = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(59)]
    vocab.write_text("\n".join(tokens) + "\n")
    out = tmp_path / "o"
    proc = run_cli(cli_args(records, config_file, out, "--do_train", "--num_train_steps=2",
                            f"--vocab_file={vocab}"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "vocab.txt").read_bytes() == vocab.read_bytes()
    assert (out / "bert_model.ckpt.index").exists() and (out / "bert_config.json").exists()
    vocab.write_text("\n".join(tokens + ["extra"]) + "\n")  # 65 ids > vocab_size 64
    proc = run_cli(cli_args(records, config_file, tmp_path / "o2", "--do_train",
                            "--num_train_steps=2", f"--vocab_file={vocab}"))
    assert proc.returncode == 2 and "65 tokens" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "o2" / "vocab.txt").exists()


def test_cli_sigterm_then_sigkill_then_resume_to_the_end(records, config_file, tmp_path):
    out = tmp_path / "o"
    args = cli_args(records, config_file, out, "--do_train", "--num_train_steps=400",
                    "--save_checkpoints_steps=40", "--log_steps=40", "--seed=0")

    def start_and_wait_for_checkpoint(newer_than):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env())
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            step = _latest_step(out)
            if step is not None and step > newer_than:
                return proc, step
            time.sleep(0.02)
        proc.kill()
        pytest.fail(f"no checkpoint after {newer_than}: {proc.communicate()[1][-3000:]}")

    # SIGTERM: checkpoint at the current step, exit status 0.
    proc, first = start_and_wait_for_checkpoint(0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-3000:]
    assert "Stopped by SIGTERM at step" in stdout
    stopped = _latest_step(out)
    assert first <= stopped < 400
    assert f"Stopped by SIGTERM at step {stopped}" in stdout

    # SIGKILL after a newer checkpoint: nothing is cleaned up, the rerun resumes.
    proc, killed_after = start_and_wait_for_checkpoint(stopped)
    proc.kill()
    stdout, _ = proc.communicate(timeout=30)
    assert f"Resumed from checkpoint {out}/ckpt-{stopped} at step {stopped}" in stdout
    resumed = _latest_step(out)
    assert killed_after <= resumed < 400

    proc = run_cli(args, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Resumed from checkpoint {out}/ckpt-{resumed} at step {resumed}" in proc.stdout
    assert "step 400/400" in proc.stdout
    assert _latest_step(out) == 400
    assert int(tf.train.load_checkpoint(str(out / "bert_model.ckpt")).get_tensor(
        "global_step")) == 400


# ----------------------------------------------------------------------------- distributed
MIRRORED_SCRIPT = r"""
import io, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from bert_tf import BertConfig
from bert_tf.training.tasks.pretraining import PretrainingOptions, PretrainingTrainer, TrainingError
from bert_tf.training.strategy import create_strategy

records, out, config = sys.argv[1], sys.argv[2], eval(sys.argv[3])

def run(name, sub, batch=8, **kw):
    opts = PretrainingOptions(output_dir=f"{out}/{sub}", max_seq_length=16,
                              max_predictions_per_seq=4, train_batch_size=batch,
                              learning_rate=1e-2, num_train_steps=3, num_warmup_steps=0,
                              save_checkpoints_steps=100, log_steps=1, seed=3, clip_norm=0.1,
                              **kw)
    t = PretrainingTrainer(BertConfig(**config), opts, strategy=create_strategy(name),
                           progress_stream=io.StringIO())
    t.train(records)
    return t

one = run("one_device", "one")
two = run("mirrored", "two")
assert two.num_replicas == 2, two.num_replicas
l1 = [h["loss"] for h in one.history]
l2 = [h["loss"] for h in two.history]
print("losses", l1, l2)
np.testing.assert_allclose(l2, l1, rtol=1e-5)
for a, b in zip(one.model.trainable_variables, two.model.trainable_variables):
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)
fp16 = run("mirrored", "fp16", mixed_precision="mixed_float16")
assert all(np.isfinite(h["loss"]) for h in fp16.history)
try:
    run("mirrored", "jit", jit_compile=True)
    raise SystemExit("no error for jit_compile on mirrored CPUs")
except TrainingError as e:
    print("ERROR:", e)
try:
    run("mirrored", "odd", batch=3)
    raise SystemExit("no error for batch 3 on 2 replicas")
except TrainingError as e:
    print("ERROR:", e)
print("OK")
"""


# CI time: distributed pretraining is in CI through the two-process MultiWorkerMirrored test
@pytest.mark.slow
def test_mirrored_two_cpus_equals_one_device(records, tmp_path):
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, records, str(tmp_path),
                           repr(NO_DROPOUT)], capture_output=True, text=True, timeout=180,
                          env=_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout
    assert ("ERROR: train_batch_size=3 is not divisible by the 2 replicas in sync"
            in proc.stdout)
    assert "ERROR: jit_compile=True does not work with MirroredStrategy over CPU" in proc.stdout


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_mirrored_two_processes(records, config_file, tmp_path):
    out = tmp_path / "o"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = _env()
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                       "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            cli_args(records, config_file, out, "--do_train", "--num_train_steps=4",
                     "--save_checkpoints_steps=4", "--log_steps=2",
                     "--distribution_strategy=multi_worker_mirrored"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=150))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail("multi-worker training did not finish in 150 s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr[-4000:]
    assert "step 4/4" in outputs[0][0]  # the chief prints progress
    assert "step 4/4" not in outputs[1][0]
    assert _latest_step(out) == 4
    assert sorted(f for f in os.listdir(out) if f.startswith("ckpt-")) == [
        "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    assert not [f for f in os.listdir(out) if f.startswith(".worker_")]
    assert (out / "bert_model.ckpt.index").exists()


def test_records_with_ids_beyond_vocab_size_name_the_file_and_id(tmp_path):
    bad = []
    for i, data in enumerate(_examples(n=16)):
        example = tf.train.Example.FromString(data)
        if i == 5:
            example.features.feature["input_ids"].int64_list.value[3] = 70  # vocab_size is 64
        bad.append(example.SerializeToString())
    path = tmp_path / "big_ids.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for data in bad:
            w.write(data)
    with pytest.raises(RecordError, match=rf"{path}: record 5 has input_ids id 70 but the "
                                          rf"model's vocab_size is 64"):
        trainer(tmp_path / "o", train_batch_size=16, num_train_steps=2,
                num_warmup_steps=0).train(str(path))
