"""Fine-tuning (bert_tf.training.finetune, run_classifier.py) on CPU with a tiny BERT.

The data are generated: a pair task whose label is the sentiment word in text_a (learnable in
seconds), written as TSV files for the generic `tsv` processor and in MRPC's layout.
"""
import io
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.data.glue import InputExample, get_processor
from bert_tf.text import FullTokenizer, pack_tokens
from bert_tf.training.options import TrainingError
from bert_tf.training.finetune import (ClassifierTrainer, FinetuneOptions, run_finetuning,
                                       run_finetuning_seeds, submission_file_name,
                                       summarize_seeds)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from google_ckpt import read_checkpoint_arrays, tiny_config, write_google_checkpoint  # noqa: E402
from numpy_bert import bert_forward, classifier_logits  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_classifier.py")
POS = ["good", "great", "happy", "nice"]
NEG = ["bad", "awful", "sad", "poor"]
FILL = [f"w{i}" for i in range(30)]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + POS + NEG + FILL
CONFIG = tiny_config(vocab_size=len(VOCAB), max_position_embeddings=32)
SEQ = 16


def _rows(n, seed, score=False):
    r = random.Random(seed)
    rows = []
    for _ in range(n):
        y = r.randint(0, 1)
        words = r.sample(FILL, 5)
        words.insert(r.randint(0, 5), r.choice(POS if y else NEG))
        label = f"{y + 0.2 * r.random():.3f}" if score else str(y)
        rows.append((" ".join(words), " ".join(r.sample(FILL, 3)), label))
    return rows


def write_tsv_task(data_dir, n_train=256, n_dev=100, n_test=10, score=False):
    """train/dev/test.tsv with columns text_a, text_b, label (test: the label column too)."""
    os.makedirs(data_dir, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("dev", n_dev, 1), ("test", n_test, 2)):
        with open(os.path.join(data_dir, f"{name}.tsv"), "w", encoding="utf-8") as f:
            for a, b, y in _rows(n, seed, score):
                f.write(f"{a}\t{b}\t{y}\n")
    return data_dir


