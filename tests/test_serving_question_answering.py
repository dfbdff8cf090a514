"""The question-answering SavedModel: its answers equal Google's post-processing of the same
model's logits on Google's features (bert_tf.data.squad + squad_postprocess), for contexts longer
than one window and batches of mixed lengths, v1.1 and v2.0 models."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.checkpoints import save_google_checkpoint
from bert_tf.config import BertConfig
from bert_tf.data import squad
from bert_tf.data import squad_postprocess as post
from bert_tf.serving.export import (ExportError, ExportSpec, export_saved_model,
                                    read_export_metadata)
from bert_tf.text.vocab import Vocab

WORDS = ["the", "capital", "of", "france", "is", "paris", "river", "seine", "runs", "through",
         "city", "which", "what", "where", "who", "cafe", "museum", "old", "new", "bridge", "##s",
         "##ed", "a", "an", "in", "on", ",", ".", "?", "'", "1889", "eiffel", "tower", "built"]
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
REPO = Path(__file__).resolve().parents[1]
MAX_SEQ_LENGTH, DOC_STRIDE, MAX_QUERY_LENGTH, MAX_ANSWER_LENGTH = 24, 5, 6, 4


def _texts(seed=3):
    """Questions and contexts: several windows long, one window, tiny, accents, punctuation,
    words outside the vocab, an empty context."""
    rng = random.Random(seed)
    plain = [w for w in WORDS if not w.startswith("##")]

    def sentence(n):
        words = [rng.choice(plain + ["Paris,", "Café", "Seine's", "bridges", "Zürich"])
                 for _ in range(n)]
        return " ".join(words).capitalize() + "."

    contexts = [sentence(70), sentence(12), "Paris.", sentence(40), "", sentence(25)]
    questions = ["What is the capital of France?", "Where is the old bridge?", "Who?",
                 "Which museum is in the city of Paris near the river?", "What?", "Is it new?"]
    return questions, contexts


def _model(seed):
    keras.utils.set_random_seed(seed)
    spec = ExportSpec("question_answering", BertConfig(
        vocab_size=len(TOKENS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64), Vocab(TOKENS), do_lower_case=True,
        max_seq_length=MAX_SEQ_LENGTH, doc_stride=DOC_STRIDE, max_query_length=MAX_QUERY_LENGTH,
        max_answer_length=MAX_ANSWER_LENGTH)
    model = spec.build_model()
    # A random head scores every position alike; scale it so spans are clearly ranked.
    head = model.span_head
    head.output_weights.assign(head.output_weights.numpy() * 20)
    return spec, model


def _reference(spec, model, questions, contexts, v2, threshold):
    """Google's pipeline in Python on the same model: features, logits, write_predictions."""
    data = {"data": [{"paragraphs": [{"context": c, "qas": [
        {"id": str(i), "question": q, "answers": []}]} for i, (q, c) in
        enumerate(zip(questions, contexts))]}]}
    examples = squad.read_squad_examples_from_dict(data, "test", False, v2)
    tokenizer = spec.preprocessor().tokenizer
    features = list(squad.convert_examples_to_features(
        examples, tokenizer, MAX_SEQ_LENGTH, DOC_STRIDE, MAX_QUERY_LENGTH))
    batch = {k: np.array([getattr(f, k) for f in features], np.int32)
             for k in ("input_ids", "input_mask", "segment_ids")}
    out = model(batch, training=False)
    results = [post.RawResult(f.unique_id, s, e) for f, s, e in
               zip(features, out["start_logits"].numpy(), out["end_logits"].numpy())]
    predictions, nbest, null_odds = post.predict_answers(
        examples, features, results, n_best_size=MAX_SEQ_LENGTH,
        max_answer_length=MAX_ANSWER_LENGTH, do_lower_case=True, version_2_with_negative=v2,
        null_score_diff_threshold=threshold)
    return features, predictions, nbest, null_odds


def _check(outputs, questions, contexts, predictions, nbest, null_odds, v2):
    answers = [a.decode("utf-8") for a in outputs["answer"].numpy()]
    for i, (context, answer) in enumerate(zip(contexts, answers)):
        qid = str(i)
        start, end = int(outputs["start"][i]), int(outputs["end"][i])
        if answer:
            assert context[start:end] == answer
        else:
            assert (start, end) == (-1, -1)
        # Google answers a context without tokens with its placeholder "empty"; we answer "".
        expected = "" if predictions[qid] == "empty" and not context else predictions[qid]
        assert answer == expected, (i, answer, predictions[qid])
        spans = [e for e in nbest[qid] if e["text"] and e["text"] != "empty"]
        if spans:
            best = spans[0]
            assert float(outputs["score"][i]) == pytest.approx(
                best["start_logit"] + best["end_logit"], abs=1e-5)
        if v2:
            if spans:
                assert float(outputs["null_score_diff"][i]) == pytest.approx(null_odds[qid],
                                                                              abs=1e-5)
            assert bool(outputs["is_impossible"][i]) == (expected == "")


