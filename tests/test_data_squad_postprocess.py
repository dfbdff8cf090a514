"""bert_tf.data.squad_postprocess: Google's n-best, get_final_text, v2 null rule, output files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from shared_data import SHARED_DATA

from bert_tf.data import squad, squad_metrics
from bert_tf.data import squad_postprocess as post
from bert_tf.text.python_tokenizer import basic_tokenize
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import Vocab

DEV_V2 = SHARED_DATA / "squad" / "dev-v2.0.rebuilt.json"


def test_get_final_text():
    # Google's docstring example: the prediction drops the possessive the original keeps.
    assert post.get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"
    assert post.get_final_text("1895", "(1895-1943).", True) == "1895"
    assert post.get_final_text("zzz", "Paris,", True) == "Paris,"  # not found: whole span
    # Lower-casing changes the length (the Kelvin sign becomes "k"): whole span.
    assert post.get_final_text("k", "\u212a", True) == "\u212a"


def test_best_indexes_and_softmax():
    assert post.best_indexes([0.1, 3.0, 3.0, -1.0], 3) == [1, 2, 0]
    np.testing.assert_allclose(post.softmax([1.0, 1.0]), [0.5, 0.5])
    assert post.softmax([]) == []


def _tokenizer():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "what", "?", "paris", "is",
             "in", "france", "the", "capital", "of", "##s", "a", "city", ",", "."]
    return BertTokenizer(Vocab(words), do_lower_case=True)


def _features(context, questions, max_seq_length=12, doc_stride=3, v2=False):
    data = {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": f"q{i}", "question": q, "answers": []} for i, q in enumerate(questions)]}]}]}
    examples = squad.read_squad_examples_from_dict(data, "test", False, v2)
    features = list(squad.convert_examples_to_features(examples, _tokenizer(), max_seq_length,
                                                       doc_stride, 4))
    return examples, features


def _results(features, spans, null=None, seed=0):
    """Small noise logits; `spans` {unique_id: (start, end)} get 5 + 5; `null` {unique_id: v}
    sets both [CLS] logits."""
    rng = np.random.default_rng(seed)
    out = []
    for f in features:
        start = rng.normal(0, 0.1, len(f.input_ids))
        end = rng.normal(0, 0.1, len(f.input_ids))
        if f.unique_id in spans:
            s, e = spans[f.unique_id]
            start[s] += 5
            end[e] += 5
        if null and f.unique_id in null:
            start[0] = end[0] = null[f.unique_id]
        out.append(post.RawResult(f.unique_id, start.tolist(), end.tolist()))
    return out


def test_answer_from_a_later_window_and_original_text():
    context = "Paris is the capital of France, a city. Paris is in France."
    examples, features = _features(context, ["what is paris?"])
    assert len(features) > 2
    # "France," in the second-to-last window: find the pieces of "france" in max context.
    target = None
    for f in features:
        for pos, word in f.token_to_orig_map.items():
            if examples[0].doc_tokens[word] == "France," and f.token_is_max_context[pos] \
                    and f.tokens[pos] == "france":
                target = (f.unique_id, pos)
    assert target is not None
    uid, pos = target
    predictions, nbest, null_odds = post.predict_answers(
        examples, features, _results(features, {uid: (pos, pos)}), n_best_size=5)
    assert predictions == {"q0": "France"}  # the comma is dropped by get_final_text
    assert len(nbest["q0"]) == 5 and nbest["q0"][0]["text"] == "France"
    assert sum(e["probability"] for e in nbest["q0"]) == pytest.approx(1.0)
    assert len({e["text"] for e in nbest["q0"]}) == 5  # no duplicate texts
    assert null_odds == {}


def test_v2_null_rule():
    context = "Paris is the capital of France."
    examples, features = _features(context, ["who?"], max_seq_length=16, v2=True)
    assert len(features) == 1
    f = features[0]
    pos = next(p for p, t in enumerate(f.tokens) if t == "paris")
    results = _results(features, {f.unique_id: (pos, pos)}, null={f.unique_id: 4.0})
    for threshold, expected in ((-100.0, ""), (100.0, "Paris")):
        predictions, nbest, null_odds = post.predict_answers(
            examples, features, results, version_2_with_negative=True,
            null_score_diff_threshold=threshold)
        assert predictions == {"q0": expected}
        best = nbest["q0"][0]
        assert null_odds["q0"] == pytest.approx(8.0 - best["start_logit"] - best["end_logit"])
        assert "" in [e["text"] for e in nbest["q0"]]


def test_write_predictions_layout(tmp_path):
    paths = post.write_predictions(tmp_path, {"a": "x"}, {"a": [{"text": "x",
                                   "probability": np.float32(1.0), "start_logit": 1.0,
                                   "end_logit": 2.0}]}, {"a": np.float64(-1.5)})
    assert [p.split("/")[-1] for p in paths] == ["predictions.json", "nbest_predictions.json",
                                                 "null_odds.json"]
    assert (tmp_path / "predictions.json").read_text() == '{\n    "a": "x"\n}\n'
    assert json.loads((tmp_path / "null_odds.json").read_text()) == {"a": -1.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.split("/")[-1] for p in paths)


@pytest.mark.skipif(not DEV_V2.exists(), reason="../shared/data/squad not available")
def test_oracle_logits_give_gold_answers_on_real_questions():
    """Logits that point at the gold span (training positions) give back the gold answer text
    on real v2.0 questions, across windows; impossible questions get ""."""
    data = json.loads(DEV_V2.read_text(encoding="utf-8"))
    data["data"] = data["data"][:1]
    paragraphs = data["data"][0]["paragraphs"][:6]
    for p in paragraphs:
        for qa in p["qas"]:
            qa["answers"] = qa["answers"][:1]
    data["data"][0]["paragraphs"] = paragraphs
    examples = squad.read_squad_examples_from_dict(data, "dev", True, True)
    vocab = sorted({t for e in examples for w in e.doc_tokens + e.question_text.split()
                    for t in basic_tokenize(w, do_lower_case=True)})
    tokenizer = BertTokenizer(Vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + vocab), True)
    features = list(squad.convert_examples_to_features(examples, tokenizer, 48, 16, 12, True))
    spans = {f.unique_id: (f.start_position, f.end_position) for f in features
             if f.start_position > 0}
    null = {f.unique_id: (3.0 if f.is_impossible else -3.0) for f in features}
    predictions, _, null_odds = post.predict_answers(
        examples, features, _results(features, spans, null), version_2_with_negative=True)
    result = squad_metrics.evaluate(data, predictions, null_odds)
    assert result["total"] == len(examples) > 30
    assert result["NoAns_exact"] == 100.0
    assert result["HasAns_total"] >= 15
    assert result["HasAns_exact"] == 100.0
