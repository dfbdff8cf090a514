"""GLUE metrics in pure NumPy (no sklearn / scipy dependency).

Conventions (never NaN, never a crash on degenerate input):

* empty input, or predictions and labels of different lengths → ``ValueError``;
* ``f1_score``: binary F1 of the positive class (``pos_label=1``, as sklearn's default);
  precision/recall/F1 with a zero denominator are 0.0 (sklearn's ``zero_division=0``), so no
  positive predictions and no positive labels gives F1 = 0.0;
* ``matthews_corrcoef``: sklearn's multiclass formula; 0.0 when the denominator is zero (only
  one class in the labels or constant predictions);
* ``pearson`` / ``spearman``: 0.0 when either vector is constant (the correlation is undefined);
  Spearman ranks ties with their average rank (scipy's ``rankdata(method="average")``).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

__all__ = ["accuracy", "f1_score", "matthews_corrcoef", "pearson", "spearman", "rankdata",
           "glue_metrics"]


def _pair(predictions, labels):
    p = np.asarray(predictions)
    y = np.asarray(labels)
    if p.ndim == 0 or y.ndim == 0:
        raise ValueError("predictions and labels must be 1-D sequences")
    p, y = p.reshape(-1), y.reshape(-1)
    if p.size == 0 or y.size == 0:
        raise ValueError("empty predictions or labels")
    if p.shape != y.shape:
        raise ValueError(f"predictions ({p.size}) and labels ({y.size}) differ in length")
    return p, y


def accuracy(predictions, labels) -> float:
    p, y = _pair(predictions, labels)
    return float(np.mean(p == y))


def f1_score(predictions, labels, pos_label=1) -> float:
    """Binary F1 of ``pos_label``; 0.0 where the denominator is zero."""
    p, y = _pair(predictions, labels)
    pp, yp = p == pos_label, y == pos_label
    tp = int(np.sum(pp & yp))
    fp = int(np.sum(pp & ~yp))
    fn = int(np.sum(~pp & yp))
    denom = 2 * tp + fp + fn
    return 0.0 if denom == 0 else float(2 * tp / denom)


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation (multiclass form, as sklearn); 0.0 when undefined."""
    p, y = _pair(predictions, labels)
    classes, inv = np.unique(np.concatenate([y, p]), return_inverse=True)
    yi, pi = inv[:y.size], inv[y.size:]
    k = classes.size
    t = np.bincount(yi, minlength=k).astype(np.float64)   # true count per class
    q = np.bincount(pi, minlength=k).astype(np.float64)   # predicted count per class
    c = float(np.sum(yi == pi))
    s = float(y.size)
    cov_yp = c * s - float(t @ q)
    cov_yy = s * s - float(t @ t)
    cov_pp = s * s - float(q @ q)
    denom = cov_yy * cov_pp
    if denom <= 0.0:
        return 0.0
    return float(cov_yp / np.sqrt(denom))


def _float_pair(x, y):
    a, b = _pair(x, y)
    return a.astype(np.float64), b.astype(np.float64)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    sa, sb = float(np.sqrt(da @ da)), float(np.sqrt(db @ db))
    if sa == 0.0 or sb == 0.0 or not np.isfinite(sa * sb):
        return 0.0
    r = float((da @ db) / (sa * sb))
    return float(np.clip(r, -1.0, 1.0))


def pearson(predictions, labels) -> float:
    """Pearson correlation; 0.0 when either vector is constant."""
    return _corr(*_float_pair(predictions, labels))


def rankdata(x) -> np.ndarray:
    """1-based ranks, ties given their average rank (scipy's ``method="average"``)."""
    x = np.asarray(x).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # Start of each run of equal values in the sorted array.
    new = np.concatenate([[True], xs[1:] != xs[:-1]])
    run_id = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.concatenate([starts[1:], [x.size]])
    avg = (starts + ends + 1) / 2.0   # mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = avg[run_id]
    return ranks


def spearman(predictions, labels) -> float:
    """Spearman rank correlation (average ranks for ties); 0.0 when either vector is constant."""
    a, b = _float_pair(predictions, labels)
    return _corr(rankdata(a), rankdata(b))


_CLASSIFICATION = {"sst-2", "mnli", "mnli-mm", "qnli", "rte", "wnli", "xnli"}


def glue_metrics(task_name: str, predictions, labels) -> Dict[str, float]:
    """The metrics GLUE reports for ``task_name``.

    * cola: ``mcc``, ``accuracy``
    * mrpc, qqp: ``accuracy``, ``f1``, ``acc_and_f1`` (their mean)
    * sts-b: ``pearson``, ``spearmanr``, ``corr`` (their mean)
    * sst-2, mnli, mnli-mm, qnli, rte, wnli, xnli: ``accuracy``

    Classification predictions may be label ids or 2-D logits/probabilities (argmax over the
    last axis). STS-B predictions of shape ``[n, 1]`` are flattened.
    """
    from bert_tf.data.glue import normalize_task_name  # local: keeps metrics import-light
    name = normalize_task_name(task_name)
    preds = np.asarray(predictions)
    if name == "sts-b":
        p, y = _float_pair(preds, labels)
        r, rho = pearson(p, y), spearman(p, y)
        return {"pearson": r, "spearmanr": rho, "corr": (r + rho) / 2.0}
    if name not in _CLASSIFICATION | {"cola", "mrpc", "qqp"}:
        raise ValueError(f"unknown task name {task_name!r} for glue_metrics")
    if preds.ndim == 2 and preds.shape[-1] > 1:
        preds = np.argmax(preds, axis=-1)
    if name == "cola":
        return {"mcc": matthews_corrcoef(preds, labels), "accuracy": accuracy(preds, labels)}
    if name in ("mrpc", "qqp"):
        acc, f1 = accuracy(preds, labels), f1_score(preds, labels)
        return {"accuracy": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2.0}
    return {"accuracy": accuracy(preds, labels)}


def multi_label_metrics(predicted, labels) -> dict:
    """Multi-label classification metrics from 0/1 matrices.

    Args:
      predicted: [N, C] 0/1 (or bool): the labels predicted for each example.
      labels: [N, C] 0/1 (or bool): the true labels.

    Returns:
      {"micro_f1": F1 of all (example, label) decisions pooled, "macro_f1": the mean over the
      C labels of each label's F1, "exact_match": fraction of examples whose predicted label set
      is exactly the true one}. A label never true nor predicted has F1 0 (scikit-learn's
      `zero_division` default), as does micro F1 with no positives at all.
    """
    predicted = np.asarray(predicted).astype(bool)
    labels = np.asarray(labels).astype(bool)
    if predicted.shape != labels.shape or predicted.ndim != 2:
        raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} must be the "
                         f"same [N, C] shape")
    tp = (predicted & labels).sum(0).astype(np.float64)
    fp = (predicted & ~labels).sum(0).astype(np.float64)
    fn = (~predicted & labels).sum(0).astype(np.float64)

    def f1(tp, fp, fn):
        denominator = 2 * tp + fp + fn
        return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)

    return {"micro_f1": float(f1(tp.sum(), fp.sum(), fn.sum())),
            "macro_f1": float(np.mean(f1(tp, fp, fn))) if labels.shape[1] else 0.0,
            "exact_match": float(np.mean(np.all(predicted == labels, axis=1)))
            if len(labels) else 0.0}
