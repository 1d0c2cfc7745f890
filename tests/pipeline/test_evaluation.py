"""The evaluation metrics against numbers worked out by hand (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist.numerics import distances
from tfpersist.pipeline import evaluation
from tfpersist.tables import data

# Three classes, six rows: class 0 and 2 each have one miss, class 1 none.
LABELS = np.array([0, 0, 1, 1, 2, 2], dtype=np.int64)
PREDICTIONS = np.array([0, 1, 1, 1, 2, 0], dtype=np.int64)
PROBABILITIES = np.array(
    [
        [0.8, 0.1, 0.1],  # label 0: p = 0.8
        [0.4, 0.5, 0.1],  # label 0: p = 0.4
        [0.1, 0.8, 0.1],  # label 1: p = 0.8
        [0.25, 0.5, 0.25],  # label 1: p = 0.5
        [0.1, 0.1, 0.8],  # label 2: p = 0.8
        [0.5, 0.25, 0.25],  # label 2: p = 0.25
    ],
    dtype=np.float32,
)


def test_classification_metrics_by_hand():
    metrics = evaluation.classification_metrics(LABELS, PREDICTIONS, PROBABILITIES)
    # log loss -ln(0.8³ · 0.4 · 0.5 · 0.25) / 6 = -ln(0.0256) / 6 = 0.6108605 (float32 inputs:
    # the sixth digit may round either way)
    assert metrics.pop("log_loss") == pytest.approx(0.6108605, abs=1e-6)
    assert metrics == {
        "accuracy": 0.666667,  # 4 of 6, rounded to 6 digits
        "min_recall": 0.5,
        "rows": 6,
        "recall": {"0": 0.5, "1": 1.0, "2": 0.5},
    }


def test_a_class_without_rows_has_no_recall_and_a_zero_probability_is_clipped():
    labels = np.array([0, 1], dtype=np.int64)
    predictions = np.array([1, 1], dtype=np.int64)
    probabilities = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    metrics = evaluation.classification_metrics(labels, predictions, probabilities)
    assert metrics["recall"] == {"0": 0.0, "1": 1.0}  # class 2: no row, no entry
    assert metrics["accuracy"] == 0.5
    # row 0: -ln(1e-7) = 16.118096 instead of inf; row 1: -ln(1) = 0
    assert metrics["log_loss"] == pytest.approx(16.118096 / 2, abs=1e-6)


def test_confusion_rows_are_one_actual_predicted_pair_per_example():
    rows = evaluation.confusion_rows(LABELS, PREDICTIONS.astype(np.int32))
    assert data.to_csv_text(rows) == ("actual,predicted\n0,0\n0,1\n1,1\n1,1\n2,2\n2,0\n")


def test_agreement_is_the_largest_difference_over_every_output():
    frozen = {"scores": np.array([[0.5, 0.25]], np.float32), "classes": np.array([1, 2])}
    same = {"scores": frozen["scores"].copy(), "classes": frozen["classes"].copy()}
    assert evaluation.agreement(frozen, same) == 0.0
    off = {"scores": np.array([[0.5, 0.5]], np.float32), "classes": np.array([1, 4])}
    assert evaluation.agreement(frozen, off) == 2.0  # the integer output differs most
    off["classes"] = frozen["classes"]
    assert evaluation.agreement(frozen, off) == 0.25


def test_max_abs_diff_is_taken_in_float64():
    # float32(0.1) and the float64 0.1 differ by about 1.5e-9; in float32 they would be equal
    assert distances.max_abs_diff(np.float32([0.1]), np.float64([0.1])) == pytest.approx(
        1.49e-9, rel=1e-2
    )
    assert distances.max_abs_diff(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
