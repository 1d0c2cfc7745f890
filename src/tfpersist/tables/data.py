"""Tables in and out: read a CSV with one-line errors, check its values, read the prepared
splits with their schema, write a table as CSV text. The prepare stage (pipeline/prepare.py),
predict and the reproducibility check read data through here. No TensorFlow; imports only
the core (errors, atomic writes, layout).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError


@dataclass(frozen=True)
class Schema:
    """What the prepared data looks like; written beside the splits as schema.json."""

    label: str
    features: list[str]
    num_classes: int

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> Schema:
        return cls(
            label=obj["label"], features=list(obj["features"]), num_classes=obj["num_classes"]
        )


def read_csv(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV, turning pandas' failures into one-line errors.

    A first line of numbers only is data, not a header: pandas would take it for column
    names and silently drop a row. That is refused, or, given ``columns`` (the feature names
    a model's card lists, for rows of raw features), read as data under those names.
    """
    path = _existing(path)
    with _parsing(path):
        df = pd.read_csv(path)
    if len(df.columns) and all(_is_number(c) for c in df.columns):
        if columns is None or (columns and len(columns) != len(df.columns)):
            raise _header_is_data(path, df.columns)
        df = pd.read_csv(path, header=None, names=columns or None)
        df.columns = [str(c) for c in df.columns]
    if df.empty:
        raise TfpersistError(f"{path}: has a header but no data rows")
    return df


CHUNK_ROWS = 100_000  # rows a streamed CSV is read in: bounded memory for any file size


def csv_chunks(
    path: str | Path, rows: int = CHUNK_ROWS, dtype: dict | None = None
) -> Iterator[pd.DataFrame]:
    """A CSV's rows ``rows`` at a time (the index runs on across chunks: line = index + 2),
    with ``read_csv``'s one-line errors; a first line of numbers only is refused."""
    path = _existing(path)
    seen = False
    with _parsing(path):
        for chunk in pd.read_csv(path, chunksize=rows, dtype=dtype):
            if not seen and len(chunk.columns) and all(_is_number(c) for c in chunk.columns):
                raise _header_is_data(path, chunk.columns)
            if len(chunk):
                seen = True
                yield chunk
    if not seen:
        raise TfpersistError(f"{path}: has a header but no data rows")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise TfpersistError(
            f"{path}: no such CSV file; check the path (prepare.input in params.yaml)"
        )
    return path


@contextlib.contextmanager
def _parsing(path: Path) -> Iterator[None]:
    """pandas' parse failures as one line naming the file."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise TfpersistError(
            f"{path}: the file is empty; expected a header row and data rows"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TfpersistError(f"{path}: not a readable CSV ({first})") from None


def _header_is_data(path: Path, columns) -> TfpersistError:
    return TfpersistError(
        f"{path}: the first line holds only numbers ({', '.join(map(str, columns[:3]))}"
        f"{', …' if len(columns) > 3 else ''}), so it is data, not a header; add a "
        "header line naming the columns (the label column too)"
    )


def _is_number(name) -> bool:
    try:
        float(str(name).strip())
    except ValueError:
        return False
    return True


def check_numeric(df: pd.DataFrame, source: str) -> None:
    """Every column must hold finite numbers: no text, no empty cells, no NaN or inf."""
    for col in df.columns:
        values = df[col]
        kind = values.dtype.kind
        if kind in "iu" or (kind == "f" and np.isfinite(values.to_numpy()).all()):
            continue  # parsed as numbers, all finite: nothing to find
        numbers = pd.to_numeric(values, errors="coerce")
        if pd.api.types.is_bool_dtype(values):
            numbers = numbers.where(False)
        bad = values[numbers.isna() & values.notna()]
        if len(bad):
            raise TfpersistError(
                f"{source}: column '{col}' is not numeric (line {int(bad.index[0]) + 2}: "
                f"{_show(bad.iloc[0])}); every feature and the label must be numbers"
            )
        missing = numbers.isna() | ~np.isfinite(numbers)
        if missing.any():
            raise TfpersistError(
                f"{source}: column '{col}' has {int(missing.sum())} missing or infinite "
                f"value(s) (first on line {int(missing.idxmax()) + 2}); fill or drop those rows"
            )


def _show(value) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_labels(labels: pd.Series, source: str) -> int:
    """Labels must be class ids 0, 1, 2, …; returns the largest."""
    bad = labels[(labels < 0) | (labels != np.floor(labels))]
    if len(bad):
        raise TfpersistError(
            f"{source}: label '{labels.name}' must hold class ids 0, 1, 2, …; "
            f"line {int(bad.index[0]) + 2} has {_show(bad.iloc[0])}"
        )
    return int(labels.max())


def check_every_class(counts: np.ndarray, label: str, source: str) -> None:
    """Each class id up to the largest must occur (``counts``: rows per class): labels 1..K
    would make a phantom class 0."""
    absent = np.flatnonzero(counts == 0).tolist()
    if absent:
        shift = " (labels 1..K? subtract 1 so they start at 0)" if absent == [0] else ""
        raise TfpersistError(
            f"{source}: label '{label}' has no row of class "
            f"{', '.join(map(str, absent[:5]))}; class ids must be 0..K-1 with every class "
            f"present{shift}"
        )


def to_csv_text(df: pd.DataFrame, header: bool = True) -> str:
    return df.to_csv(index=False, header=header, lineterminator="\n")


def load_split(path: str | Path, schema: Schema, require_label: bool = True):
    """Read a CSV with the schema's features as (x float32 [n, f], y int64 [n] or None)."""
    df = read_csv(path)
    missing = [c for c in schema.features if c not in df.columns]
    if missing:
        raise TfpersistError(
            f"{path}: {len(missing)} of the {len(schema.features)} feature columns the model "
            f"expects are missing (first: '{missing[0]}'); see the features in schema.json"
        )
    has_label = schema.label in df.columns
    if require_label and not has_label:
        raise TfpersistError(f"{path}: label column '{schema.label}' not found")
    check_numeric(df[[*schema.features, *([schema.label] if has_label else [])]], str(path))
    x = df[schema.features].to_numpy(dtype=np.float32)
    if not has_label:
        return x, None
    top = check_labels(df[schema.label], str(path))
    if top >= schema.num_classes:
        raise TfpersistError(
            f"{path}: label {top} is outside the {schema.num_classes} classes "
            f"(0..{schema.num_classes - 1}) the model was trained on"
        )
    return x, df[schema.label].to_numpy(dtype=np.int64)


def read_schema(directory: str | Path) -> Schema:
    """The schema.json that prepare wrote beside the splits."""
    import json

    path = Path(directory) / layout.SCHEMA
    try:
        return Schema.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise TfpersistError(f"{path}: not found; run the prepare stage first") from None
    except (ValueError, KeyError, TypeError) as e:
        raise TfpersistError(f"{path}: not a valid schema ({e})") from None
