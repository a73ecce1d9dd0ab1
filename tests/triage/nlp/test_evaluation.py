"""Routing metrics, the precision-targeted threshold, uncertainty and drift statistics (hand-checked numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from triage.cases.active_learning import uncertainty_of
from triage.nlp.evaluation import (
    expected_calibration_error,
    js_divergence,
    margin_and_entropy,
    population_stability_index,
    precision_threshold,
    routing_metrics,
    top1_calibration_error,
    top_k_accuracy,
)


def test_threshold_is_the_lowest_score_that_keeps_the_target_precision() -> None:
    conf = np.array([0.99, 0.95, 0.90, 0.80, 0.70, 0.60])
    hit = np.array([True, True, True, False, True, False])
    t = precision_threshold(conf, hit, 0.97)
    assert (t.threshold, t.precision, t.coverage, t.support) == (0.90, 1.0, 0.5, 6)
    # 4 of the top 5 are right (0.8): a target of 0.8 reaches down to 0.70.
    assert precision_threshold(conf, hit, 0.8).threshold == 0.70
    assert precision_threshold(conf, ~hit, 0.97).threshold is None


def test_threshold_never_splits_tied_scores() -> None:
    t = precision_threshold(np.array([0.9, 0.9, 0.5]), np.array([True, False, True]), 0.97)
    assert t.threshold is None  # cutting between the two 0.9s would claim a precision it cannot keep


def test_routing_metrics_per_agency_and_topk() -> None:
    classes = ["A", "B", "C"]
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    m = routing_metrics(proba, classes, ["A", "B", "B", "A"])
    assert m["top1"] == 0.5 and m["top3"] == 1.0
    assert m["per_agency"]["A"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_agency"]["B"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-4)  # C was never asked about
    assert m["confusion"] == {"labels": ["A", "B", "C"], "matrix": [[1, 0, 1], [1, 1, 0], [0, 0, 0]]}


def test_ece_of_perfectly_calibrated_bins_is_zero() -> None:
    assert expected_calibration_error(np.array([0.75] * 4), np.array([1, 1, 1, 0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([0, 0])) == pytest.approx(0.9)


def test_ece_bins_are_right_closed_and_the_first_holds_zero() -> None:
    # 0.1 belongs to the first bin with 0.0: (0.05 - 0.5) weighs 2/4; 0.2 and 1.0 are perfectly calibrated.
    conf = np.array([0.0, 0.1, 0.2, 1.0])
    assert expected_calibration_error(conf, np.array([1, 0, 0, 1])) == pytest.approx(0.5 * 0.45 + 0.25 * 0.2)
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert top1_calibration_error(proba, ["a", "b"], ["a", "a"]) == pytest.approx(0.5 * 0.1 + 0.5 * 0.8)


def test_top_k_accuracy_ranks_columns_and_misses_unknown_labels() -> None:
    classes = ["B", "A", "C", "D"]  # not sorted: sklearn's order is handled inside
    scores = np.array([[0.1, 0.5, 0.3, 0.1], [0.4, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]])
    gold = ["C", "C", "Z"]
    assert top_k_accuracy(scores, classes, gold, 1) == 0.0
    assert top_k_accuracy(scores, classes, gold, 2) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, classes, gold, 3) == pytest.approx(2 / 3)
    assert top_k_accuracy(scores, classes, gold, 4) == pytest.approx(2 / 3)  # "Z" is no column
    # A label heading two columns (a child body counted as its parent) hits through either.
    assert top_k_accuracy(scores, ["P", "X", "P", "Y"], ["P", "P", "P"], 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, ["P", "X", "P", "Y"], ["P", "P", "P"], 2) == 1.0
    # Two columns and margins, not probabilities.
    assert top_k_accuracy(np.array([[-1.0, 1.0], [2.0, -2.0]]), ["n", "y"], ["y", "y"], 1) == 0.5
    with pytest.raises(ValueError):
        top_k_accuracy(scores, classes, gold, 0)


def test_uncertainty_measures() -> None:
    margin, entropy = margin_and_entropy(np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert margin.tolist() == [0.0, 1.0] and entropy.tolist() == pytest.approx([1.0, 0.0])
    assert uncertainty_of([0.9, 0.05, 0.05])[0] == pytest.approx(0.85)
    assert uncertainty_of([0.4, 0.35, 0.1])[1] > uncertainty_of([0.9, 0.05, 0.05])[1]


def test_drift_statistics() -> None:
    same = np.array([10, 20, 30])
    assert js_divergence(same, same * 3) == pytest.approx(0.0)
    assert js_divergence(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert population_stability_index(same, same) == pytest.approx(0.0)
    assert population_stability_index(np.array([50, 50]), np.array([90, 10])) > 0.25
