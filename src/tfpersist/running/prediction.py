"""Offline prediction with any model: inputs from CSV/.npy, outputs to CSV/.npy/.npz/.json.

The model is a frozen .pb, a checkpoint, a SavedModel, a .tflite or an .onnx (loaders.py).
Input and output names default from the model's card (``model.json`` beside ``model.pb``,
as ``tfpersist freeze`` and the pipeline write it), else from the model: its only input,
and for a graph the nodes nothing consumes (a SavedModel's signature, a .tflite's or an
.onnx's own outputs).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tfpersist import safety
from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError
from tfpersist.graph import signature
from tfpersist.running import loaders
from tfpersist.tables import data


def read_inputs(path: Path, sig: dict | None) -> np.ndarray:
    if not path.is_file():
        raise TfpersistError(f"{path}: no such input file; expected a .csv or .npy")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise TfpersistError(f"{path}: not a readable .npy array ({e})") from None
        names = array.dtype.names or ()
        if names == ("x", "y"):  # a prepared split (tables/records.py): its features
            return np.ascontiguousarray(array["x"])
        if names:
            raise TfpersistError(
                f"{path}: a structured array (fields {', '.join(names)}); expected a plain "
                "array of rows, or a prepared split (fields x, y)"
            )
        return array
    features = (sig or {}).get("features")
    table = data.read_csv(path, features or [])
    if features:
        missing = [c for c in features if c not in table.columns]
        if missing:
            raise TfpersistError(f"{path}: missing feature column '{missing[0]}' the model expects")
        table = table[features]
    data.check_numeric(table, str(path))
    return table.to_numpy(np.float32)


def _columns(outputs: dict[str, np.ndarray]) -> pd.DataFrame:
    columns = {}
    for name, value in outputs.items():
        if value.dtype == object:  # string outputs: text, not b'...'
            value = np.vectorize(jsonable, otypes=[object])(value)
        flat = value.reshape(len(value), -1) if value.ndim > 1 else value[:, None]
        if flat.shape[1] == 1:
            columns[name] = flat[:, 0]
        else:
            for i in range(flat.shape[1]):
                columns[f"{name}_{i}"] = flat[:, i]
    return pd.DataFrame(columns)


def jsonable(value):
    """Lists of numbers as they are; bytes (string outputs) as text."""
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def write_outputs(outputs: dict[str, np.ndarray], out: Path | None) -> None:
    if out is None:
        sys.stdout.write(data.to_csv_text(_columns(outputs)))
    elif out.suffix == ".npy":
        if len(outputs) != 1:
            raise TfpersistError(
                f"{out}: .npy holds one array but the model gives {len(outputs)} outputs "
                f"({', '.join(outputs)}); write them all to a .npz, .csv or .json, or pick one "
                "with --output-nodes"
            )
        buffer = io.BytesIO()
        np.save(buffer, next(iter(outputs.values())))
        atomic.write_bytes(out, buffer.getvalue())
    elif out.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, **outputs)
        atomic.write_bytes(out, buffer.getvalue())
    elif out.suffix == ".json":
        atomic.write_json(out, {k: jsonable(v.tolist()) for k, v in outputs.items()})
    elif out.suffix == ".csv":
        atomic.write_text(out, data.to_csv_text(_columns(outputs)))
    else:
        raise TfpersistError(f"{out}: unknown output format; use .csv, .npy, .npz or .json")


def predict_file(
    model,
    inputs,
    out=None,
    input_node=None,
    output_nodes=None,
    batch_size=1024,
    trust=safety.TRUST_NOTHING,
    signature_key=None,
    architecture=None,
) -> dict:
    """Run any model loaders.open_model opens (.pb, checkpoint, SavedModel, .tflite, .onnx)
    on ``inputs``: one file (CSV or .npy) for the model's input, or {input name: .npy file}
    for a model with several."""
    model = Path(model)
    loaded = loaders.open_model(
        model, output_nodes, signature_key, trust, architecture=architecture
    )
    try:
        names = [t.name for t in loaded.inputs]
        card = signature.beside(model)
        if isinstance(inputs, dict):
            x = {name: read_inputs(Path(path), None) for name, path in inputs.items()}
        else:
            if input_node is None and len(names) != 1:
                raise TfpersistError(
                    f"the model has {len(names)} inputs ({', '.join(names) or 'none'}); "
                    "feed each with --input NAME=FILE.npy (repeatable), or choose one with "
                    "--input-node"
                )
            x = {input_node or names[0]: read_inputs(Path(inputs), card)}
        result = loaded.run(x, batch_size)
    finally:
        loaded.close()
    write_outputs(result, Path(out) if out else None)
    return result
