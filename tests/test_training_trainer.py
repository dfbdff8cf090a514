"""The Trainer's task-independent features: evaluation during training, the best checkpoint,
early stopping, gradient accumulation and SIGTERM for every task, damaged-checkpoint resume.

Tiny BERTs on generated data, on CPU (the data helpers come from the pretraining and
fine-tuning tests).
"""
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_run_classifier as C  # noqa: E402
import test_run_pretraining as P  # noqa: E402
from bert_tf import BertConfig  # noqa: E402
from bert_tf.data.glue import get_processor  # noqa: E402
from bert_tf.training.finetune import ClassifierTrainer  # noqa: E402
from bert_tf.training.options import TrainingError  # noqa: E402
from bert_tf.training.tasks.pretraining import PretrainingTask  # noqa: E402
from bert_tf.training.trainer import Trainer  # noqa: E402

records = P.records
pretrained = C.pretrained
mrpc_dir = C.mrpc_dir


class ScriptedScoreTask(PretrainingTask):
    """Pretraining whose evaluations also report `score`, taken in turn from `scores` (a metric
    that goes up and then down, to test best-checkpoint selection and early stopping)."""

    def __init__(self, scores, **kwargs):
        super().__init__(BertConfig(**P.CONFIG), P.S, P.M, max_eval_steps=2, seed=1, **kwargs)
        self.scores = list(scores)

    def aggregate_eval(self, outputs):
        results = super().aggregate_eval(outputs)
        results["score"] = self.scores.pop(0)
        return results


def _trainer(out, task, **overrides):
    return Trainer(task, P.options(out, **overrides), progress_stream=io.StringIO())


def _model_weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(prefix)
            if n.startswith("bert/encoder/layer_0/output/dense/kernel")}


def test_eval_every_n_steps_best_checkpoint_and_history(records, tmp_path):
    out = tmp_path / "o"
    t = _trainer(out, ScriptedScoreTask([0.5, 0.9, 0.7, 0.6]), num_train_steps=8,
                 save_checkpoints_steps=2, log_steps=2, eval_every_n_steps=2,
                 keep_checkpoint_max=10, keep_best_checkpoint_by="score")
    result = t.train(records, eval_data=records)
    assert result.global_step == 8 and result.best_step == 4
    # One result per evaluation: in the history file, in TensorBoard and on the progress stream.
    history = [json.loads(line) for line in (out / "eval_history.jsonl").read_text().splitlines()]
    assert [h["global_step"] for h in history] == [2, 4, 6, 8]
    assert [h["score"] for h in history] == [0.5, 0.9, 0.7, 0.6]
    assert {"score", "loss", "masked_lm_accuracy"} <= P._scalar_tags(out / "eval")
    lines = [ln for ln in t.progress_stream.getvalue().splitlines() if ln.startswith("eval at")]
    assert len(lines) == 4 and "(best score 0.9000 at step 4)" in lines[-1]
    assert "the weights of step 4" in t.progress_stream.getvalue()
    # The exported Google checkpoint holds step 4's weights, not the last step's.
    exported = str(out / "bert_model.ckpt")
    assert int(tf.train.load_checkpoint(exported).get_tensor("global_step")) == 4
    best = _model_weights(exported)
    for step, same in ((4, True), (8, False)):
        copy = _trainer(tmp_path / f"copy{step}", ScriptedScoreTask([]), num_train_steps=8)
        copy.store.checkpoint.restore(str(out / f"ckpt-{step}")).expect_partial()
        copy.export_google_checkpoint(step)
        weights = _model_weights(str(tmp_path / f"copy{step}" / "bert_model.ckpt"))
        assert all(np.array_equal(best[n], v) for n, v in weights.items()) == same


def test_early_stopping_stops_at_the_right_step(records, tmp_path):
    out = tmp_path / "o"
    t = _trainer(out, ScriptedScoreTask([0.5, 0.9, 0.7, 0.6, 0.95, 0.99]), num_train_steps=40,
                 save_checkpoints_steps=100, log_steps=100, eval_every_n_steps=2,
                 keep_best_checkpoint_by="score", early_stopping_patience=2)
    result = t.train(records, eval_data=records)
    # Best at step 4; steps 6 and 8 are not better: patience 2 is exhausted at step 8.
    assert result.global_step == 8 and result.early_stopped and result.best_step == 4
    assert P._latest_step(out) == 8
    assert "Early stopping at step 8" in t.progress_stream.getvalue()


def test_keep_best_needs_eval_every_n_steps(tmp_path):
    with pytest.raises(TrainingError, match="need eval_every_n_steps"):
        P.options(tmp_path, keep_best_checkpoint_by="loss").validate()


def test_unknown_best_metric_lists_the_metrics(records, tmp_path):
    t = _trainer(tmp_path / "o", ScriptedScoreTask([0.1]), num_train_steps=2,
                 num_warmup_steps=0, eval_every_n_steps=2, keep_best_checkpoint_by="f1")
    with pytest.raises(TrainingError, match=r"'f1' is not an evaluation metric.*'score'"):
        t.train(records, eval_data=records)