@pytest.mark.parametrize("v2", [False, True])
def test_exported_model_equals_google_postprocessing(tmp_path, v2):
    spec, model = _model(seed=5)
    spec.version_2_with_negative = v2
    questions, contexts = _texts()
    features, predictions, nbest, null_odds = _reference(spec, model, questions, contexts, v2,
                                                         0.0)
    windows = [sum(f.example_index == i for f in features) for i in range(len(contexts))]
    assert max(windows) >= 4 and min(windows) == 1  # long and short contexts in one batch
    assert len([p for p in predictions.values() if p]) >= 4
    module = spec.serving_module(model)
    path = export_saved_model(module, spec, tmp_path, "qa")
    assert read_export_metadata(path)["version_2_with_negative"] is v2
    served = tf.saved_model.load(path).signatures["serving_default"]
    outputs = served(question=tf.constant(questions), context=tf.constant(contexts))
    _check(outputs, questions, contexts, predictions, nbest, null_odds, v2)
    # Row by row (each its own batch and padding) gives the same answers.
    for i in (0, 2, 4):
        one = served(question=tf.constant(questions[i:i + 1]),
                     context=tf.constant(contexts[i:i + 1]))
        assert one["answer"].numpy()[0] == outputs["answer"].numpy()[i]
        np.testing.assert_allclose(one["score"].numpy()[0], outputs["score"].numpy()[i],
                                   atol=1e-5)
    empty = served(question=tf.constant([], tf.string), context=tf.constant([], tf.string))
    assert empty["answer"].shape == (0,)


def test_null_score_diff_threshold_in_process():
    spec, model = _model(seed=5)
    spec.version_2_with_negative = True
    spec.null_score_diff_threshold = -1e9  # every question becomes "no answer"
    questions, contexts = _texts()
    _, predictions, nbest, null_odds = _reference(spec, model, questions, contexts, True, -1e9)
    assert not [p for p in predictions.values() if p]
    module = spec.serving_module(model)  # kept alive: tf.function holds it weakly
    outputs = module.serve(tf.constant(questions), tf.constant(contexts))
    _check(outputs, questions, contexts, predictions, nbest, null_odds, True)
    assert outputs["is_impossible"].numpy().all()


def test_bad_settings():
    spec, model = _model(seed=1)
    with pytest.raises(ExportError, match="max_query_length"):
        dataclasses.replace(spec, max_query_length=MAX_SEQ_LENGTH)
    with pytest.raises(ExportError, match="doc_stride"):
        dataclasses.replace(spec, doc_stride=0)
    spec.max_query_length = MAX_SEQ_LENGTH  # past the spec's check: the module refuses too
    with pytest.raises(ValueError, match="no room"):
        spec.serving_module(model)


def test_export_script(tmp_path):
    """export/export_saved_model.py --task=question_answering on a run_squad-style checkpoint;
    a pretrained checkpoint without the span head is refused."""
    spec, model = _model(seed=2)
    ckpt = tmp_path / "squad"
    ckpt.mkdir()
    save_google_checkpoint(model, ckpt)
    (ckpt / "vocab.txt").write_text("".join(t + "\n" for t in TOKENS), encoding="utf-8")
    command = [sys.executable, str(REPO / "export" / "export_saved_model.py"),
               "--task=question_answering", f"--init_checkpoint={ckpt}",
               f"--export_dir={tmp_path / 'serving'}", "--model_name=qa",
               f"--max_seq_length={MAX_SEQ_LENGTH}", f"--doc_stride={DOC_STRIDE}",
               f"--max_query_length={MAX_QUERY_LENGTH}", f"--max_answer_length={MAX_ANSWER_LENGTH}",
               "--version_2_with_negative"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    path = done.stdout.strip().splitlines()[-1]
    metadata = read_export_metadata(path)
    assert metadata["task"] == "question_answering" and metadata["version_2_with_negative"]
    questions, contexts = _texts()
    outputs = tf.saved_model.load(path).signatures["serving_default"](
        question=tf.constant(questions[:3]), context=tf.constant(contexts[:3]))
    # The same weights in process.
    module = dataclasses.replace(spec, version_2_with_negative=True).serving_module(model)
    expected = module.serve(tf.constant(questions[:3]), tf.constant(contexts[:3]))
    assert list(outputs["answer"].numpy()) == list(expected["answer"].numpy())
    assert sorted(outputs) == ["answer", "end", "is_impossible", "null_score_diff", "score",
                               "start"]

    encoder_only = tmp_path / "pretrained"
    encoder_only.mkdir()
    save_google_checkpoint(model.encoder, encoder_only)
    (encoder_only / "vocab.txt").write_text("".join(t + "\n" for t in TOKENS), encoding="utf-8")
    command[3] = f"--init_checkpoint={encoder_only}"
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 2 and "cls/squad/output_weights" in done.stderr


def test_mismatched_batch_sizes():
    spec, model = _model(seed=1)
    module = spec.serving_module(model)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        module.serve(tf.constant(["a?", "b?"]), tf.constant(["x"]))


def test_spec_json_round_trip():
    spec, _ = _model(seed=1)
    spec.version_2_with_negative = True
    spec.null_score_diff_threshold = -1.5
    back = ExportSpec.from_json(json.loads(json.dumps(spec.to_json())), spec.vocab)
    assert back == spec
