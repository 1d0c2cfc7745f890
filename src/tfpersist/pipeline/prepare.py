"""The prepare stage: check the raw CSV (numeric complete features, labels 0..K-1 with every
class present), split it deterministically by class, and write the prepared directory: each
split as a record file (tables/records.py: ``train.npy``, ``val.npy``, ``test.npy``, what
training and evaluation read a batch at a time), the test split's rows as CSV too
(``test.csv``: what ``tfpersist predict`` and ``compare`` take), and ``schema.json``.

The CSV is streamed twice in chunks of ``data.CHUNK_ROWS`` rows — first to check it and count
each class, then to split and write — so memory does not grow with the file. Any CSV works:
one integer label column named by params, every other column a numeric feature. No
TensorFlow here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tfpersist.core import atomic, layout
from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline.params import PrepareParams
from tfpersist.tables import data, records
from tfpersist.tables.order import Permutation

SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = range(3)
SPLIT_KEY = 1  # the permutations' tag: the split's orders differ from training's batch order
MAX_CLASSES = 1 << 20  # a class id past this is a mistake (and a count array that large)


def _check_chunk(df: pd.DataFrame, label: str, source: str) -> list[str]:
    """The label column is there, every cell a finite number, labels class ids; the
    feature names."""
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
    data.check_labels(df[label], source)
    return features


@dataclass
class Census:
    """What the first pass learns: the schema, each class's row count, each column's type."""

    label: str
    features: list[str] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    floats: set[str] = field(default_factory=set)  # columns not parsed as int64 somewhere

    def add(self, df: pd.DataFrame, source: str) -> None:
        self.features = _check_chunk(df, self.label, source)
        self.floats |= {str(c) for c in df.columns if df[c].dtype.kind != "i"}
        labels = _labels(df, self.label)
        if labels.max() >= MAX_CLASSES:
            raise TfpersistError(
                f"{source}: label '{self.label}' holds class id {labels.max()}; class ids must "
                f"be 0..K-1 with every class present (K below {MAX_CLASSES:,})"
            )
        self.counts = _add_counts(self.counts, labels)

    def schema(self, source: str) -> data.Schema:
        data.check_every_class(self.counts, self.label, source)
        if len(self.counts) < 2:
            raise TfpersistError(
                f"{source}: label '{self.label}' has a single class; need at least two"
            )
        return data.Schema(label=self.label, features=self.features, num_classes=len(self.counts))


def _labels(df: pd.DataFrame, label: str) -> np.ndarray:
    return df[label].to_numpy().astype(np.int64)


def _add_counts(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    new = np.bincount(labels, minlength=len(counts))
    new[: len(counts)] += counts
    return new


def validate(df: pd.DataFrame, label: str, source: str = "data") -> data.Schema:
    """Check that ``df`` (a whole table) has the label column, numeric complete features and
    labels 0..K-1, every class present."""
    census = Census(label)
    census.add(df, source)
    return census.schema(source)


class Splitter:
    """Which split each row goes to, a pure function of ``seed`` and the class counts.

    Class c's n_c rows are ordered by a keyed bijection of [0, n_c) (key: seed, c); the first
    round(n_c·test) in that order go to test, the next round(n_c·val) to val, the rest to
    train — per row from its rank within its class alone, so rows stream through in chunks.
    """

    def __init__(self, counts: np.ndarray, val_fraction: float, test_fraction: float, seed: int):
        self.counts = counts
        self.n_test = np.array([round(n * test_fraction) for n in counts.tolist()], np.int64)
        self.n_val = np.array([round(n * val_fraction) for n in counts.tolist()], np.int64)
        self.orders = [Permutation(int(n), SPLIT_KEY, seed, c) for c, n in enumerate(counts)]
        self.seen = np.zeros(len(counts), np.int64)

    def sizes(self) -> dict[str, int]:
        test, val = int(self.n_test.sum()), int(self.n_val.sum())
        return {"train": int(self.counts.sum()) - test - val, "val": val, "test": test}

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        """The split (TRAIN, VAL, TEST) of each of the next rows, given their labels."""
        codes = np.empty(len(labels), np.int8)
        for c in np.unique(labels).tolist():
            at = np.flatnonzero(labels == c)
            ranks = self.seen[c] + np.arange(len(at))
            self.seen[c] += len(at)
            u = self.orders[c](ranks)
            codes[at] = np.where(
                u < self.n_test[c], TEST, np.where(u < self.n_test[c] + self.n_val[c], VAL, TRAIN)
            )
        return codes


def _splitter(counts: np.ndarray, params: PrepareParams, rows: int) -> Splitter:
    splitter = Splitter(counts, params.val_fraction, params.test_fraction, params.seed)
    for name, n in splitter.sizes().items():
        if n == 0:
            raise TfpersistError(
                f"the {name} split is empty ({rows} rows); use more data or a larger "
                f"prepare.{'test' if name == 'test' else 'val'}_fraction"
            )
    return splitter


def stratified_split(
    df: pd.DataFrame, label: str, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """A whole table's splits (rows in their original order) — the rows ``prepare`` writes
    for the same table and params."""
    labels = _labels(df, label)
    params = PrepareParams(label, val_fraction, test_fraction, seed)
    codes = _splitter(_add_counts(np.zeros(0, np.int64), labels), params, len(df))(labels)
    return {name: df[codes == i].reset_index(drop=True) for i, name in enumerate(SPLITS)}


def prepare(
    raw: str | Path, out: str | Path, params: PrepareParams, chunk_rows: int = data.CHUNK_ROWS
) -> tuple[data.Schema, dict[str, int]]:
    """Check and split the raw CSV, streamed; replace the directory ``out`` with the record
    files, ``test.csv`` and ``schema.json``, atomically. Returns the schema and each split's
    row count."""
    source = str(raw)
    census = Census(params.label)
    for chunk in data.csv_chunks(raw, chunk_rows):
        census.add(chunk, source)
    schema = census.schema(source)
    splitter = _splitter(census.counts, params, int(census.counts.sum()))
    sizes = splitter.sizes()
    # the second pass parses every column as the first found it: a column with one
    # non-integer cell anywhere is written as floats in every chunk of test.csv
    columns = [schema.label, *schema.features]
    types = {c: ("float64" if c in census.floats else "int64") for c in columns}
    with atomic.replace_dir(out) as tmp, contextlib.ExitStack() as files:
        writers = {
            name: records.Writer(
                files.enter_context(open(Path(tmp) / layout.split_file(name), "wb")),
                sizes[name],
                len(schema.features),
            )
            for name in SPLITS
        }
        csv = files.enter_context(open(Path(tmp) / layout.TEST_CSV, "w", encoding="utf-8"))
        for i, chunk in enumerate(data.csv_chunks(raw, chunk_rows, dtype=types)):
            labels = _labels(chunk, schema.label)
            codes = splitter(labels)
            x = chunk[schema.features].to_numpy(np.float32)
            for code, name in enumerate(SPLITS):
                mine = codes == code
                writers[name].append(x[mine], labels[mine])
            csv.write(data.to_csv_text(chunk[codes == TEST], header=i == 0))
        for writer in writers.values():
            writer.close()
        files.close()
        atomic.write_json(Path(tmp) / layout.SCHEMA, schema.to_json())
    return schema, sizes