def write_mrpc_task(data_dir, n_train=256, n_dev=100, n_test=10):
    """Google's MRPC layout: header, Quality, #1 ID, #2 ID, #1 String, #2 String."""
    os.makedirs(data_dir, exist_ok=True)
    head = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for name, n, seed in (("train", n_train, 0), ("dev", n_dev, 1), ("test", n_test, 2)):
        with open(os.path.join(data_dir, f"{name}.tsv"), "w", encoding="utf-8") as f:
            f.write("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n" if name == "test" else head)
            for i, (a, b, y) in enumerate(_rows(n, seed)):
                first = str(i) if name == "test" else y
                f.write(f"{first}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\n")
    return data_dir


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A random Google-layout pretrained checkpoint (with cls/ heads) + vocab.txt."""
    directory = str(tmp_path_factory.mktemp("pretrained"))
    return write_google_checkpoint(directory, CONFIG, vocab_tokens=VOCAB)


@pytest.fixture(scope="module")
def mrpc_dir(tmp_path_factory):
    return write_mrpc_task(str(tmp_path_factory.mktemp("mrpc")))


def _options(out, **kw):
    base = dict(output_dir=str(out), max_seq_length=SEQ, train_batch_size=32, eval_batch_size=8,
                predict_batch_size=8, learning_rate=2e-3, num_train_epochs=10.0, log_steps=20,
                seed=1)
    base.update(kw)
    return FinetuneOptions(**base)


def _vocab(prefix):
    return os.path.join(os.path.dirname(prefix), "vocab.txt")


def _cli(*args, timeout=120):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


# ----------------------------------------------------------------------------- training
def test_mrpc_layout_cli_learns_and_writes_google_formats(tmp_path, pretrained, mrpc_dir):
    out = tmp_path / "out"
    proc = _cli("--task_name=MRPC", f"--data_dir={mrpc_dir}", f"--init_checkpoint={pretrained}",
                f"--output_dir={out}", "--do_train", "--do_eval", "--do_predict",
                f"--max_seq_length={SEQ}", "--train_batch_size=32", "--learning_rate=2e-3",
                "--num_train_epochs=10", "--log_steps=20", "--seed=1",
                "--save_checkpoints_steps=50", f"--export_dir={tmp_path / 'serving'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 80/80" in proc.stdout
    results = {}
    for line in (out / "eval_results.txt").read_text().splitlines():
        key, value = line.split(" = ")
        results[key] = float(value)
    assert set(results) == {"accuracy", "f1", "acc_and_f1", "eval_loss", "global_step"}
    assert results["accuracy"] >= 0.95 and results["global_step"] == 80
    # test_results.tsv: one line of class probabilities per test example.
    probs = np.loadtxt(out / "test_results.tsv", delimiter="\t")
    assert probs.shape == (10, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    # MRPC.tsv: the GLUE submission with label names.
    lines = (out / "MRPC.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 11
    expected = [int(y) for _, _, y in _rows(10, 2)]
    predicted = [int(line.split("\t")[1]) for line in lines[1:]]
    assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(10)]
    assert predicted == list(np.argmax(probs, 1))
    assert np.mean(np.array(predicted) == np.array(expected)) >= 0.9
    # Google checkpoint with the head at the top level; checkpoints for resume; summaries.
    names = dict(tf.train.list_variables(str(out / "bert_model.ckpt")))
    assert names["output_weights"] == [2, CONFIG["hidden_size"]] and names["output_bias"] == [2]
    assert not any(n.startswith("cls/") for n in names)
    assert (out / "bert_config.json").exists() and (out / "ckpt-80.index").exists()
    assert (out / "ckpt-50.index").exists()
    assert tf.io.gfile.glob(str(out / "train" / "events.out.tfevents.*"))
    assert tf.io.gfile.glob(str(out / "eval" / "events.out.tfevents.*"))
    # output_dir is a complete model directory; --export_dir served the same predictions.
    # MRPC's names (the files' 0/1 stay in MRPC.tsv, as the GLUE leaderboard expects).
    assert (out / "labels.txt").read_text() == "not_equivalent\nequivalent\n"
    assert (out / "vocab.txt").read_text().splitlines() == VOCAB
    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(str(tmp_path / "serving" / "mrpc" / "1")).signatures["text_pair"]
    rows = _rows(10, 2)
    served = serve(text=tf.constant([a for a, _, _ in rows]),
                   text_b=tf.constant([b for _, b, _ in rows]))
    np.testing.assert_allclose(served["probabilities"].numpy(), probs, atol=1e-5)
    names = ["not_equivalent", "equivalent"]
    assert [x.decode() for x in served["label"].numpy()] == [names[i] for i in predicted]

    # Rerunning resumes at the last step: nothing to train, same evaluation.
    again = _cli("--task_name=MRPC", f"--data_dir={mrpc_dir}", f"--init_checkpoint={pretrained}",
                 f"--output_dir={out}", "--do_train", "--do_eval", f"--max_seq_length={SEQ}",
                 "--train_batch_size=32", "--num_train_epochs=10")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resumed from checkpoint" in again.stdout and "Running training" not in again.stdout
    resumed = dict(line.split(" = ") for line in
                   (out / "eval_results.txt").read_text().splitlines())
    assert float(resumed["accuracy"]) == results["accuracy"]


def test_regression_lowers_mse(tmp_path, pretrained):
    data = write_tsv_task(str(tmp_path / "data"), score=True)
    processor = get_processor("tsv", text_column=0, text_pair_column=1, label_column=2,
                              regression=True)
    stream = io.StringIO()
    before = run_finetuning("tsv", processor, data, CONFIG, _vocab(pretrained),
                            _options(tmp_path / "before", init_checkpoint=pretrained),
                            do_train=False, do_eval=True, progress_stream=stream)
    after = run_finetuning("tsv", processor, data, CONFIG, _vocab(pretrained),
                           _options(tmp_path / "after", init_checkpoint=pretrained,
                                    learning_rate=5e-4, num_train_epochs=20.0),
                           do_train=True, do_eval=True, do_predict=True, progress_stream=stream)
    b, a = before["eval_results"], after["eval_results"]
    assert {"pearson", "spearmanr", "eval_loss", "global_step"} <= set(a)
    assert a["eval_loss"] < 0.25 * b["eval_loss"], (b, a)
    assert a["pearson"] > 0.9
    assert after["trainer"].model.num_classes == 1
    scores = np.loadtxt(tmp_path / "after" / "test_results.tsv")
    assert scores.shape == (10,)
    lines = (tmp_path / "after" / "TSV.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    np.testing.assert_allclose([float(x.split("\t")[1]) for x in lines[1:]], scores, atol=1e-5)
    names = dict(tf.train.list_variables(str(tmp_path / "after" / "bert_model.ckpt")))
    assert names["output_weights"] == [1, CONFIG["hidden_size"]]


def test_num_seeds_reports_each_seed_and_mean_std(tmp_path, pretrained):
    data = write_tsv_task(str(tmp_path / "data"), n_train=64, n_dev=16)
    processor = get_processor("tsv", text_column=0, text_pair_column=1, label_column=2)
    result = run_finetuning_seeds("tsv", processor, data, CONFIG, _vocab(pretrained),
                                  _options(tmp_path / "out", num_train_epochs=1.0, seed=7,
                                           init_checkpoint=pretrained),
                                  num_seeds=2, do_train=True, do_eval=True,
                                  progress_stream=io.StringIO())
    assert result["seeds"] == [7, 8] and len(result["per_seed"]) == 2
    for seed in (7, 8):
        assert (tmp_path / "out" / f"seed_{seed}" / "eval_results.txt").exists()
        assert (tmp_path / "out" / f"seed_{seed}" / "bert_model.ckpt.index").exists()
    summary = dict(line.split(" = ") for line in
                   (tmp_path / "out" / "eval_results.txt").read_text().splitlines())
    accs = [r["accuracy"] for r in result["per_seed"]]
    assert float(summary["seed_7/accuracy"]) == accs[0]
    assert float(summary["seed_8/accuracy"]) == accs[1]
    assert float(summary["accuracy_mean"]) == pytest.approx(np.mean(accs))
    assert float(summary["accuracy_std"]) == pytest.approx(np.std(accs, ddof=1))
    assert float(summary["num_seeds"]) == 2
    # The two seeds differ (head initialisation, shuffling, dropout).
    losses = [r["eval_loss"] for r in result["per_seed"]]
    assert losses[0] != losses[1]


def test_summarize_seeds():
    s = summarize_seeds([{"accuracy": 0.5, "global_step": 3}, {"accuracy": 0.7,
                                                                "global_step": 3}], [0, 1])
    assert s["accuracy_mean"] == pytest.approx(0.6)
    assert s["accuracy_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert "global_step_mean" not in s and s["seed_1/accuracy"] == 0.7


# ----------------------------------------------------------------------------- checkpoints
def test_init_from_pretrained_loads_every_encoder_variable(tmp_path, pretrained):
    trainer = ClassifierTrainer(CONFIG, _vocab(pretrained),
                                _options(tmp_path / "out", init_checkpoint=pretrained),
                                labels=["0", "1"], progress_stream=io.StringIO())
    report = trainer.init_report
    arrays = read_checkpoint_arrays(pretrained)
    encoder_names = sorted(n for n in arrays if n.startswith("bert/"))
    assert sorted(report.loaded) == encoder_names
    assert sorted(report.newly_initialized) == ["output_bias", "output_weights"]
    assert not report.missing and not report.unexpected and not report.mismatched
    from bert_tf.checkpoints.names import google_name_table

    for entry in google_name_table(trainer.model):
        if entry.name in arrays:
            np.testing.assert_array_equal(
                np.asarray(entry.variable.numpy()).reshape(entry.google_shape),
                arrays[entry.name])


def test_predict_from_finetuned_google_checkpoint_matches_numpy(tmp_path):
    labels = ["contradiction", "entailment", "neutral"]
    config = dict(CONFIG, hidden_dropout_prob=0.1)
    prefix = write_google_checkpoint(str(tmp_path / "finetuned"), config,
                                     with_pretraining_heads=False, num_classifier_labels=3,
                                     vocab_tokens=VOCAB, seed=3)
    examples = [InputExample(f"test-{i}", a, b, labels[0]) for i, (a, b, _) in
                enumerate(_rows(11, 5))]
    examples[3] = InputExample("test-3", "GOOD w1 " * 10, "w2 w3 unknownword", labels[0])
    trainer = ClassifierTrainer(config, _vocab(prefix),
                                _options(tmp_path / "out", init_checkpoint=prefix),
                                labels=labels, progress_stream=io.StringIO())
    assert sorted(trainer.init_report.newly_initialized) == []
    logits = trainer.predict_outputs(examples, batch_size=4)["logits"]  # 11 = 4 + 4 + 3 (pad)

    tokenizer = FullTokenizer(_vocab(prefix), do_lower_case=True)
    ids, mask, types = [], [], []
    for ex in examples:
        tokens, type_ids = pack_tokens(tokenizer.tokenize(ex.text_a),
                                       tokenizer.tokenize(ex.text_b), SEQ)
        pad = SEQ - len(tokens)
        ids.append(tokenizer.convert_tokens_to_ids(tokens) + [0] * pad)
        mask.append([1] * len(tokens) + [0] * pad)
        types.append(list(type_ids) + [0] * pad)
    arrays = read_checkpoint_arrays(prefix)
    pooled = bert_forward(arrays, config, np.array(ids), np.array(mask),
                          np.array(types))["pooled_output"]
    expected = classifier_logits(arrays, pooled)
    np.testing.assert_allclose(logits, expected, atol=1e-4)

    files = trainer.predict("xnli", examples)
    probs = np.loadtxt(files["test_results"], delimiter="\t")
    e = np.exp(expected - expected.max(1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), atol=1e-5)
    lines = open(files["submission"]).read().splitlines()
    assert os.path.basename(files["submission"]) == "XNLI.tsv"
    assert [x.split("\t")[1] for x in lines[1:]] == [labels[i] for i in expected.argmax(1)]


def test_submission_file_names():
    assert submission_file_name("MRPC") == "MRPC.tsv"
    assert submission_file_name("sts-b") == "STS-B.tsv"
    assert submission_file_name("mnli-mm") == "MNLI-mm.tsv"
    assert submission_file_name("cola") == "CoLA.tsv"


# ----------------------------------------------------------------------------- bad input
def _flags(pretrained, data_dir, out, *extra):
    return ("--task_name=mrpc", f"--data_dir={data_dir}", f"--init_checkpoint={pretrained}",
            f"--output_dir={out}", "--do_train", f"--max_seq_length={SEQ}", *extra)


def _assert_clean_error(proc, *needles):
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(error) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in error[0], error[0]
    return error[0]


def test_unknown_task_name(tmp_path, pretrained, mrpc_dir):
    proc = _cli(*_flags(pretrained, mrpc_dir, tmp_path / "o"), "--task_name=nope")
    _assert_clean_error(proc, "unknown task name 'nope'", "mrpc", "sts-b", "tsv")


def test_export_dir_needs_a_training_run(tmp_path, pretrained, mrpc_dir):
    proc = _cli("--task_name=mrpc", f"--data_dir={mrpc_dir}", f"--init_checkpoint={pretrained}",
                f"--output_dir={tmp_path / 'o'}", "--do_eval", f"--max_seq_length={SEQ}",
                f"--export_dir={tmp_path}")
    _assert_clean_error(proc, "--export_dir", "--do_train")


def test_missing_data_file(tmp_path, pretrained):
    data = tmp_path / "empty"
    data.mkdir()
    proc = _cli(*_flags(pretrained, data, tmp_path / "o"))
    _assert_clean_error(proc, str(data / "train.tsv"))


def test_max_seq_length_beyond_positions(tmp_path, pretrained, mrpc_dir):
    proc = _cli(*_flags(pretrained, mrpc_dir, tmp_path / "o"), "--max_seq_length=64")
    _assert_clean_error(proc, "--max_seq_length=64", "max_position_embeddings 32")


def test_cased_vocab_with_do_lower_case_warns(tmp_path, mrpc_dir):
    cased = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w.capitalize() for w in
                                                            POS + NEG + FILL]
    prefix = write_google_checkpoint(str(tmp_path / "cased"), CONFIG, vocab_tokens=cased)
    proc = _cli("--task_name=mrpc", f"--data_dir={mrpc_dir}", f"--init_checkpoint={prefix}",
                f"--output_dir={tmp_path / 'o'}", "--do_eval", f"--max_seq_length={SEQ}",
                "--eval_batch_size=50")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "do_lower_case" in proc.stderr and "looks cased" in proc.stderr


# ----------------------------------------------------------------------------- distributed
MIRRORED_SCRIPT = r"""
import io, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
sys.path.insert(0, sys.argv[4])
import test_run_classifier as T
from bert_tf.data.glue import get_processor
from bert_tf.training.finetune import ClassifierTrainer
from bert_tf.training.strategy import create_strategy

out, pre, data = sys.argv[1], sys.argv[2], sys.argv[3]
config = dict(T.CONFIG, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
p = get_processor("mrpc")
train, dev = p.get_train_examples(data)[:96], p.get_dev_examples(data)[:13]

def run(name, sub, **kw):
    opts = T._options(f"{out}/{sub}", init_checkpoint=pre, log_steps=1, clip_norm=0.1, **kw)
    t = ClassifierTrainer(config, T._vocab(pre), opts, labels=p.get_labels(),
                          num_train_steps=3, strategy=create_strategy(name),
                          progress_stream=io.StringIO())
    t.train(train)
    return t, t.predict_outputs(dev, batch_size=4, with_labels=True)

one, p1 = run("one_device", "one")
two, p2 = run("mirrored", "two")
assert two.num_replicas == 2
l1, l2 = [h["loss"] for h in one.history], [h["loss"] for h in two.history]
print("losses", l1, l2)
np.testing.assert_allclose(l2, l1, rtol=1e-5)
for a, b in zip(one.model.trainable_variables, two.model.trainable_variables):
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)
assert p1["logits"].shape == (13, 2)
np.testing.assert_allclose(p2["logits"], p1["logits"], atol=1e-5)
print("OK")
"""


def test_mirrored_two_cpus_equals_one_device(tmp_path, pretrained, mrpc_dir):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path), pretrained,
                           mrpc_dir, os.path.dirname(os.path.abspath(__file__))],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OK" in proc.stdout


def test_nan_loss_stops_without_saving(tmp_path, pretrained):
    from bert_tf.training.run_control import NonFiniteLossError

    data = write_tsv_task(str(tmp_path / "data"), n_train=64, score=True)
    with open(os.path.join(data, "train.tsv"), "a", encoding="utf-8") as f:
        f.write("good w1\tw2\tnan\n" * 64)  # every batch holds a NaN label
    processor = get_processor("tsv", text_column=0, text_pair_column=1, label_column=2,
                              regression=True)
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 1") as info:
        run_finetuning("tsv", processor, data, CONFIG, _vocab(pretrained),
                       _options(tmp_path / "out", init_checkpoint=pretrained),
                       progress_stream=io.StringIO())
    assert info.value.step == 1
    assert tf.train.latest_checkpoint(str(tmp_path / "out")) is None
    assert not (tmp_path / "out" / "bert_model.ckpt.index").exists()


def test_empty_split_is_a_clear_error(tmp_path, pretrained):
    data = write_mrpc_task(str(tmp_path / "mrpc"), n_train=8, n_dev=0, n_test=2)
    with pytest.raises(TrainingError, match=r"the dev \(evaluation\) split in .* has no examples"):
        run_finetuning("mrpc", get_processor("mrpc"), data, CONFIG, _vocab(pretrained),
                       _options(tmp_path / "out"), do_train=True, do_eval=True)


def test_train_without_init_checkpoint_warns_training_from_scratch(tmp_path, pretrained):
    data = write_mrpc_task(str(tmp_path / "mrpc"), n_train=32, n_dev=8, n_test=2)
    directory = os.path.dirname(pretrained)
    proc = _cli("--task_name=mrpc", f"--data_dir={data}", f"--output_dir={tmp_path / 'o'}",
                "--do_train", f"--max_seq_length={SEQ}", "--num_train_epochs=1",
                f"--bert_config_file={os.path.join(directory, 'bert_config.json')}",
                f"--vocab_file={os.path.join(directory, 'vocab.txt')}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--do_train without --init_checkpoint" in proc.stderr
    assert "training from scratch" in proc.stderr


# ----------------------------------------------------------------------------- issue 12
def test_do_eval_alone_on_an_untrained_head_warns(tmp_path, pretrained, mrpc_dir):
    stream = io.StringIO()
    run_finetuning("mrpc", get_processor("mrpc"), mrpc_dir, CONFIG, _vocab(pretrained),
                   _options(tmp_path / "o", init_checkpoint=pretrained, eval_batch_size=50),
                   do_train=False, do_eval=True, progress_stream=stream)
    assert "WARNING: the classifier head (output_weights/output_bias) was never trained" in \
        stream.getvalue()


def test_train_batch_size_zero_is_a_clear_error(tmp_path, pretrained, mrpc_dir):
    with pytest.raises(TrainingError, match="train_batch_size must be a positive integer, got 0"):
        run_finetuning("mrpc", get_processor("mrpc"), mrpc_dir, CONFIG, _vocab(pretrained),
                       _options(tmp_path / "o", train_batch_size=0))


def test_rerun_on_other_data_is_refused_same_data_resumes(tmp_path, pretrained):
    first = write_tsv_task(str(tmp_path / "a"), n_train=32, n_dev=8)
    other = str(tmp_path / "b")
    os.makedirs(other)
    with open(os.path.join(first, "train.tsv")) as f:
        rows = f.read().splitlines()
    with open(os.path.join(other, "train.tsv"), "w") as f:
        f.write("\n".join(rows[:-1] + ["good w1\tw2\t1"]) + "\n")  # one row differs
    processor = get_processor("tsv", text_column=0, text_pair_column=1, label_column=2)
    opts = _options(tmp_path / "out", num_train_epochs=1.0, init_checkpoint=pretrained)
    run_finetuning("tsv", processor, first, CONFIG, _vocab(pretrained), opts,
                   progress_stream=io.StringIO())
    with pytest.raises(TrainingError, match=r"holds a run trained on other data or settings "
                                            r"\(train_examples_sha256: was"):
        run_finetuning("tsv", processor, other, CONFIG, _vocab(pretrained), opts,
                       progress_stream=io.StringIO())
    stream = io.StringIO()
    again = run_finetuning("tsv", processor, first, CONFIG, _vocab(pretrained),
                           _options(tmp_path / "out", num_train_epochs=1.0, learning_rate=1e-3,
                                    init_checkpoint=pretrained), progress_stream=stream)
    assert again["global_step"] == 1
    assert (f"Resuming the run in {tmp_path / 'out'} (same training data); these settings "
            f"differ from that run's: learning_rate: was 0.002, now 0.001") in stream.getvalue()


def test_empty_train_file_says_so(tmp_path, pretrained):
    data = write_tsv_task(str(tmp_path / "d"), n_train=0, n_dev=8)
    processor = get_processor("tsv", text_column=0, text_pair_column=1, label_column=2)
    with pytest.raises(TrainingError, match=r"the training split in .* has no examples"):
        run_finetuning("tsv", processor, data, CONFIG, _vocab(pretrained),
                       _options(tmp_path / "o"), do_train=True)
    with pytest.raises(TrainingError, match=r"labels are not given \(--labels\) and the "
                                            r"training file in .* has no examples"):
        run_finetuning("tsv", processor, data, CONFIG, _vocab(pretrained),
                       _options(tmp_path / "o"), do_train=False, do_eval=True)


def test_export_model_name_without_export_dir(tmp_path, pretrained, mrpc_dir):
    proc = _cli(*_flags(pretrained, mrpc_dir, tmp_path / "o"), "--export_model_name=m")
    _assert_clean_error(proc, "--export_model_name", "--export_dir")


def test_eval_every_n_steps_and_best_checkpoint_in_fine_tuning(tmp_path, pretrained, mrpc_dir):
    stream = io.StringIO()
    result = run_finetuning("mrpc", get_processor("mrpc"), mrpc_dir, CONFIG, _vocab(pretrained),
                            _options(tmp_path / "o", init_checkpoint=pretrained,
                                     num_train_epochs=1.0, eval_every_n_steps=4,
                                     eval_batch_size=50,
                                     keep_best_checkpoint_by="eval_loss"),
                            do_train=True, do_eval=True, progress_stream=stream)
    history = [line for line in (tmp_path / "o" / "eval_history.jsonl").read_text().splitlines()]
    assert len(history) == 3  # steps 4 and 8 (the last) during training, then the final one
    best = result["best_step"]
    assert best in (4, 8)
    assert f"the weights of step {best}" in stream.getvalue()
    assert result["eval_results"]["global_step"] == best
