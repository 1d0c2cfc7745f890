"""The prepare stage: check the raw CSV (numeric complete features, labels 0..K-1 with every
class present), split it deterministically by class, and write the prepared directory (the
splits and schema.json). Any CSV works: one integer label column named by params, every other
column a numeric feature. No TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tfpersist import atomic, data, layout
from tfpersist.errors import TfpersistError
from tfpersist.pipeline.params import PrepareParams

SPLITS = ("train", "val", "test")


def validate(df: pd.DataFrame, label: str, source: str = "data") -> data.Schema:
    """Check that ``df`` has the label column, numeric complete features and labels 0..K-1."""
    if label not in df.columns:
        cols = ", ".join(map(str, df.columns[:8])) + (" …" if len(df.columns) > 8 else "")
        raise TfpersistError(
            f"{source}: label column '{label}' not found (columns: {cols}); "
            "set prepare.label in params.yaml"
        )
    features = [str(c) for c in df.columns if c != label]
    if not features:
        raise TfpersistError(f"{source}: no feature columns besides the label '{label}'")
    data.check_numeric(df, source)
    num_classes = data.check_labels(df[label], source, every_class=True) + 1
    if num_classes < 2:
        raise TfpersistError(f"{source}: label '{label}' has a single class; need at least two")
    return data.Schema(label=label, features=features, num_classes=num_classes)


def stratified_split(
    df: pd.DataFrame, label: str, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Split rows into train/val/test keeping class proportions; a pure function of ``seed``.

    Each class's rows are shuffled with a generator seeded by (seed, class); the first
    round(n·test) go to test, the next round(n·val) to val, the rest to train. Rows keep their
    original order within a split.
    """
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    labels = df[label].to_numpy()
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        rows = np.random.default_rng([seed, int(cls)]).permutation(rows)
        n_test = round(len(rows) * test_fraction)
        n_val = round(len(rows) * val_fraction)
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test : n_test + n_val])
        parts["train"].append(rows[n_test + n_val :])
    splits = {}
    for name, chunks in parts.items():
        rows = np.sort(np.concatenate(chunks))
        if len(rows) == 0:
            raise TfpersistError(
                f"the {name} split is empty ({len(df)} rows); use more data or a larger "
                f"prepare.{'test' if name == 'test' else 'val'}_fraction"
            )
        splits[name] = df.iloc[rows].reset_index(drop=True)
    return splits


def prepare(
    raw: str | Path, out: str | Path, params: PrepareParams
) -> tuple[data.Schema, dict[str, pd.DataFrame]]:
    """Read and validate the raw CSV, split it, and replace the directory ``out`` with the
    splits (``train.csv``, ``val.csv``, ``test.csv``) and ``schema.json``, atomically."""
    table = data.read_csv(raw)
    schema = validate(table, params.label, str(raw))
    splits = stratified_split(
        table, params.label, params.val_fraction, params.test_fraction, params.seed
    )
    with atomic.replace_dir(out) as tmp:
        for name, split in splits.items():
            atomic.write_text(Path(tmp) / layout.split_file(name), data.to_csv_text(split))
        atomic.write_json(Path(tmp) / layout.SCHEMA, schema.to_json())
    return schema, splits
