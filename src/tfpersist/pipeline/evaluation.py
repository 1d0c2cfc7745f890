"""Held-out evaluation of a frozen model, checked against the checkpoint it came from.

The metrics are numpy; only ``evaluate``, which runs the models, imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tfpersist import safety
from tfpersist.core import atomic, layout
from tfpersist.core.errors import TfpersistError
from tfpersist.numerics.distances import max_abs_diff
from tfpersist.pipeline.params import ExportParams, ModelParams
from tfpersist.tables import data, records


def evaluate(
    frozen_pb: str | Path,
    checkpoint_dir: str | Path,
    prepared_dir: str | Path,
    model: ModelParams,
    metrics_path: str | Path,
    details_path: str | Path,
    confusion_path: str | Path,
    trust: safety.Trust = safety.TRUST_NOTHING,
    export_dir: str | Path | None = None,
    export: ExportParams | None = None,
) -> dict:
    """Run the frozen model (ops beyond the allowlist as ``trust`` allows) and the checkpoint
    (or the Keras model: ``checkpoint_dir`` a .keras) on the prepared test split; write the
    frozen model's headline metrics (``HEADLINE``: what ``dvc metrics show`` prints, 80
    columns wide) to ``metrics_path``, the rest — per-class recall, how far its outputs are
    from the checkpoint's, each shipped format's — to ``details_path`` (JSON both), and one
    (actual, predicted) row per example to ``confusion_path`` (CSV). With ``export``, each
    shipped format in ``export_dir`` is run too (``shipped``); one beyond ``export.tolerance``
    fails it. Returns every metric (both files' keys)."""
    prepared = Path(prepared_dir)
    schema = data.read_schema(prepared)
    from tfpersist.running.runner import Runner  # TensorFlow from here on

    labels, predictions, picked, far = [], [], [], 0.0
    formats = None  # the shipped formats, loaded once the frozen model has run (trust first)
    with (
        records.open_split(prepared, "test", schema) as rows,
        Runner.from_frozen(frozen_pb) as frozen,
        _Reference(checkpoint_dir, model, trust) as reference,
    ):
        frozen.trust = trust
        # the features a chunk at a time; per row only its label, prediction and true-class
        # probability are kept (20 bytes), for the metrics and the confusion rows
        for x, y in rows.chunks(CHUNK):
            records.check_labels(y, rows.path, schema.num_classes)
            got = frozen.run(x, model.input_node, model.output_nodes)
            far = max(far, agreement(got, reference.run(x)))
            probabilities = got[model.probabilities_node]
            labels.append(y)
            predictions.append(got[model.predictions_node])
            picked.append(probabilities[np.arange(len(y)), y])
            if export and export.formats:
                formats = formats or _Shipped(export_dir, export, model)
                formats.add(x, y, got)
    y, predicted = np.concatenate(labels), np.concatenate(predictions)
    metrics = _metrics(y, predicted, np.concatenate(picked), probabilities.shape[1])
    metrics["checkpoint_max_abs_diff"] = far
    if formats:
        metrics["export"] = formats.result(len(y))
    atomic.write_json(metrics_path, {k: v for k, v in metrics.items() if k in HEADLINE})
    atomic.write_json(details_path, {k: v for k, v in metrics.items() if k not in HEADLINE})
    atomic.write_text(confusion_path, data.to_csv_text(confusion_rows(y, predicted)))
    return metrics


HEADLINE = ("accuracy", "log_loss", "min_recall", "rows")  # the rest goes to the details
CHUNK = records.CHUNK  # test rows run through every model at once


class _Reference:
    """What the frozen model is held to: the release checkpoint run as a graph (one session
    for every chunk), or a Keras release (the Keras-fit train stage's model.keras) run by
    Keras's own predict (which loads and checks the file per chunk). Opened at the first
    chunk, once the frozen model has run (a hostile .pb is refused before anything else is
    read)."""

    def __init__(self, source, model: ModelParams, trust):
        self.source, self.model, self.trust = source, model, trust
        self.kind, self.runner = None, None

    def __enter__(self) -> _Reference:
        return self

    def __exit__(self, *exc) -> None:
        if self.runner is not None:
            self.runner.__exit__(*exc)

    def run(self, x: np.ndarray) -> dict:
        from tfpersist import formats

        m = self.model
        if self.kind is None:
            self.kind = formats.detect(self.source)
            if self.kind not in formats.KERAS_SOURCES:
                from tfpersist.running.runner import Runner

                self.runner = Runner.from_checkpoint(self.source).__enter__()
        if self.runner is None:
            from tfpersist.freezing import keras

            inputs = {m.input_node: x}
            return keras.predict(self.source, self.kind, inputs, m.output_nodes, self.trust)
        return self.runner.run(x, m.input_node, m.output_nodes)


class _Shipped:
    """Each shipped format in ``export_dir``, loaded once, run on every chunk beside the
    frozen model: its accuracy, its outputs' largest distance to the frozen model's
    (``max_abs_diff`` as a power of ten, see shipping.magnitude; class ids must be equal)
    and its size in bytes. One beyond ``export.tolerance`` fails the stage (one line)."""

    def __init__(self, export_dir, export: ExportParams, model: ModelParams):
        from tfpersist import shipping
        from tfpersist.shipping import cards

        self.export_dir, self.export, self.model = export_dir, export, model
        self.sig = shipping.Signature([model.input_node], model.output_nodes)
        card = cards.read_export_card(export_dir)
        formats = export.formats
        missing = [
            f for f in formats if f not in card["formats"] and f not in card.get("left_out", {})
        ]
        if missing:
            raise TfpersistError(
                f"{export_dir}: export.formats names {missing[0]}, which the export did not "
                "ship; run the export stage again (dvc repro)"
            )
        self.loaded: dict = {}
        self.formats = [f for f in formats if f in card["formats"]]
        self.distances = {f: {name: 0.0 for name in model.output_nodes} for f in self.formats}
        self.correct = dict.fromkeys(self.formats, 0)
        self.excess = {
            f: {name: (0.0, 0.0, 0.0) for name in model.output_nodes} for f in self.formats
        }
        self.exact: set[str] = set()

    def add(self, x: np.ndarray, y: np.ndarray, frozen: dict) -> None:
        from tfpersist import shipping

        rtol = self.export.rtol
        checked = shipping.parity(
            self.export_dir, self.sig, self.formats, x, frozen, self.loaded, rtol
        )
        self.exact = checked.exact
        for fmt, got in checked.outputs.items():
            self.correct[fmt] += int((got[self.model.predictions_node] == y).sum())
            for name, d in checked.distances[fmt].items():
                self.distances[fmt][name] = max(self.distances[fmt][name], d)
                self.excess[fmt][name] = max(self.excess[fmt][name], checked.excess[fmt][name])

    def result(self, rows: int) -> dict:
        from tfpersist import shipping
        from tfpersist.core import digests

        checked = shipping.Parity({}, self.distances, self.exact, self.excess, self.export.rtol)
        failures = checked.failures(self.export.tolerance, self.export.tflite_quantize)
        if failures:
            raise TfpersistError(f"{failures[0]} on the test split (export.tolerance)")
        return {
            fmt: {
                "accuracy": round(self.correct[fmt] / rows, 6),
                "max_abs_diff": shipping.magnitude(max(self.distances[fmt].values())),
                "bytes": digests.digest(layout.exported(self.export_dir, fmt))[1],
            }
            for fmt in self.formats
        }


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray
) -> dict:
    """Accuracy, log loss and per-class recall of one model's outputs."""
    picked = probabilities[np.arange(len(labels)), labels]
    return _metrics(labels, predictions, picked, probabilities.shape[1])


def _metrics(labels, predictions, picked, classes: int) -> dict:
    """``classification_metrics`` from each row's probability of its true class."""
    eps = 1e-7
    per_class = {}
    for cls in range(classes):
        mask = labels == cls
        if mask.any():
            per_class[str(cls)] = round(float((predictions[mask] == cls).mean()), 6)
    return {
        "accuracy": round(float((predictions == labels).mean()), 6),
        "log_loss": round(float(-np.log(np.clip(picked, eps, 1.0)).mean()), 6),
        "min_recall": min(per_class.values()),  # the worst class's (a gate: min_recall>=0.9)
        "rows": len(labels),
        "recall": per_class,
    }


def agreement(frozen: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """How far the frozen model's outputs are from the checkpoint's (0 when folded exactly)."""
    return max(max_abs_diff(value, reference[name]) for name, value in frozen.items())


def confusion_rows(labels: np.ndarray, predictions: np.ndarray) -> pd.DataFrame:
    """One row per example, ``actual`` and ``predicted``: DVC's confusion template input."""
    return pd.DataFrame({"actual": labels.astype(int), "predicted": predictions.astype(int)})
