"""bert_tf.data.squad_metrics against the official SQuAD v2.0 evaluation script (run as a
subprocess on the real dev set when ../shared is present) and on hand-made cases."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from shared_data import SHARED_DATA

from bert_tf.data import squad_metrics as m

DEV_V2 = SHARED_DATA / "squad" / "dev-v2.0.rebuilt.json"
OFFICIAL = SHARED_DATA / "squad" / "evaluate-v2.0.py"


def test_normalisation_and_scores():
    assert m.normalize_answer("The  Cat, an  apple!") == "cat apple"
    assert m.normalize_answer("theater") == "theater"  # whole words only
    assert m.exact_match("Denver Broncos", "the denver broncos.") == 1
    assert m.f1_score("Denver Broncos", "Broncos") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert m.f1_score("x b b", "b b c") == pytest.approx(2 / 3)
    assert m.f1_score("a b b", "b b c") == pytest.approx(0.8)  # "a" is an article
    assert m.f1_score("", "") == 1.0 and m.f1_score("x", "") == 0.0 and m.f1_score("", "y") == 0.0
    assert m.gold_answers(["the", "Paris"]) == ["Paris"]
    assert m.gold_answers([]) == [""]


def test_hand_made_v2_thresholds():
    data = {"data": [{"paragraphs": [{"context": "", "qas": [
        {"id": "a", "answers": [{"text": "Paris"}]},
        {"id": "b", "answers": [{"text": "two cats"}]},
        {"id": "c", "answers": []}]}]}]}
    predictions = {"a": "Paris", "b": "cats", "c": "x"}
    result = m.evaluate(data, predictions, {"a": 0.1, "b": 0.5, "c": 0.9}, na_prob_thresh=0.8)
    # c is thresholded to "no answer" (right); a exact, b f1 2/3.
    assert result["exact"] == pytest.approx(200 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)
    assert result["HasAns_total"] == 2 and result["NoAns_total"] == 1
    # Sweeping up: all "no answer" scores 1 (c); passing a (0.1) adds 1, b (0.5) adds 0 exact /
    # 2/3 F1, c (0.9) loses its point for answering "x".
    assert result["best_exact_thresh"] == 0.1 and result["best_exact"] == pytest.approx(200 / 3)
    assert result["best_f1_thresh"] == 0.5
    assert result["best_f1"] == pytest.approx(100 * (2 + 2 / 3) / 3)


def _predictions(dataset, seed=7):
    """Mixed predictions for every question: exact gold, gold with noise, a wrong span, empty,
    plus no-answer probabilities."""
    rng = random.Random(seed)
    predictions, na_probs = {}, {}
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            words = paragraph["context"].split()
            for qa in paragraph["qas"]:
                gold = [a["text"] for a in qa["answers"]]
                kind = rng.randrange(6)
                start = rng.randrange(len(words))
                wrong = " ".join(words[start:start + rng.randint(1, 4)])
                if kind == 0 and gold:
                    pred = rng.choice(gold)
                elif kind == 1 and gold:
                    pred = "The " + gold[0].upper() + "!"
                elif kind == 2 and gold:
                    pred = gold[0] + " " + wrong
                elif kind == 3:
                    pred = ""
                else:
                    pred = wrong
                predictions[qa["id"]] = pred
                na_probs[qa["id"]] = round(rng.random(), 3)
    return predictions, na_probs


@pytest.mark.skipif(not (DEV_V2.exists() and OFFICIAL.exists()),
                    reason="../shared/data/squad not available")
@pytest.mark.parametrize("with_probs", [False, True])
def test_equals_official_script_on_dev_v2(tmp_path, with_probs):
    dataset = json.loads(DEV_V2.read_text(encoding="utf-8"))
    predictions, na_probs = _predictions(dataset)
    pred_file = tmp_path / "predictions.json"
    pred_file.write_text(json.dumps(predictions), encoding="utf-8")
    command = [sys.executable, str(OFFICIAL), str(DEV_V2), str(pred_file),
               "-o", str(tmp_path / "eval.json")]
    if with_probs:
        (tmp_path / "null_odds.json").write_text(json.dumps(na_probs), encoding="utf-8")
        command += ["-n", str(tmp_path / "null_odds.json"), "-t", "0.6"]
    subprocess.run(command, check=True, capture_output=True)
    official = json.loads((tmp_path / "eval.json").read_text())
    ours = m.evaluate(dataset, predictions, na_probs if with_probs else None,
                      0.6 if with_probs else 1.0)
    assert list(ours) == list(official)
    for key, value in official.items():
        assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert 5 < official["exact"] < 95  # a real mix of right and wrong answers
