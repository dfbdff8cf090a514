"""SQuAD predictions from start/end logits: Google's n-best, get_final_text and v2 null rule.

`predict_answers` follows Google's run_squad write_predictions: the `n_best_size` best start and
end positions of every window form candidate spans (inside the context, start in its max-context
window, end >= start, at most `max_answer_length` pieces); candidates are ranked by
start_logit + end_logit across the windows of a question; each becomes text by projecting its
WordPiece text onto the original words (`get_final_text`); duplicates are dropped. For SQuAD
v2.0 the "null" answer ([CLS], the window with the smallest null score) competes too, and the
question is answered "" when `null score - best non-null score > null_score_diff_threshold`.
Outputs: predictions.json, nbest_predictions.json and null_odds.json in Google's layout.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from bert_tf.data.squad import SquadExample, SquadFeature
from bert_tf.text.python_tokenizer import basic_tokenize


@dataclasses.dataclass(frozen=True)
class RawResult:
    """The model's logits for one feature (window): float arrays of length max_seq_length."""

    unique_id: int
    start_logits: Sequence[float]
    end_logits: Sequence[float]


@dataclasses.dataclass(frozen=True)
class _Candidate:
    feature_index: int
    start_index: int
    end_index: int
    start_logit: float
    end_logit: float


def best_indexes(logits: Sequence[float], n_best_size: int) -> list[int]:
    """Positions of the `n_best_size` largest logits, largest first (earlier first on ties)."""
    order = sorted(range(len(logits)), key=lambda i: logits[i], reverse=True)
    return order[:n_best_size]


def softmax(scores: Sequence[float]) -> list[float]:
    """Softmax in float64 Python floats (Google's _compute_softmax)."""
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _without_spaces(text: str) -> tuple[str, dict[int, int]]:
    """`text` without spaces and, for each kept character, its index in `text`."""
    chars, positions = [], {}
    for i, c in enumerate(text):
        if c != " ":
            positions[len(chars)] = i
            chars.append(c)
    return "".join(chars), positions


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool) -> str:
    """Projects a (normalised, de-WordPieced) prediction back onto the original words.

    `orig_text` is the span's original words joined by spaces; the prediction is located in its
    basic tokenization, and the characters are mapped across by aligning both texts without
    spaces. When the alignment is impossible (e.g. lower-casing changed the length), the whole
    `orig_text` is returned, as in Google's code.
    """
    tok_text = " ".join(basic_tokenize(orig_text, do_lower_case))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = _without_spaces(orig_text)
    tok_ns, tok_map = _without_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_to_ns = {s: ns for ns, s in tok_map.items()}
    if start not in tok_to_ns or end not in tok_to_ns:
        return orig_text
    return orig_text[orig_map[tok_to_ns[start]]:orig_map[tok_to_ns[end]] + 1]


def _candidates(features: Sequence[SquadFeature], results: Mapping[int, RawResult],
                n_best_size: int, max_answer_length: int) -> list[_Candidate]:
    out = []
    for feature_index, feature in enumerate(features):
        result = results[feature.unique_id]
        ends = best_indexes(result.end_logits, n_best_size)
        for start in best_indexes(result.start_logits, n_best_size):
            if start not in feature.token_to_orig_map or not feature.token_is_max_context[start]:
                continue
            for end in ends:
                if end not in feature.token_to_orig_map or end < start:
                    continue
                if end - start + 1 > max_answer_length:
                    continue
                out.append(_Candidate(feature_index, start, end, float(result.start_logits[start]),
                                      float(result.end_logits[end])))
    return out


def _null_candidate(features, results) -> _Candidate:
    """[CLS] of the window with the smallest null score (the first on ties)."""
    best = None
    for feature_index, feature in enumerate(features):
        result = results[feature.unique_id]
        score = float(result.start_logits[0]) + float(result.end_logits[0])
        if best is None or score < best[0]:
            best = (score, _Candidate(feature_index, 0, 0, float(result.start_logits[0]),
                                      float(result.end_logits[0])))
    return best[1]


def span_text(example: SquadExample, feature: SquadFeature, start: int, end: int,
              do_lower_case: bool) -> str:
    """The original text of the pieces [start, end] of a feature (Google's projection)."""
    pieces = " ".join(feature.tokens[start:end + 1]).replace(" ##", "").replace("##", "")
    pred_text = " ".join(pieces.strip().split())
    words = example.doc_tokens[feature.token_to_orig_map[start]:feature.token_to_orig_map[end] + 1]
    return get_final_text(pred_text, " ".join(words), do_lower_case)


