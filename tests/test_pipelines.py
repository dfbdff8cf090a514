"""bert_tf.pipeline: fill-mask, text classification (single and pairs), embeddings, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import google_ckpt
import hf_ckpt
import numpy_bert
import bert_tf
from bert_tf.pipelines import PIPELINES, PipelineError
from bert_tf.text import FullTokenizer

CONFIG = google_ckpt.tiny_config()
TOKENS = hf_ckpt.vocab_tokens(CONFIG["vocab_size"])
CAPITAL = "The capital of France is [MASK]."


@pytest.fixture(scope="module")
def pretraining_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("pretraining"))
    google_ckpt.write_google_checkpoint(directory, CONFIG, seed=21, vocab_tokens=TOKENS)
    return directory


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("classifier"))
    google_ckpt.write_google_checkpoint(directory, CONFIG, seed=22, vocab_tokens=TOKENS,
                                        with_pretraining_heads=False, num_classifier_labels=3)
    with open(os.path.join(directory, "labels.txt"), "w") as f:
        f.write("business\nscience\nsports\n")
    return directory


def _arrays(directory):
    return google_ckpt.read_checkpoint_arrays(os.path.join(directory, "bert_model.ckpt"))


def _ids(directory, text, text_b=None):
    tokenizer = FullTokenizer(os.path.join(directory, "vocab.txt"), do_lower_case=True)
    def pieces(t):  # [MASK] kept whole, as the pipeline does
        parts = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(p)) for p in t.split("[MASK]")]
        return sum((p + [4] for p in parts[:-1]), []) + parts[-1]
    ids = [2] + pieces(text) + [3]
    types = [0] * len(ids)
    if text_b is not None:
        b = pieces(text_b) + [3]
        ids, types = ids + b, types + [1] * len(b)
    return np.array([ids]), np.array([types])


def test_fill_mask_matches_numpy_bert(pretraining_dir):
    fill = bert_tf.pipeline("fill-mask", pretraining_dir, top_k=4)
    result = fill(CAPITAL)
    ids, types = _ids(pretraining_dir, CAPITAL)
    arrays = _arrays(pretraining_dir)
    out = numpy_bert.bert_forward(arrays, CONFIG, ids, None, types)
    position = int(np.flatnonzero(ids[0] == 4)[0])
    probs = np.exp(numpy_bert.masked_lm_log_probs(arrays, CONFIG, out["sequence_output"],
                                                  [[position]])[0, 0])
    best = np.argsort(-probs)[:4]
    assert [r["token"] for r in result] == best.tolist()
    np.testing.assert_allclose([r["score"] for r in result], probs[best], atol=1e-5)
    assert [r["token_str"] for r in result] == [TOKENS[i] for i in best]
    first = TOKENS[best[0]]
    expected = ("The capital of France is" + first[2:] + ".") if first.startswith("##") else \
        f"The capital of France is {first}."
    assert result[0]["sequence"] == expected
    two = fill(["[MASK] cat sat on the [MASK].", CAPITAL])
    assert len(two) == 2 and len(two[0]) == 2 and len(two[0][1]) == 4 and len(two[1]) == 4
    assert [r["token"] for r in two[1]] == [r["token"] for r in result]
    np.testing.assert_allclose([r["score"] for r in two[1]], [r["score"] for r in result],
                               atol=1e-6)
    with pytest.raises(PipelineError, match="no \\[MASK\\]"):
        fill("no mask here")


def test_fill_mask_with_any_masked_lm_checkpoint(tmp_path, pretraining_dir):
    """A HF BertForMaskedLM directory (no next-sentence head, no pooler) fills masks too."""
    arrays = {k: v for k, v in _arrays(pretraining_dir).items()
              if not k.startswith(("bert/pooler", "cls/seq_relationship"))}
    config = hf_ckpt.hf_config(CONFIG, "BertForMaskedLM", hidden_act="gelu_new")
    directory = hf_ckpt.write_hf_directory(str(tmp_path / "mlm"), config,
                                           hf_ckpt.to_hf_tensors(arrays))
    hf = bert_tf.pipeline("fill-mask", directory, top_k=4)(CAPITAL)
    google = bert_tf.pipeline("fill-mask", pretraining_dir, top_k=4)(CAPITAL)
    assert [r["token"] for r in hf] == [r["token"] for r in google]
    np.testing.assert_allclose([r["score"] for r in hf], [r["score"] for r in google], atol=1e-6)


def test_text_classification_single_and_pairs(classifier_dir):
    classify = bert_tf.pipeline("text-classification", classifier_dir, batch_size=2)
    arrays = _arrays(classifier_dir)

    def reference(text, text_b=None):
        ids, types = _ids(classifier_dir, text, text_b)
        pooled = numpy_bert.bert_forward(arrays, CONFIG, ids, None, types)["pooled_output"]
        return numpy_bert.softmax(numpy_bert.classifier_logits(arrays, pooled))[0]

    texts = ["the dog runs fast", "a good movie", "the cat sat on the mat ."]
    results = classify(texts)
    for text, result in zip(texts, results):
        probs = reference(text)
        assert result["label"] == ["business", "science", "sports"][int(np.argmax(probs))]
        assert result["score"] == pytest.approx(float(probs.max()), abs=1e-5)
    pair = classify(("the dog runs", "a cat sat"))
    probs = reference("the dog runs", "a cat sat")
    assert pair["score"] == pytest.approx(float(probs.max()), abs=1e-5)
    assert classify([{"text": "the dog runs", "text_pair": "a cat sat"}])[0]["score"] == \
        pytest.approx(pair["score"], abs=1e-6)
    every = bert_tf.pipeline("sentiment-analysis", classifier_dir, top_k=None)("a good movie")
    assert sorted(r["label"] for r in every) == ["business", "science", "sports"]
    assert sum(r["score"] for r in every) == pytest.approx(1.0, abs=1e-5)
    mixed = classify(["the dog runs fast", ("the dog runs", "a cat sat"), "a good movie"])
    for got, want in zip(mixed, [results[0], pair, results[1]]):
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)


def test_embedding_pipeline_and_registry(tmp_path):
    config = google_ckpt.tiny_config(hidden_act="gelu_exact")
    arrays = google_ckpt.random_google_arrays(config, with_pretraining_heads=False, seed=4)
    st = hf_ckpt.write_sentence_transformer(str(tmp_path / "st"), config, arrays)
    embed = bert_tf.pipeline("sentence-embedding", st)
    vectors = embed(["a good movie", "the dog runs fast"])
    assert len(vectors) == 2 and len(vectors[0]) == 32
    np.testing.assert_allclose(vectors, embed.pretrained.model(["a good movie",
                                                                "the dog runs fast"]), atol=1e-6)
    assert embed("a good movie") == pytest.approx(vectors[0])
    assert {"fill-mask", "text-classification", "embedding"} <= set(PIPELINES)
    with pytest.raises(PipelineError, match="unknown pipeline task"):
        bert_tf.pipeline("translation", st)


def test_predict_command(pretraining_dir, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("A [MASK] sat on the mat.\n\nThe dog [MASK] fast. ||| the cat sat\n")
    cmd = [sys.executable, "-m", "bert_tf.cli.predict", f"--model={pretraining_dir}",
           "--task=fill-mask", f"--text={CAPITAL}", f"--input_file={lines}", "--top_k=3"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in rows] == [CAPITAL, "A [MASK] sat on the mat.",
                                         "The dog [MASK] fast."]
    assert rows[2]["text_pair"] == "the cat sat" and len(rows[0]["result"]) == 3
    direct = bert_tf.pipeline("fill-mask", pretraining_dir, top_k=3)(CAPITAL)
    assert [r["token"] for r in rows[0]["result"]] == [r["token"] for r in direct]
    bad = subprocess.run(cmd[:5] + ["--text=no mask"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert bad.returncode == 2 and "has no [MASK]" in bad.stderr.strip().splitlines()[-1]
