"""run_squad.py (bert_tf.cli.squad, bert_tf.training.squad, the span-QA task) on CPU with a tiny BERT.

The data are generated SQuAD files: the question asks for the word after a marker word in the
context (learnable in ~100 steps); in v2.0 a third of the contexts have no marker (impossible).
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data import squad
from bert_tf.text.vocab import Vocab
from bert_tf.training.options import TrainingError
from bert_tf.training.squad import QuestionAnsweringOptions, read_squad_data
from bert_tf.training.tasks.question_answering import QuestionAnsweringTask

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from google_ckpt import tiny_config, write_google_checkpoint  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_squad.py")
FILL = [f"w{i}" for i in range(40)]
MARK = "zz"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", MARK, "what", "comes", "after", "?"] + FILL
# No dropout, hidden 64: the marker rule is learned in ~100 steps at learning rate 1e-3.
CONFIG = tiny_config(vocab_size=len(VOCAB), max_position_embeddings=32, hidden_size=64,
                     intermediate_size=128, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
SEQ = ["--max_seq_length=24", "--doc_stride=8", "--max_query_length=8", "--n_best_size=24"]


def squad_json(n, seed, v2=False, context_words=(6, 10)):
    """A SQuAD file of n questions "what comes after zz ?" on contexts of 6-10 (`context_words`)
    filler words."""
    r = random.Random(seed)
    paragraphs = []
    for i in range(n):
        words = r.sample(FILL, r.randint(*context_words))
        qa = {"id": f"q{seed}_{i}", "question": f"what comes after {MARK} ?", "answers": []}
        impossible = v2 and r.random() < 0.3
        if not impossible:
            k = r.randint(0, len(words) - 1)
            words.insert(k, MARK)
            start = len(" ".join(words[:k + 1])) + 1
            qa["answers"] = [{"text": words[k + 1], "answer_start": start}]
        if v2:
            qa["is_impossible"] = impossible
        paragraphs.append({"context": " ".join(words), "qas": [qa]})
    return {"version": "v2.0" if v2 else "1.1",
            "data": [{"title": "generated", "paragraphs": paragraphs}]}


def _write(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    return str(path)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A random Google-layout pretrained checkpoint (no span head) + vocab.txt."""
    return write_google_checkpoint(str(tmp_path_factory.mktemp("pretrained")), CONFIG,
                                   vocab_tokens=VOCAB)


