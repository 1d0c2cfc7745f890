from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline import prepare
from tfpersist.tables import data

from conftest import ROOT


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "raw" / "digits.csv")


def test_digits_schema(table):
    schema = prepare.validate(table, "label")
    assert len(schema.features) == 64
    assert schema.num_classes == 10
    assert len(table) == 1797


def test_split_is_stratified_disjoint_and_deterministic(table):
    a = prepare.stratified_split(table, "label", 0.15, 0.15, seed=7)
    b = prepare.stratified_split(table, "label", 0.15, 0.15, seed=7)
    c = prepare.stratified_split(table, "label", 0.15, 0.15, seed=8)
    assert all(a[k].equals(b[k]) for k in prepare.SPLITS)
    assert not a["test"].equals(c["test"])
    assert sum(len(a[k]) for k in prepare.SPLITS) == len(table)
    rows = [tuple(r) for k in prepare.SPLITS for r in a[k].itertuples(index=False)]
    assert len(set(rows)) == len(set(map(tuple, table.itertuples(index=False))))
    share = a["test"]["label"].value_counts(normalize=True).sort_index()
    overall = table["label"].value_counts(normalize=True).sort_index()
    assert np.abs(share - overall).max() < 0.01


def test_csv_round_trip(table, tmp_path):
    schema = prepare.validate(table, "label")
    path = tmp_path / "split.csv"
    path.write_text(data.to_csv_text(table))
    assert b"\r\n" not in path.read_bytes()
    x, y = data.load_split(path, schema)
    np.testing.assert_array_equal(x, table[schema.features].to_numpy(np.float32))
    np.testing.assert_array_equal(y, table["label"].to_numpy())


def test_any_csv_with_a_named_label_column():
    df = pd.DataFrame({"a": [0.5, 1.5, 2.5, 3.5], "b": [1, 2, 3, 4], "kind": [0, 1, 0, 1]})
    schema = prepare.validate(df, "kind")
    assert schema.features == ["a", "b"] and schema.num_classes == 2


@pytest.mark.parametrize(
    ("frame", "label", "message"),
    [
        ({"a": [1, 2], "y": [0, 1]}, "label", r"label column 'label' not found \(columns: a, y\)"),
        ({"a": [1.0, float("nan"), 3.0], "y": [0, 1, 0]}, "y", r"'a' has 1 missing .* line 3"),
        ({"a": ["1", "x", "3"], "y": [0, 1, 0]}, "y", r"'a' is not numeric \(line 3: 'x'\)"),
        ({"a": [1, 2, 3], "y": [0, -1, 1]}, "y", r"class ids 0, 1, 2, …; line 3 has -1"),
        ({"a": [1, 2, 3], "y": [0, 0.5, 1]}, "y", r"class ids .* line 3 has 0.5"),
        ({"a": [1, 2], "y": [0, 0]}, "y", r"single class"),
        ({"y": [0, 1]}, "y", r"no feature columns"),
    ],
)
def test_bad_data(frame, label, message):
    with pytest.raises(TfpersistError, match=message) as err:
        prepare.validate(pd.DataFrame(frame), label, "t.csv")
    assert str(err.value).startswith("t.csv: ")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(TfpersistError, match="no such CSV file"):
        data.read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TfpersistError, match="the file is empty"):
        data.read_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,label\n")
    with pytest.raises(TfpersistError, match="no data rows"):
        data.read_csv(tmp_path / "header.csv")


def test_load_split_checks_features_and_label_range(table, tmp_path):
    schema = prepare.validate(table, "label")
    path = tmp_path / "t.csv"
    path.write_text(data.to_csv_text(table.drop(columns="pixel_3_3").head(5)))
    with pytest.raises(TfpersistError, match=r"1 of the 64 feature columns .* 'pixel_3_3'"):
        data.load_split(path, schema)
    path.write_text(data.to_csv_text(table.head(5).assign(label=12)))
    with pytest.raises(TfpersistError, match=r"label 12 is outside the 10 classes"):
        data.load_split(path, schema)
    path.write_text(data.to_csv_text(table.drop(columns="label").head(5)))
    x, y = data.load_split(path, schema, require_label=False)
    assert x.shape == (5, 64) and y is None


def test_a_headerless_csv_is_not_read_one_row_short(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("0,1.5,2.5\n1,3.5,4.5\n0,5.5,6.5\n")
    with pytest.raises(TfpersistError, match=r"the first line holds only numbers \(0, 1.5, 2.5\)"):
        data.read_csv(path)
    # Rows of raw features for a model whose card names them: read as data, every row kept.
    table = data.read_csv(path, ["a", "b", "c"])
    assert list(table.columns) == ["a", "b", "c"] and len(table) == 3
    assert len(data.read_csv(path, [])) == 3  # positional names when none are known


def test_labels_one_to_k_would_make_a_phantom_class(tmp_path):
    df = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "label": [1, 2, 3, 1]})
    with pytest.raises(TfpersistError, match=r"no row of class 0; .*labels 1..K\? subtract 1"):
        prepare.validate(df, "label", "wine.csv")
    df["label"] = [0, 2, 2, 0]
    with pytest.raises(TfpersistError, match="no row of class 1;"):
        prepare.validate(df, "label", "gaps.csv")
