"""Routing quality on a labelled slice: per-agency precision/recall/F1, top-k, calibration, thresholds.

The one home of these metrics: retraining (challenger vs champion on the same frozen slice, the
auto-routing threshold), the clerks' uncertainty queue, the drift report and the benchmarks all
call this module, so a figure in MLflow and one in ``benchmarks/results`` come from the same code.
Plain numpy/scikit-learn/scipy, no tracking server here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, top_k_accuracy_score


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-1 probability over equal-width bins: how far stated confidence is from accuracy.

    Bins are [0, 1/b], (1/b, 2/b], ..., (1 - 1/b, 1]: right-closed, the first one also holding 0,
    so every confidence lands in exactly one bin (one outside [0, 1] goes to the nearest end bin).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        m = which == b
        total += float(m.mean()) * abs(float(conf[m].mean()) - float(hit[m].mean()))
    return total


def top1_calibration_error(
    proba: np.ndarray, classes: Sequence[Any] | np.ndarray, gold: Sequence[Any], bins: int = 10
) -> float:
    """ECE from a probability table: confidence is the top probability, correct if its class is gold."""
    p = np.asarray(proba, dtype=np.float64)
    correct = np.asarray([str(c) for c in classes])[p.argmax(axis=1)] == np.asarray([str(g) for g in gold])
    return expected_calibration_error(p.max(axis=1), correct, bins)


def top_k_accuracy(
    scores: np.ndarray, classes: Sequence[Any] | np.ndarray, gold: Sequence[Any] | np.ndarray, k: int
) -> float:
    """Share of rows whose gold label is among the k highest-scoring columns.

    A label may head several columns (a child body scored as its parent): a row counts when any of
    them is in the top k, so its target is its best-scored gold column. A gold label that no column
    carries is a miss. Scores need not be probabilities (SVM margins work).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    s = np.asarray(scores, dtype=np.float64)
    cls = np.asarray([str(c) for c in classes])
    gold_arr = np.asarray([str(g) for g in gold])
    if len(gold_arr) == 0:
        return 0.0
    is_gold = cls[None, :] == gold_arr[:, None]
    known = is_gold.any(axis=1)
    if k >= len(cls) or not known.any():
        return float(known.mean())  # all columns are in the top k (sklearn warns), or nothing can hit
    target = np.where(is_gold, s, -np.inf).argmax(axis=1)[known]
    if len(cls) == 2:  # k == 1; sklearn's two-class path thresholds one column instead of ranking
        hits = float((s[known].argmax(axis=1) == target).sum())
    else:
        hits = top_k_accuracy_score(target, s[known], k=k, labels=np.arange(len(cls)), normalize=False)
    return hits / len(gold_arr)


@dataclass(frozen=True)
class Threshold:
    """The lowest score whose auto-routed cases reach the target precision, and how many it covers."""

    target_precision: float
    threshold: float | None  # None: no threshold reaches the target on this slice
    precision: float | None
    coverage: float
    support: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_precision": self.target_precision,
            "threshold": self.threshold,
            "precision": self.precision,
            "coverage": self.coverage,
            "support": self.support,
        }


def precision_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> Threshold:
    """Smallest threshold t with precision(score >= t) >= target; maximises coverage under that rule.

    Only thresholds at observed scores are considered; the precision at a threshold counts every
    case at or above it, so the choice is honest for the slice it was chosen on (and optimistic
    beyond it: the slice must be large for the target to mean much, which ``support`` shows).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    n = conf.size
    if n == 0:
        return Threshold(target, None, None, 0.0, 0)
    order = np.argsort(-conf, kind="stable")
    cum_hits = np.cumsum(hit[order])
    counts = np.arange(1, n + 1)
    precision = cum_hits / counts
    best: int | None = None
    for i in range(n):
        # A cut must not split tied scores: only the last index of a run of equal scores counts.
        if i + 1 < n and conf[order[i + 1]] == conf[order[i]]:
            continue
        if precision[i] >= target:
            best = i
    if best is None:
        return Threshold(target, None, None, 0.0, n)
    return Threshold(
        target_precision=target,
        threshold=round(float(conf[order[best]]), 6),
        precision=round(float(precision[best]), 4),
        coverage=round(float(counts[best] / n), 4),
        support=n,
    )


def routing_metrics(
    proba: np.ndarray, classes: Sequence[Any] | np.ndarray, gold: Sequence[str], *, k: int = 3
) -> dict[str, Any]:
    """Top-1 accuracy, top-k, macro/weighted F1, ECE and per-label precision/recall/F1/support.

    Macro F1 averages over the labels present in ``gold`` (a label never asked about cannot be
    judged), so two models scored on the same slice are averaged over the same labels.
    """
    cls = np.asarray([str(c) for c in classes])
    gold_arr = np.asarray([str(g) for g in gold])
    if proba.shape[0] != len(gold_arr):
        raise ValueError(f"{proba.shape[0]} score rows for {len(gold_arr)} gold labels")
    if len(gold_arr) == 0:
        return {"n": 0}
    pred = cls[proba.argmax(axis=1)]
    topk = top_k_accuracy(proba, cls, gold_arr, k)
    labels = sorted(set(gold_arr))
    p, r, f, s = precision_recall_fscore_support(gold_arr, pred, labels=labels, zero_division=0)
    per = {
        lab: {
            "precision": round(float(pi), 4),
            "recall": round(float(ri), 4),
            "f1": round(float(fi), 4),
            "support": int(si),
        }
        for lab, pi, ri, fi, si in zip(labels, p, r, f, s, strict=True)
    }
    weights = s / s.sum()
    conf = proba.max(axis=1)
    correct = pred == gold_arr
    cm_labels = sorted(set(labels) | set(pred))
    return {
        "n": len(gold_arr),
        "top1": round(float(correct.mean()), 4),
        f"top{k}": round(topk, 4),
        "macro_f1": round(float(np.mean(f)), 4),
        "weighted_f1": round(float((f * weights).sum()), 4),
        "ece": round(expected_calibration_error(conf, correct), 4),
        "per_agency": per,
        "confusion": {
            "labels": cm_labels,
            "matrix": confusion_matrix(gold_arr, pred, labels=cm_labels).tolist(),
        },
    }


def margin_and_entropy(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: top-1 minus top-2 probability (small = torn between two) and entropy over log(n_columns)
    (1 = no idea). Rows should be distributions; 0 log 0 counts as 0."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        return np.zeros(len(p)), np.zeros(len(p))
    top = np.sort(p, axis=1)[:, ::-1]
    margin = top[:, 0] - (top[:, 1] if p.shape[1] > 1 else 0.0)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=1) / np.log(max(p.shape[1], 2))
    return margin, entropy


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint).

    scipy's ``jensenshannon`` is the distance, the square root of the divergence.
    """
    return float(jensenshannon(_distribution(p), _distribution(q), base=2) ** 2)


def population_stability_index(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """PSI = sum (a - e) ln(a / e); rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift."""
    e, a = np.clip(_distribution(expected), eps, None), np.clip(_distribution(actual), eps, None)
    return float(((a - e) * np.log(a / e)).sum())


def _distribution(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else np.full(c.shape, 1.0 / max(c.size, 1))