def run_squad(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def _read(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _eval_results(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, value = line.strip().split(" = ")
            out[key] = float(value)
    return out


def _train_and_predict(tmp_path, pretrained, v2, *extra):
    train = _write(tmp_path / "train.json", squad_json(320, 0, v2))
    dev = _write(tmp_path / "dev.json", squad_json(50, 1, v2))
    out = tmp_path / "out"
    done = run_squad(f"--init_checkpoint={pretrained}", "--do_train", f"--train_file={train}",
                     "--do_predict", f"--predict_file={dev}", f"--output_dir={out}", *SEQ,
                     "--train_batch_size=32", "--predict_batch_size=16",
                     "--learning_rate=1e-3", "--num_train_epochs=15", "--seed=0",
                     "--log_steps=50", *(["--version_2_with_negative"] if v2 else []), *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, _read(dev)


def _check_predictions(out, dev):
    predictions = _read(out / "predictions.json")
    nbest = _read(out / "nbest_predictions.json")
    qas = [qa for p in dev["data"][0]["paragraphs"] for qa in p["qas"]]
    assert list(predictions) == [qa["id"] for qa in qas] == list(nbest)
    for qa in qas:
        entries = nbest[qa["id"]]
        assert 1 <= len(entries) <= 25  # n_best_size, + the null answer in v2
        assert sorted(entries[0]) == ["end_logit", "probability", "start_logit", "text"]
        assert abs(sum(e["probability"] for e in entries) - 1.0) < 1e-6
    correct = [predictions[qa["id"]] == (qa["answers"][0]["text"] if qa["answers"] else "")
               for qa in qas]
    return predictions, 100.0 * np.mean(correct)


def assert_nbest_close(actual, expected, atol=5e-5):
    """The same n-best answers per question with logits and probabilities within `atol`
    (relative for logits above 1 in magnitude: float32 rounding of other batch and bucket
    shapes, measured up to 1.4e-5 after the fused-QKV step); their
    order may differ only between answers whose scores tie within `atol` (a float32 rounding
    difference flips such a tie)."""
    assert actual.keys() == expected.keys()
    for qid, entries in expected.items():
        mine = {e["text"]: e for e in actual[qid]}
        assert len(mine) == len(actual[qid]) == len(entries)
        assert mine.keys() == {e["text"] for e in entries}, qid
        for e in entries:
            for name in ("start_logit", "end_logit", "probability"):
                assert abs(mine[e["text"]][name] - e[name]) <= atol * max(1.0, abs(e[name])), \
                    (qid, e["text"], name)
        scores = [e["start_logit"] + e["end_logit"] for e in actual[qid]]
        assert all(a >= b - 2 * atol for a, b in zip(scores, scores[1:])), qid


def _serve(path, questions, contexts):
    served = tf.saved_model.load(path).signatures["serving_default"]
    outputs = served(question=tf.constant(questions), context=tf.constant(contexts))
    return [a.decode("utf-8") for a in outputs["answer"].numpy()], outputs


def _dev_texts(dev):
    pairs = [(qa["question"], p["context"], qa["id"])
             for p in dev["data"][0]["paragraphs"] for qa in p["qas"]]
    return [q for q, _, _ in pairs], [c for _, c, _ in pairs], [i for _, _, i in pairs]


def test_learns_span_task_v1_and_export_answers_equal_predictions(tmp_path, pretrained):
    out, dev = _train_and_predict(tmp_path, pretrained, False,
                                  f"--export_dir={tmp_path / 'serving'}",
                                  "--export_model_name=qa")
    predictions, exact = _check_predictions(out, dev)
    results = _eval_results(out / "eval_results.txt")
    assert exact > 90 and results["exact_match"] == pytest.approx(exact)
    assert results["f1"] >= results["exact_match"] and results["global_step"] == 150
    assert not (out / "null_odds.json").exists()
    for name in ("bert_model.ckpt.index", "bert_config.json", "vocab.txt"):
        assert (out / name).exists(), name
    with open(out / "vocab.txt", encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == VOCAB
    # The exported model answers exactly as run_squad.py --do_predict did.
    path = str(tmp_path / "serving" / "qa" / "1")
    questions, contexts, ids = _dev_texts(dev)
    answers, outputs = _serve(path, questions, contexts)
    assert answers == [predictions[i] for i in ids]
    starts = outputs["start"].numpy()
    assert all(c[s:s + len(a)] == a for c, s, a in zip(contexts, starts, answers))


def test_learns_span_task_v2(tmp_path, pretrained):
    out, dev = _train_and_predict(tmp_path, pretrained, True,
                                  f"--export_dir={tmp_path / 'serving'}", "--bucket_size=0")
    predictions, exact = _check_predictions(out, dev)
    results = _eval_results(out / "eval_results.txt")
    assert exact > 90 and results["exact_match"] == pytest.approx(exact)
    assert results["HasAns_total"] + results["NoAns_total"] == 50 and results["NoAns_total"] > 5
    for key in ("HasAns_exact", "NoAns_exact", "best_exact", "best_exact_thresh", "best_f1",
                "best_f1_thresh"):
        assert key in results, key
    null_odds = _read(out / "null_odds.json")
    assert sorted(null_odds) == sorted(predictions)
    assert all((null_odds[i] > 0.0) == (predictions[i] == "") for i in predictions)
    questions, contexts, ids = _dev_texts(dev)
    answers, outputs = _serve(str(tmp_path / "serving" / "squad" / "1"), questions, contexts)
    assert answers == [predictions[i] for i in ids]
    np.testing.assert_allclose(outputs["null_score_diff"].numpy(),
                               [null_odds[i] for i in ids], rtol=1e-4, atol=1e-4)

    # --do_predict alone from the fine-tuned Google checkpoint gives the same predictions, and
    # so do windows cut to length buckets (that run predicted at the fixed length).
    again = tmp_path / "again"
    done = run_squad(f"--init_checkpoint={out / 'bert_model.ckpt'}", "--do_predict",
                     f"--predict_file={tmp_path / 'dev.json'}", f"--output_dir={again}", *SEQ,
                     "--version_2_with_negative", "--bucket_size=4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _read(again / "predictions.json") == predictions
    assert_nbest_close(_read(again / "nbest_predictions.json"),
                       _read(out / "nbest_predictions.json"))
    assert "never trained" not in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--do_train"], "--do_train needs --train_file"),
    (["--do_predict", "--predict_file=MISSING"], "SQuAD file MISSING does not exist"),
    (["--do_predict", "--predict_file=BAD"], "bad.json: question id 'x': missing field 'question'"),
    (["--do_predict", "--predict_file=GOOD", "--max_seq_length=8"],
     "leaves no room for the context"),
    (["--do_predict", "--predict_file=GOOD", "--export_dir=e"], "--export_dir exports"),
    (["--do_predict", "--predict_file=GOOD", "--bucket_size=-1"], "bucket_size must be"),
])
def test_bad_input_one_line_exit_2(tmp_path, pretrained, args, message):
    bad = _write(tmp_path / "bad.json", {"data": [{"paragraphs": [
        {"context": "a b", "qas": [{"id": "x", "answers": []}]}]}]})
    good = _write(tmp_path / "good.json", squad_json(2, 5))
    args = [a.replace("MISSING", str(tmp_path / "missing.json")).replace("BAD", bad)
            .replace("GOOD", good) for a in args]
    message = message.replace("MISSING", str(tmp_path / "missing.json"))
    done = run_squad(f"--init_checkpoint={pretrained}", f"--output_dir={tmp_path / 'out'}",
                     *SEQ, *args)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "run_squad.py: error:" in line]
    assert len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def _task(tmp_path, **overrides):
    options = QuestionAnsweringOptions(output_dir=str(tmp_path), max_seq_length=24,
                                       doc_stride=8, max_query_length=8, **overrides)
    return QuestionAnsweringTask(CONFIG, Vocab(VOCAB), options)


def test_loss_is_googles_mean_of_start_and_end_cross_entropy(tmp_path):
    """Google's loss, with the softmax over each window's real tokens (padding excluded)."""
    task = _task(tmp_path, bucket_size=0)
    data = task.prepare(squad.read_squad_examples(
        _write(tmp_path / "t.json", squad_json(6, 3)), True), is_training=True)
    batch = next(iter(task.train_dataset(data, 6)(tf.distribute.InputContext())))
    model = task.build_model()
    logits = model(batch[0], training=False)
    start, end = batch[1]
    assert [f.start_position for f in data.features] != [0] * 6

    def ce(x, y):
        x = x.numpy().astype(np.float64)
        log_probs = x - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - x.max(-1, keepdims=True)
        return -log_probs[np.arange(len(y)), y.numpy()]

    expected = (ce(logits["start_logits"], start) + ce(logits["end_logits"], end)) / 2
    np.testing.assert_allclose(task.per_example_loss(logits, batch[1]), expected, rtol=1e-5)
    # The objective's softmax runs over the real tokens: Google's CE on each unpadded window.
    lengths = batch[0]["input_mask"].numpy().sum(1)
    assert (lengths < 24).all()  # every window is padded
    expected = np.array([(ce(logits["start_logits"][i:i + 1, :n], start[i:i + 1])
                          + ce(logits["end_logits"][i:i + 1, :n], end[i:i + 1]))[0] / 2
                         for i, n in enumerate(lengths)])
    totals = tf.constant([12.0])  # another replica holds as many windows
    loss, stats = task.objective(model, batch, totals)
    np.testing.assert_allclose(float(loss), expected.sum() / 12.0, rtol=1e-4)
    np.testing.assert_allclose(stats.numpy(), [expected.sum(), 6.0], rtol=1e-4)


def test_training_needs_training_features_and_files_exist(tmp_path):
    task = _task(tmp_path)
    path = _write(tmp_path / "t.json", squad_json(3, 3))
    with pytest.raises(TrainingError, match="is_training=True"):
        task.train_dataset(read_squad_data(task, path, False), 4)
    with pytest.raises(TrainingError, match="does not exist"):
        read_squad_data(task, str(tmp_path / "none.json"), True)
    with pytest.raises(TrainingError, match="no usable SQuAD questions"):
        read_squad_data(task, _write(tmp_path / "e.json", {"data": []}), True)


# ----------------------------------------------------------------------------- distributed
MIRRORED_SCRIPT = r"""
import io, json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
sys.path.insert(0, sys.argv[3])
import test_run_squad as T
from bert_tf.text.vocab import Vocab
from bert_tf.training.squad import QuestionAnsweringOptions, SquadTrainer, read_squad_data
from bert_tf.training.tasks.question_answering import QuestionAnsweringTask
from bert_tf.training.strategy import create_strategy

out, pre = sys.argv[1], sys.argv[2]
T._write(f"{out}/train.json", T.squad_json(48, 0, True))
T._write(f"{out}/dev.json", T.squad_json(13, 1, True))

def run(name, sub):
    opts = QuestionAnsweringOptions(output_dir=f"{out}/{sub}", max_seq_length=24, doc_stride=8,
                                    max_query_length=8, train_batch_size=8,
                                    predict_batch_size=4, init_checkpoint=pre, seed=0,
                                    log_steps=1, clip_norm=0.1, learning_rate=1e-3,
                                    version_2_with_negative=True)
    task = QuestionAnsweringTask(T.CONFIG, Vocab(T.VOCAB), opts)
    t = SquadTrainer(task, num_train_steps=3, strategy=create_strategy(name),
                     progress_stream=io.StringIO())
    t.train(read_squad_data(task, f"{out}/train.json", True))
    return t, t.predict(read_squad_data(task, f"{out}/dev.json", False))

one, r1 = run("one_device", "one")
two, r2 = run("mirrored", "two")
assert two.num_replicas == 2
np.testing.assert_allclose([h["loss"] for h in two.history],
                           [h["loss"] for h in one.history], rtol=1e-5)
for a, b in zip(one.model.trainable_variables, two.model.trainable_variables):
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)
p1 = json.load(open(f"{out}/one/predictions.json"))
p2 = json.load(open(f"{out}/two/predictions.json"))
assert len(p1) == 13 and p1 == p2, (p1, p2)
n1 = json.load(open(f"{out}/one/null_odds.json"))
n2 = json.load(open(f"{out}/two/null_odds.json"))
np.testing.assert_allclose([n2[k] for k in n1], [n1[k] for k in n1], atol=1e-4)
assert r1["eval_results"]["total"] == 13 == r2["eval_results"]["total"]
print("OK")
"""


# CI time: the shared Trainer's Mirrored path is in CI through test_run_classifier's mirrored test
@pytest.mark.slow
def test_mirrored_two_cpus_equals_one_device(tmp_path, pretrained):
    """Two replicas (13 questions: the last batch is padded) give one device's weights and
    answers."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path), pretrained,
                           os.path.dirname(os.path.abspath(__file__))],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout
