"""run_ner.py end to end on CPU with tiny BERTs (bert_tf.training.ner, bert_tf.cli.ner).

The data are generated: sentences of filler words with person names and cities (one word, or
"New York" as B-LOC I-LOC), long enough that many need several doc-stride windows.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertConfig
from bert_tf.checkpoints import load_google_checkpoint
from bert_tf.data.conll import read_conll, read_tokens
from bert_tf.data.ner_metrics import ner_metrics
from bert_tf.data.token_alignment import create_features
from bert_tf.models import BertTokenClassifier
from bert_tf.text import BertPreprocessor, BertTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import google_ckpt  # noqa: E402
import test_models_token_classifier as M  # noqa: E402
from shared_data import SHARED_DATA  # noqa: E402
from test_run_classifier import _assert_clean_error  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "run_ner.py")
# The generated entity task of the model tests: names (PER), cities and "New York" (LOC).
VOCAB = M.LEARN_VOCAB
generated_sentences = M._generated_sentences
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SEQ, STRIDE = 16, 5
TINY = {"vocab_size": len(VOCAB), "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": SEQ,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "type_vocab_size": 2, "initializer_range": 0.02}


def write_conll(path, sentences, scheme="IOB2", with_tags=True):
    """Columns `token POS tag` (a middle column, as CoNLL-2003 has); IOB1 drops the B- of
    entities that follow no entity of the same type."""
    lines = ["-DOCSTART- -X- O", ""]
    for words, tags in sentences:
        previous = "O"
        for word, tag in zip(words, tags):
            written = tag
            if scheme == "IOB1" and tag.startswith("B-") and previous[2:] != tag[2:]:
                written = "I-" + tag[2:]
            lines.append(f"{word} NN {written}" if with_tags else word)
            previous = tag
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _cli(*args, timeout=300):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def read_results(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        key, _, value = line.strip().partition(" = ")
        out[key] = float(value)
    return out


def read_predicted(path, column):
    """The predicted tags (column -1) or words (column 0) of a predictions file, per sentence."""
    sentences, current = [], []
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            sentences.append(current)
            current = []
        else:
            current.append(line.split()[column])
    return sentences


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ner_data")
    rng = np.random.RandomState(0)
    train, dev, test = (generated_sentences(rng, n) for n in (256, 48, 16))
    files = {"train": write_conll(directory / "train.txt", train, scheme="IOB1"),
             "dev": write_conll(directory / "valid.txt", dev),
             "test": write_conll(directory / "test.txt", test, with_tags=False),
             "vocab": str(directory / "vocab.txt"), "config": str(directory / "config.json")}
    (directory / "vocab.txt").write_text("".join(f"{t}\n" for t in VOCAB), encoding="utf-8")
    (directory / "config.json").write_text(json.dumps(TINY), encoding="utf-8")
    return dict(files, dir=str(directory), dev_sentences=dev, test_sentences=test)


@pytest.fixture(scope="module")
def learned(data, tmp_path_factory):
    """One CLI run from random init: train, evaluate, predict, export."""
    out = tmp_path_factory.mktemp("ner_out")
    proc = _cli(f"--train_file={data['train']}", f"--eval_file={data['dev']}",
                f"--predict_file={data['test']}", f"--vocab_file={data['vocab']}",
                f"--bert_config_file={data['config']}", f"--output_dir={out / 'run'}",
                "--do_train", "--do_eval", "--do_predict", f"--max_seq_length={SEQ}",
                f"--doc_stride={STRIDE}", "--train_batch_size=32", "--learning_rate=3e-3",
                "--num_train_epochs=12", "--warmup_proportion=0.05", "--seed=0",
                "--log_steps=50", "--iterations_per_loop=50", f"--export_dir={out / 'export'}")
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    return {"run": str(out / "run"), "export": str(out / "export"), "stdout": proc.stdout}


def _model_from(run_dir):
    model = BertTokenClassifier(BertConfig.from_json_file(os.path.join(run_dir,
                                                                       "bert_config.json")),
                                len(LABELS))
    report = load_google_checkpoint(model, os.path.join(run_dir, "bert_model.ckpt"),
                                    optional_groups=("classifier",))
    assert report.newly_initialized == []
    return model


def _in_process_tags(model, sentences):
    tokenizer = BertTokenizer(VOCAB, do_lower_case=True)
    features = create_features(tokenizer, sentences, None, SEQ, STRIDE)
    inputs = {k: features.arrays[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}
    predicted = np.argmax(model(inputs, training=False).numpy(), -1)
    return [[LABELS[i] for i in row] for row in features.merge(predicted)]


def test_cli_learns_a_generated_entity_task(data, learned):
    run = learned["run"]
    results = read_results(os.path.join(run, "eval_results.txt"))
    assert results["eval_f1"] > 0.95, results
    assert set(results) >= {"eval_f1", "eval_precision", "eval_recall", "eval_f1_LOC",
                            "eval_f1_PER", "eval_accuracy", "eval_loss", "global_step", "loss"}
    assert all(k.startswith("eval_") for k in results if k not in ("global_step", "loss"))
    # The step count follows Google's rule with the training windows as examples.
    tokenizer = BertTokenizer(VOCAB, do_lower_case=True)
    train = read_conll(data["train"])
    windows = len(create_features(tokenizer, [s.words for s in train.sentences], None, SEQ,
                                  STRIDE))
    assert results["global_step"] == int(windows / 32 * 12)
    with open(os.path.join(run, "labels.txt")) as f:
        assert f.read().split() == LABELS
    # eval_predictions.txt: `token gold predicted`, gold in IOB2; its metrics are the results.
    gold = [tags for _, tags in data["dev_sentences"]]
    assert read_predicted(os.path.join(run, "eval_predictions.txt"), 1) == gold
    predicted = read_predicted(os.path.join(run, "eval_predictions.txt"), 2)
    metrics = ner_metrics(gold, predicted).as_dict()
    for key in ("eval_f1", "eval_precision", "eval_recall", "eval_accuracy"):
        assert metrics[key] == pytest.approx(results[key], abs=1e-12)
    # test_predictions.txt (`token predicted`) equals the in-process model on the same windows.
    model = _model_from(run)
    test_words = [words for words, _ in data["test_sentences"]]
    assert read_predicted(os.path.join(run, "test_predictions.txt"), 0) == test_words
    assert read_predicted(os.path.join(run, "test_predictions.txt"), 1) == \
        _in_process_tags(model, test_words)


def test_exported_saved_model_returns_the_in_process_entities(data, learned):
    from bert_tf.serving.token_classifier import predict_entities

    versions = os.listdir(os.path.join(learned["export"], "ner"))
    assert versions == ["1"]
    serving = tf.saved_model.load(os.path.join(learned["export"], "ner", "1"))
    model = _model_from(learned["run"])
    texts = [" ".join(words) for words, _ in data["test_sentences"][:6]]
    texts.append("Alice went to Paris")
    texts.append(" ".join(["the cat went to Bob , New York"] * 4))  # several windows
    out = serving.signatures["serving_default"](text=tf.constant(texts))
    expected = predict_entities(model, BertPreprocessor(VOCAB, seq_length=SEQ), LABELS, texts,
                                doc_stride=STRIDE)
    assert sum(len(e) for e in expected) > 10
    for i, entities in enumerate(expected):
        assert int(out["num_entities"][i]) == len(entities)
        for j, entity in enumerate(entities):
            assert out["entity_text"][i, j].numpy().decode() == entity.text
            assert out["entity_type"][i, j].numpy().decode() == entity.type
            assert (int(out["start"][i, j]), int(out["end"][i, j])) == (entity.start, entity.end)
            assert abs(float(out["score"][i, j]) - entity.score) <= 1e-5
    spans = {(e.type, e.text) for e in expected[-2]}
    assert spans == {("PER", "Alice"), ("LOC", "Paris")}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("google_pretrained"))
    config = google_ckpt.tiny_config(vocab_size=len(VOCAB), max_position_embeddings=32)
    return google_ckpt.write_google_checkpoint(directory, config, seed=3, vocab_tokens=VOCAB)


def test_google_checkpoint_trains_evaluates_predicts_and_exports(data, pretrained, tmp_path):
    out = tmp_path / "run"
    common = (f"--eval_file={data['dev']}", f"--predict_file={data['test']}",
              f"--output_dir={out}", "--do_eval", "--do_predict", f"--max_seq_length={SEQ}",
              f"--doc_stride={STRIDE}", "--eval_batch_size=16", "--predict_batch_size=16")
    proc = _cli(f"--train_file={data['train']}", f"--init_checkpoint={pretrained}",
                "--do_train", "--train_batch_size=16", "--num_train_epochs=0.2",
                "--export_model_name=tiny", f"--export_dir={tmp_path / 'export'}",
                "--bucket_size=0", *common)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    for name in ("eval_results.txt", "eval_predictions.txt", "test_predictions.txt",
                 "bert_model.ckpt.index", "bert_config.json", "vocab.txt", "labels.txt"):
        assert os.path.isfile(out / name), name
    arrays = google_ckpt.read_checkpoint_arrays(str(out / "bert_model.ckpt"))
    assert arrays["output_weights"].shape == (len(LABELS), 32)
    original = google_ckpt.read_checkpoint_arrays(pretrained)
    assert not np.array_equal(arrays["bert/embeddings/word_embeddings"],
                              original["bert/embeddings/word_embeddings"])
    assert os.path.isfile(tmp_path / "export" / "tiny" / "1" / "saved_model.pb")
    first = read_results(out / "eval_results.txt")
    # Evaluating the fine-tuned checkpoint alone (labels.txt beside it) gives the same numbers
    # and files, also with windows cut to length buckets (the first run used the fixed length).
    again = tmp_path / "again"
    proc = _cli(f"--init_checkpoint={out}", "--bucket_size=4",
                *[a.replace(str(out), str(again)) for a in common])
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    second = read_results(again / "eval_results.txt")
    assert second.keys() == first.keys()
    for key in set(first) - {"global_step"}:  # that run trained, this one only evaluates
        assert second[key] == pytest.approx(first[key], abs=1e-6 if "loss" in key else 0), key
    for name in ("eval_predictions.txt", "test_predictions.txt"):
        assert (again / name).read_text() == (out / name).read_text(), name


def _flags(data, out, *extra):
    return (f"--vocab_file={data['vocab']}", f"--bert_config_file={data['config']}",
            f"--output_dir={out}", f"--max_seq_length={SEQ}", *extra)


def test_missing_file_is_one_line(data, tmp_path):
    missing = tmp_path / "nope.txt"
    proc = _cli(*_flags(data, tmp_path / "o", "--do_train", f"--train_file={missing}"))
    _assert_clean_error(proc, "--train_file", str(missing))
    proc = _cli(*_flags(data, tmp_path / "o", "--do_train", f"--data_dir={tmp_path}",
                        "--task_name=wnut17"))
    _assert_clean_error(proc, str(tmp_path / "wnut17train.conll"))
    proc = _cli(*_flags(data, tmp_path / "o", "--do_eval", f"--train_file={data['train']}"))
    _assert_clean_error(proc, "--do_eval needs --eval_file")


def test_broken_tag_and_unknown_eval_tag_are_one_line(data, tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_text("Alice B-PER\nwent O\n\nto O\nRome I-LOC\n", encoding="utf-8")
    proc = _cli(*_flags(data, tmp_path / "o", "--do_train", f"--train_file={broken}",
                        "--tag_scheme=IOB2"))
    _assert_clean_error(proc, f"{broken}:5", "I-LOC", "IOB2")
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("Alice B-PER\nin O\nMicrosoft B-ORG\n", encoding="utf-8")
    proc = _cli(*_flags(data, tmp_path / "o", "--do_train", "--do_eval",
                        f"--train_file={data['train']}", f"--eval_file={unknown}"))
    _assert_clean_error(proc, f"{unknown}:3", "B-ORG")


WNUT17 = SHARED_DATA / "ner" / "wnut17"


@pytest.mark.slow
@pytest.mark.skipif(not (WNUT17 / "wnut17train.conll").is_file(), reason="no WNUT-17 files")
def test_wnut17_through_the_cli(tmp_path):
    """The real files by --task_name: a few steps of a random-init tiny model, every output."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"{t}\n" for t in VOCAB), encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(dict(TINY, max_position_embeddings=64)), encoding="utf-8")
    out = tmp_path / "out"
    proc = _cli(f"--data_dir={WNUT17}", "--task_name=wnut17", f"--vocab_file={vocab}",
                f"--bert_config_file={config}", f"--output_dir={out}", "--do_train",
                "--do_eval", "--do_predict", "--max_seq_length=64", "--train_batch_size=64",
                "--num_train_epochs=0.1", "--eval_batch_size=64", "--predict_batch_size=64",
                timeout=900)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    with open(out / "labels.txt") as f:
        labels = f.read().split()
    assert len(labels) == 13  # O + B/I of the six WNUT-17 types
    dev = read_conll(WNUT17 / "emerging.dev.conll")
    assert read_predicted(out / "eval_predictions.txt", 1) == [list(s.tags) for s in
                                                                 dev.sentences]
    test = read_tokens(WNUT17 / "emerging.test.annotated")
    assert len(read_predicted(out / "test_predictions.txt", 0)) == len(test.sentences)
    assert 0.0 <= read_results(out / "eval_results.txt")["eval_f1"] <= 1.0
