"""from_pretrained over every format and task (question answering: Google run_squad and HF
BertForQuestionAnswering), and the convert command's round trips (exact weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy

import google_ckpt
import hf_ckpt
import numpy_bert
from bert_tf import BertClassifier, BertEncoder, BertPretrainer
from bert_tf.errors import InputError
from bert_tf.models import BertSpanQA
from bert_tf.pretrained import PretrainedError, detect_format, from_pretrained, save_pretrained

CONFIG = google_ckpt.tiny_config()  # Google's tanh GELU: every format can hold it
TOKENS = hf_ckpt.vocab_tokens(CONFIG["vocab_size"])
IDS = np.array([[2, 7, 8, 9, 4, 3, 0, 0], [2, 11, 12, 4, 3, 13, 14, 3]], np.int32)
INPUTS = {"input_word_ids": IDS, "input_mask": (IDS > 0).astype(np.int32),
          "input_type_ids": np.zeros_like(IDS)}


@pytest.fixture(scope="module")
def google_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("google"))
    google_ckpt.write_google_checkpoint(directory, CONFIG, seed=5, vocab_tokens=TOKENS,
                                        with_optimizer_slots=True, with_global_step=True)
    return directory


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("finetuned"))
    google_ckpt.write_google_checkpoint(directory, CONFIG, seed=6, vocab_tokens=TOKENS,
                                        with_pretraining_heads=False, num_classifier_labels=3)
    with open(os.path.join(directory, "labels.txt"), "w") as f:
        f.write("contradiction\nentailment\nneutral\n")
    return directory


def _same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        assert np.array_equal(x.numpy(), y.numpy()), x.path


def test_google_directory_and_task_selection(google_dir):
    loaded = from_pretrained(google_dir)
    assert (loaded.format, loaded.task, loaded.do_lower_case) == ("google", "pretraining", True)
    assert isinstance(loaded.model, BertPretrainer) and len(loaded.vocab) == 99
    arrays = google_ckpt.read_checkpoint_arrays(os.path.join(google_dir, "bert_model.ckpt"))
    ref = numpy_bert.bert_forward(arrays, CONFIG, IDS, INPUTS["input_mask"])
    encoder = from_pretrained(google_dir, task="encoder").model
    assert isinstance(encoder, BertEncoder)
    np.testing.assert_allclose(encoder(INPUTS)["sequence_output"], ref["sequence_output"],
                               atol=2e-5)
    classifier = from_pretrained(google_dir, task="classifier")  # head starts new
    assert isinstance(classifier.model, BertClassifier) and classifier.labels is None


def test_finetuned_output_dir_has_labels(classifier_dir):
    loaded = from_pretrained(classifier_dir)
    assert loaded.task == "classifier"
    assert loaded.labels == ["contradiction", "entailment", "neutral"]
    assert loaded.model.num_classes == 3
    with pytest.raises(PretrainedError, match="masked_lm"):
        from_pretrained(classifier_dir, task="masked_lm")


@pytest.mark.parametrize("to_format", ["hf", "keras", "google"])
def test_round_trips_are_exact(google_dir, tmp_path, to_format):
    source = from_pretrained(google_dir)
    out = save_pretrained(source, str(tmp_path / to_format), to_format)
    assert detect_format(out) == to_format
    again = from_pretrained(out)
    assert again.task == "pretraining" and again.vocab.tokens == source.vocab.tokens
    assert again.do_lower_case == source.do_lower_case
    _same_weights(source.model, again.model)


def test_keras_hub_preset_round_trip(google_dir, tmp_path):
    source = from_pretrained(google_dir, task="encoder")
    out = save_pretrained(source, str(tmp_path / "kh"), "keras_hub")
    again = from_pretrained(out)
    assert (again.format, again.task, again.do_lower_case) == ("keras_hub", "encoder", True)
    _same_weights(source.model, again.model)


def test_hf_classifier_to_google_keeps_labels(classifier_dir, tmp_path):
    hf = save_pretrained(from_pretrained(classifier_dir), str(tmp_path / "hf"), "hf")
    loaded = from_pretrained(hf)
    assert loaded.format == "hf" and loaded.labels == ["contradiction", "entailment", "neutral"]
    back = save_pretrained(loaded, str(tmp_path / "google"), "google")
    again = from_pretrained(back)
    assert again.labels == loaded.labels
    _same_weights(loaded.model, again.model)


def test_errors(tmp_path, google_dir):
    with pytest.raises(PretrainedError, match="not a model bert_tf reads"):
        from_pretrained(str(tmp_path))
    with pytest.raises(PretrainedError, match="unknown task"):
        from_pretrained(google_dir, task="ner")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(PretrainedError, match="not empty"):
        save_pretrained(from_pretrained(google_dir), str(tmp_path / "full"), "hf")


def test_convert_command(google_dir, tmp_path):
    out = str(tmp_path / "hf")
    cmd = [sys.executable, "-m", "bert_tf.cli.convert", f"--from={google_dir}", f"--to={out}",
           "--to_format=hf", "--task=masked_lm"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr
    assert "wrote masked_lm model (google → hf)" in done.stdout
    assert from_pretrained(out).task == "pretraining"  # both heads were written
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert bad.returncode == 2 and "convert.py: error:" in bad.stderr
    assert "not empty" in bad.stderr.strip().splitlines()[-1]


def test_hf_token_classifier(tmp_path):
    """BertForTokenClassification: `classifier.*` on every token, id2label as the labels."""
    arrays = google_ckpt.random_google_arrays(CONFIG, with_pretraining_heads=False,
                                              num_classifier_labels=3, seed=9)
    config = hf_ckpt.hf_config(CONFIG, "BertForTokenClassification", hidden_act="gelu_new",
                               id2label={"0": "O", "1": "B-LOC", "2": "I-LOC"})
    directory = hf_ckpt.write_hf_directory(str(tmp_path / "ner"), config,
                                           hf_ckpt.to_hf_tensors(arrays))
    loaded = from_pretrained(directory)
    assert loaded.task == "token_classifier" and loaded.labels == ["O", "B-LOC", "I-LOC"]
    sequence = numpy_bert.bert_forward(arrays, CONFIG, IDS, INPUTS["input_mask"])[
        "sequence_output"]
    expected = sequence @ arrays["output_weights"].T.astype(np.float64) + arrays["output_bias"]
    np.testing.assert_allclose(loaded.model(INPUTS), expected, atol=2e-5)
    out = save_pretrained(loaded, str(tmp_path / "again"), "hf")
    again = from_pretrained(out)
    assert again.task == "token_classifier" and again.labels == loaded.labels
    _same_weights(loaded.model, again.model)


def _squad_arrays(seed):
    """A run_squad checkpoint's arrays: the encoder and cls/squad/output_{weights,bias} [2, H]."""
    arrays = google_ckpt.random_google_arrays(CONFIG, with_pretraining_heads=False, seed=seed)
    rng = np.random.RandomState(seed)
    arrays["cls/squad/output_weights"] = rng.normal(0, 0.2, (2, CONFIG["hidden_size"])).astype(
        np.float32)
    arrays["cls/squad/output_bias"] = np.array([0.3, -0.2], np.float32)
    return arrays


