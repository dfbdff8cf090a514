"""SQuAD evaluation: exact match and F1 by the official SQuAD rules, v2.0 splits and thresholds.

Written from the published definition of the metrics (the official v2.0 evaluation script is the
test oracle in tests/test_data_squad_metrics.py; its numbers are reproduced exactly):

* an answer is normalised by lower-casing, deleting ASCII punctuation, replacing the articles
  "a", "an", "the" (whole words) by a space and collapsing white space;
* exact match is 1 when the normalised prediction equals a normalised gold answer; F1 is the
  harmonic mean of precision and recall over the bags of normalised words; both take the best
  gold answer. Gold answers that normalise to nothing are dropped, and a question without any
  left (a v2.0 "no answer" question) has the single gold answer "" (so only an empty prediction
  scores);
* with no-answer probabilities, a question whose probability exceeds the threshold counts as
  predicted "no answer"; `best_exact` / `best_f1` are the scores at the best threshold;
* scores are percentages over the questions that have a prediction.
"""
from __future__ import annotations

import collections
import re
import string
from typing import Iterable, Mapping, Sequence

from bert_tf.errors import InputError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no ASCII punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(gold: str, prediction: str) -> int:
    """1 if the two answers are equal after normalisation, else 0."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold: str, prediction: str) -> float:
    """Word-overlap F1 of two answers after normalisation (1/0 when either is empty)."""
    gold_words = normalize_answer(gold).split()
    pred_words = normalize_answer(prediction).split()
    if not gold_words or not pred_words:
        return float(gold_words == pred_words)
    common = sum((collections.Counter(gold_words) & collections.Counter(pred_words)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_words)
    recall = common / len(gold_words)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Iterable[str]) -> list[str]:
    """The gold answers a prediction is scored against ([""] for a no-answer question)."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def _questions(dataset: Mapping | Sequence) -> dict[str, list[str]]:
    """{question id: gold answer texts} from a SQuAD JSON object (or its `data` list)."""
    articles = dataset["data"] if isinstance(dataset, Mapping) else dataset
    out = {}
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                out[str(qa["id"])] = [a["text"] for a in qa.get("answers", [])]
    return out


def _percent(scores: Mapping[str, float], ids: Iterable[str]) -> tuple[float, int]:
    ids = list(ids)
    return 100.0 * sum(scores[i] for i in ids) / len(ids), len(ids)


def _best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                    na_probs: Mapping[str, float], has_answer: Mapping[str, bool]
                    ) -> tuple[float, float]:
    """The no-answer threshold maximising the total score, sweeping the probabilities upwards:
    at first every question is answered "no answer" (right for the no-answer questions); each
    question passed then contributes its own score (has an answer) or loses its point (no answer
    but a non-empty prediction)."""
    current = best = sum(1 for i in scores if not has_answer[i])
    best_threshold = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, best_threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), best_threshold


def evaluate(dataset: Mapping | Sequence, predictions: Mapping[str, str],
             na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0
             ) -> dict[str, float]:
    """SQuAD v1.1/v2.0 metrics of `predictions` ({question id: answer text}).

    Args:
      dataset: the parsed SQuAD JSON (or its `data` list) with the gold answers.
      predictions: one answer per question ("" = no answer); questions without a prediction are
        left out of every score.
      na_probs: optional {question id: probability of no answer} (e.g. null_odds.json); adds the
        best thresholds. Missing ids count as 0.
      na_prob_thresh: above this probability a question counts as answered "no answer".

    Returns:
      `exact`, `f1`, `total`; `HasAns_*`/`NoAns_*` when the data has such questions; with
      `na_probs`, `best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh`. The names and
      values are those of the official v2.0 evaluation script.
    """
    golds = _questions(dataset)
    has_answer = {qid: bool(answers) for qid, answers in golds.items()}
    exact, f1 = {}, {}
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        candidates = gold_answers(answers)
        exact[qid] = max(exact_match(g, predictions[qid]) for g in candidates)
        f1[qid] = max(f1_score(g, predictions[qid]) for g in candidates)
    if not exact:
        raise InputError("no prediction matches a question id of the dataset")
    probs = {qid: 0.0 for qid in predictions} if na_probs is None else na_probs

    def thresholded(scores):
        return {qid: float(not has_answer[qid]) if probs.get(qid, 0.0) > na_prob_thresh else s
                for qid, s in scores.items()}

    exact_t, f1_t = thresholded(exact), thresholded(f1)
    result = collections.OrderedDict()
    result["exact"], result["total"] = _percent(exact_t, exact_t)
    result["f1"], _ = _percent(f1_t, f1_t)
    result.move_to_end("total")
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has == wanted and qid in exact_t]
        if ids:
            result[f"{prefix}_exact"], total = _percent(exact_t, ids)
            result[f"{prefix}_f1"], _ = _percent(f1_t, ids)
            result[f"{prefix}_total"] = total
    if na_probs is not None:
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(
            predictions, exact, probs, has_answer)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(
            predictions, f1, probs, has_answer)
    return dict(result)
