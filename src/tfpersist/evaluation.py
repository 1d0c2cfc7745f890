"""Held-out evaluation of a frozen model, checked against the checkpoint it came from."""

from __future__ import annotations

import numpy as np
import pandas as pd


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray
) -> dict:
    """Accuracy, log loss and per-class recall of one model's outputs."""
    eps = 1e-7
    picked = probabilities[np.arange(len(labels)), labels]
    per_class = {}
    for cls in range(probabilities.shape[1]):
        mask = labels == cls
        if mask.any():
            per_class[str(cls)] = round(float((predictions[mask] == cls).mean()), 6)
    return {
        "accuracy": round(float((predictions == labels).mean()), 6),
        "log_loss": round(float(-np.log(np.clip(picked, eps, 1.0)).mean()), 6),
        "rows": len(labels),
        "recall": per_class,
    }


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute elementwise difference (0 for empty arrays), in float64."""
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(diff.max()) if diff.size else 0.0


def agreement(frozen: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """How far the frozen model's outputs are from the checkpoint's (0 when folded exactly)."""
    return max(max_abs_diff(value, reference[name]) for name, value in frozen.items())


def confusion_rows(labels: np.ndarray, predictions: np.ndarray) -> pd.DataFrame:
    """One row per example, ``actual`` and ``predicted``: DVC's confusion template input."""
    return pd.DataFrame({"actual": labels.astype(int), "predicted": predictions.astype(int)})