def _span_logits(arrays):
    sequence = numpy_bert.bert_forward(arrays, CONFIG, IDS, INPUTS["input_mask"])[
        "sequence_output"]
    logits = sequence @ arrays["cls/squad/output_weights"].T.astype(np.float64) \
        + arrays["cls/squad/output_bias"]
    return logits[..., 0], logits[..., 1]


def test_google_question_answering(tmp_path, google_dir):
    """A run_squad checkpoint (cls/squad/*) is task question_answering; Google and .keras
    round trips are exact; a pretrained checkpoint gets a new span head on request."""
    arrays = _squad_arrays(seed=10)
    directory = str(tmp_path / "squad")
    google_ckpt.write_arrays_as_google_checkpoint(os.path.join(directory, "bert_model.ckpt"),
                                                  arrays)
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(CONFIG, f)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.writelines(t + "\n" for t in TOKENS)
    loaded = from_pretrained(directory)
    assert loaded.task == "question_answering" and isinstance(loaded.model, BertSpanQA)
    assert loaded.settings == {} and loaded.max_seq_length is None  # no run_info.json
    out = loaded.model(INPUTS)
    for name, expected in zip(("start_logits", "end_logits"), _span_logits(arrays)):
        np.testing.assert_allclose(out[name], expected, atol=2e-5)
    for to_format in ("google", "keras"):
        again = from_pretrained(save_pretrained(loaded, str(tmp_path / to_format), to_format))
        assert again.task == "question_answering"
        _same_weights(loaded.model, again.model)
    fresh = from_pretrained(google_dir, task="question_answering")  # the head starts new
    assert isinstance(fresh.model, BertSpanQA)
    with pytest.raises(PretrainedError, match="question_answering model without the heads"):
        from_pretrained(directory, task="classifier")
    with open(os.path.join(directory, "run_info.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(InputError, match="cannot read run_info.json .*squad/run_info.json"):
        from_pretrained(directory)


def test_hf_question_answering_round_trip(tmp_path):
    """BertForQuestionAnswering (no pooler, qa_outputs [2, H]) loads into BertSpanQA and writes
    back as one: the same qa_outputs tensors, the same weights again."""
    arrays = _squad_arrays(seed=11)
    config = hf_ckpt.hf_config(CONFIG, "BertForQuestionAnswering", hidden_act="gelu_new")
    tensors = hf_ckpt.to_hf_tensors({k: v for k, v in arrays.items()
                                     if not k.startswith("bert/pooler")})
    directory = hf_ckpt.write_hf_directory(str(tmp_path / "qa"), config, tensors)
    loaded = from_pretrained(directory)
    assert loaded.task == "question_answering" and isinstance(loaded.model, BertSpanQA)
    out = loaded.model(INPUTS)
    for name, expected in zip(("start_logits", "end_logits"), _span_logits(arrays)):
        np.testing.assert_allclose(out[name], expected, atol=2e-5)
    out_dir = save_pretrained(loaded, str(tmp_path / "again"), "hf")
    with open(os.path.join(out_dir, "config.json")) as f:
        assert json.load(f)["architectures"] == ["BertForQuestionAnswering"]
    written = safetensors.numpy.load_file(os.path.join(out_dir, "model.safetensors"))
    for key in ("qa_outputs.weight", "qa_outputs.bias", "bert.encoder.layer.1.output.dense.weight"):
        assert np.array_equal(written[key], tensors[key]), key
    again = from_pretrained(out_dir)
    assert again.task == "question_answering"
    _same_weights(loaded.model, again.model)