def test_finetuning_gradient_accumulation_equals_one_big_batch(tmp_path, pretrained, mrpc_dir):
    config = dict(C.CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    processor = get_processor("mrpc")
    train = processor.get_train_examples(mrpc_dir)[:64]

    def run(sub, **kw):
        t = ClassifierTrainer(config, C._vocab(pretrained),
                              C._options(tmp_path / sub, init_checkpoint=pretrained,
                                         log_steps=1, clip_norm=0.05, **kw),
                              labels=processor.get_labels(), num_train_steps=3,
                              progress_stream=io.StringIO())
        t.train(train)
        return t

    big = run("big", train_batch_size=8)
    acc = run("acc", train_batch_size=4, gradient_accumulation_steps=2)
    np.testing.assert_allclose([h["loss"] for h in acc.history],
                               [h["loss"] for h in big.history], rtol=1e-5)
    for a, b in zip(acc.model.trainable_variables, big.model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_sigterm_stops_a_long_compiled_loop_within_a_step(records, tmp_path):
    out = tmp_path / "o"
    total = 1_000_000  # one compiled loop of all the steps: hours on this model
    t = _trainer(out, PretrainingTask(BertConfig(**P.CONFIG), P.S, P.M, seed=1),
                 num_train_steps=total, num_warmup_steps=0, steps_per_loop=total,
                 log_steps=total, save_checkpoints_steps=total)
    sent = {}

    def send_when_training():
        while t.step < 20:
            time.sleep(0.01)
        sent["step"], sent["time"] = t.step, time.perf_counter()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send_when_training, daemon=True).start()
    start = time.perf_counter()
    result = t.train(records)
    latency = time.perf_counter() - sent["time"]
    seconds_per_step = (sent["time"] - start) / sent["step"]
    assert result.preempted and sent["step"] <= result.global_step < total
    # Stopped within a few steps of the signal, and far sooner than the loop would have run.
    assert result.global_step - sent["step"] <= 5 + latency / seconds_per_step
    assert latency < 15 and latency < total * seconds_per_step / 1000
    assert P._latest_step(out) == result.global_step
    assert f"Stopped by SIGTERM at step {result.global_step}" in t.progress_stream.getvalue()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored


@pytest.mark.parametrize("damage", ["truncated", "zero-byte"])
def test_resume_falls_back_from_a_damaged_checkpoint(records, tmp_path, damage):
    out = tmp_path / "o"
    P.trainer(out, num_train_steps=4, save_checkpoints_steps=2, num_warmup_steps=0).train(records)
    data = out / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100] if damage == "truncated" else b"")
    t = P.trainer(out, num_train_steps=6, save_checkpoints_steps=2, num_warmup_steps=0)
    said = t.progress_stream.getvalue()
    assert f"Checkpoint {out}/ckpt-4 is damaged" in said
    assert f"Falling back to the newest intact checkpoint {out}/ckpt-2" in said
    assert t.resumed_from == 2
    assert t.train(records).global_step == 6 and P._latest_step(out) == 6


def test_every_checkpoint_damaged_is_one_clear_error(records, tmp_path):
    out = tmp_path / "o"
    P.trainer(out, num_train_steps=2, save_checkpoints_steps=2, num_warmup_steps=0).train(records)
    (out / "ckpt-2.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(TrainingError, match=r"every checkpoint in .* is damaged \(ckpt-2\)"):
        P.trainer(out, num_train_steps=4)


def test_classifier_resume_after_kill_ends_at_the_asked_step(tmp_path, pretrained, mrpc_dir):
    out = tmp_path / "out"
    args = ("--task_name=MRPC", f"--data_dir={mrpc_dir}", f"--init_checkpoint={pretrained}",
            f"--output_dir={out}", "--do_train", f"--max_seq_length={C.SEQ}",
            "--train_batch_size=8", "--num_train_epochs=6", "--save_checkpoints_steps=20",
            "--log_steps=20", "--iterations_per_loop=5")  # 256 examples: 192 steps
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, C.SCRIPT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=C.REPO)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and P._latest_step(out) is None:
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=30)
    killed_at = P._latest_step(out)
    assert killed_at is not None and killed_at < 192
    again = C._cli(*args, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resumed from checkpoint {out}/ckpt-{killed_at} at step {killed_at}" in again.stdout
    assert "step 192/192" in again.stdout and P._latest_step(out) == 192
    assert int(tf.train.load_checkpoint(str(out / "bert_model.ckpt")).get_tensor(
        "global_step")) == 192


def test_sigterm_during_evaluation_ends_cleanly(records, tmp_path):
    t = _trainer(tmp_path / "o", PretrainingTask(BertConfig(**P.CONFIG), P.S, P.M,
                                                 max_eval_steps=100000, seed=1))
    calls = {"n": 0}
    infer = t._make_infer_fn()

    def counting(iterator):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return infer(iterator)

    t._infer_fn = counting
    assert t.evaluate(records) is None and t.preempted
    assert calls["n"] <= 4
    assert "Stopped by SIGTERM during evaluation" in t.progress_stream.getvalue()
    assert not (tmp_path / "o" / "eval_results.txt").exists()


def test_disk_full_while_saving_leaves_no_temp_checkpoint(records, tmp_path):
    resource = pytest.importorskip("resource")
    out = tmp_path / "o"
    t = P.trainer(out, num_train_steps=1, num_warmup_steps=0)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Files may not grow past 4 KB: the checkpoint's data file fails as on a full disk (EFBIG).
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(TrainingError, match=rf"cannot write checkpoint {out}/ckpt-0: "):
            t.store.save()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert not [f for f in os.listdir(out) if "_temp" in f or "tempstate" in f], os.listdir(out)