def nbest_for_example(example: SquadExample, features: Sequence[SquadFeature],
                      results: Mapping[int, RawResult], n_best_size: int,
                      max_answer_length: int, do_lower_case: bool,
                      version_2_with_negative: bool) -> tuple[list[dict[str, Any]], float | None]:
    """The n-best list of one question (dicts text/probability/start_logit/end_logit, best
    first) and, for v2, its null score (smallest [CLS] score over the windows)."""
    candidates = _candidates(features, results, n_best_size, max_answer_length)
    null = _null_candidate(features, results) if version_2_with_negative else None
    if null is not None:
        candidates.append(null)
    candidates.sort(key=lambda c: c.start_logit + c.end_logit, reverse=True)
    nbest, seen = [], set()
    for c in candidates:
        if len(nbest) >= n_best_size:
            break
        text = ""
        if c.start_index > 0:
            text = span_text(example, features[c.feature_index], c.start_index, c.end_index,
                             do_lower_case)
        if text in seen:
            continue
        seen.add(text)
        nbest.append((text, c.start_logit, c.end_logit))
    if null is not None and "" not in seen:
        nbest.append(("", null.start_logit, null.end_logit))
    if not nbest:  # no valid span at all (Google's "nonce" prediction)
        nbest.append(("empty", 0.0, 0.0))
    probabilities = softmax([s + e for _, s, e in nbest])
    entries = [{"text": t, "probability": p, "start_logit": s, "end_logit": e}
               for (t, s, e), p in zip(nbest, probabilities)]
    return entries, (null.start_logit + null.end_logit if null is not None else None)


def predict_answers(examples: Sequence[SquadExample], features: Iterable[SquadFeature],
                    results: Iterable[RawResult], n_best_size: int = 20,
                    max_answer_length: int = 30, do_lower_case: bool = True,
                    version_2_with_negative: bool = False, null_score_diff_threshold: float = 0.0
                    ) -> tuple[dict[str, str], dict[str, list], dict[str, float]]:
    """Answers for all examples (Google's write_predictions without the writing).

    Args:
      examples: the examples the features were made from.
      features: their features (any order); `results` holds one RawResult per feature.
      n_best_size: candidates per window for starts and for ends, and the n-best list length.
      max_answer_length: longest answer in WordPiece tokens.
      do_lower_case: the tokenizer's casing (for get_final_text).
      version_2_with_negative: let the null answer compete (SQuAD v2.0).
      null_score_diff_threshold: v2: answer "" when null score - best span score exceeds it.

    Returns:
      (predictions {id: text}, nbest {id: [entries]}, null_odds {id: score diff}; empty for v1).
    """
    by_example = collections.defaultdict(list)
    for feature in features:
        by_example[feature.example_index].append(feature)
    by_id = {r.unique_id: r for r in results}
    predictions, all_nbest, null_odds = {}, {}, {}
    for index, example in enumerate(examples):
        feats = by_example[index]
        nbest, null_score = nbest_for_example(example, feats, by_id, n_best_size,
                                              max_answer_length, do_lower_case,
                                              version_2_with_negative)
        all_nbest[example.qas_id] = nbest
        if not version_2_with_negative:
            predictions[example.qas_id] = nbest[0]["text"]
            continue
        best = next((e for e in nbest if e["text"]), None)
        if best is None:  # only the null answer survived (Google's code would crash here)
            null_odds[example.qas_id] = 0.0
            predictions[example.qas_id] = ""
            continue
        diff = null_score - best["start_logit"] - best["end_logit"]
        null_odds[example.qas_id] = diff
        predictions[example.qas_id] = "" if diff > null_score_diff_threshold else best["text"]
    return predictions, all_nbest, null_odds


def _plain(obj):
    """JSON-ready copy (NumPy floats become Python floats)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Google's layout (indent 4, trailing newline), written to a temporary name then renamed."""
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(_plain(obj), indent=4) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_predictions(output_dir: str | os.PathLike, predictions: Mapping[str, str],
                      nbest: Mapping[str, list], null_odds: Mapping[str, float] | None = None
                      ) -> list[str]:
    """Writes predictions.json, nbest_predictions.json and (v2) null_odds.json; returns paths."""
    paths = [os.path.join(output_dir, "predictions.json"),
             os.path.join(output_dir, "nbest_predictions.json")]
    write_json(predictions, paths[0])
    write_json(nbest, paths[1])
    if null_odds:
        paths.append(os.path.join(output_dir, "null_odds.json"))
        write_json(null_odds, paths[2])
    return paths
