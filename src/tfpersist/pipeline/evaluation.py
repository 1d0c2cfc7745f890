"""Held-out evaluation of a frozen model, checked against the checkpoint it came from.

The metrics are numpy; only ``evaluate``, which runs the models, imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tfpersist import atomic, data, layout, safety
from tfpersist.distances import max_abs_diff
from tfpersist.errors import TfpersistError
from tfpersist.pipeline.params import ExportParams, ModelParams
from tfpersist.tables import records


def evaluate(
    frozen_pb: str | Path,
    checkpoint_dir: str | Path,
    prepared_dir: str | Path,
    model: ModelParams,
    metrics_path: str | Path,
    confusion_path: str | Path,
    trust: safety.Trust = safety.TRUST_NOTHING,
    export_dir: str | Path | None = None,
    export: ExportParams | None = None,
) -> dict:
    """Run the frozen model (ops beyond the allowlist as ``trust`` allows) and the checkpoint
    (or the Keras model: ``checkpoint_dir`` a .keras) on the prepared test split; write the
    frozen model's metrics, with how far its outputs are from the checkpoint's, to
    ``metrics_path`` (JSON) and one (actual, predicted) row per example to
    ``confusion_path`` (CSV). With ``export``, each shipped format in
    ``export_dir`` is run too (``shipped``); one beyond ``export.tolerance`` fails it.
    Returns the metrics."""
    prepared = Path(prepared_dir)
    schema = data.read_schema(prepared)
    x, y = records.read_split(prepared, "test", schema)

    from tfpersist.running.runner import Runner  # TensorFlow from here on

    outputs = model.output_nodes
    with Runner.from_frozen(frozen_pb) as frozen:
        frozen.trust = trust
        got = frozen.run(x, model.input_node, outputs)
    want = _reference(checkpoint_dir, x, model, trust)
    predictions = got[model.predictions_node]
    metrics = classification_metrics(y, predictions, got[model.probabilities_node])
    metrics["checkpoint_max_abs_diff"] = agreement(got, want)
    if export and export.formats:
        metrics["export"] = shipped(export_dir, export, model, x, y, got)
    atomic.write_json(metrics_path, metrics)
    atomic.write_text(confusion_path, data.to_csv_text(confusion_rows(y, predictions)))
    return metrics


def _reference(source, x, model: ModelParams, trust) -> dict:
    """What the frozen model is held to: the release checkpoint run as a graph, or a Keras
    release (the Keras-fit train stage's model.keras) run by Keras's own predict."""
    from tfpersist import formats

    kind = formats.detect(source)
    if kind in formats.KERAS_SOURCES:
        from tfpersist.freezing import keras

        return keras.predict(source, kind, {model.input_node: x}, model.output_nodes, trust)
    from tfpersist.running.runner import Runner

    with Runner.from_checkpoint(source) as checkpoint:
        return checkpoint.run(x, model.input_node, model.output_nodes)


def shipped(export_dir, export: ExportParams, model: ModelParams, x, y, frozen: dict) -> dict:
    """Per shipped format: its test accuracy, its outputs' distance to the frozen model's
    (``max_abs_diff`` as a power of ten, see shipping.magnitude; class ids must be equal)
    and its size in bytes. Fails with one line when a format is beyond the tolerance."""
    from tfpersist import digests, shipping

    sig = shipping.Signature(model.input_node, model.output_nodes)
    card = shipping.read_export_card(export_dir)
    missing = [
        f for f in export.formats if f not in card["formats"] and f not in card.get("left_out", {})
    ]
    if missing:
        raise TfpersistError(
            f"{export_dir}: export.formats names {missing[0]}, which the export did not ship; "
            "run the export stage again (dvc repro)"
        )
    formats = [f for f in export.formats if f in card["formats"]]
    checked = shipping.parity(export_dir, sig, formats, x, frozen)
    failures = checked.failures(export.tolerance, export.tflite_quantize)
    if failures:
        raise TfpersistError(f"{failures[0]} on the test split (export.tolerance)")
    return {
        fmt: {
            "accuracy": round(float((got[model.predictions_node] == y).mean()), 6),
            "max_abs_diff": shipping.magnitude(max(checked.distances[fmt].values())),
            "bytes": digests.digest(layout.exported(export_dir, fmt))[1],
        }
        for fmt, got in checked.outputs.items()
    }


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


def agreement(frozen: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """How far the frozen model's outputs are from the checkpoint's (0 when folded exactly)."""
    return max(max_abs_diff(value, reference[name]) for name, value in frozen.items())


def confusion_rows(labels: np.ndarray, predictions: np.ndarray) -> pd.DataFrame:
    """One row per example, ``actual`` and ``predicted``: DVC's confusion template input."""
    return pd.DataFrame({"actual": labels.astype(int), "predicted": predictions.astype(int)})
