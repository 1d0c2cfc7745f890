"""An export into a directory that already holds one: the formats of the same frozen graph
stay and the card lists every file there; those of another frozen graph go, said in one line
(a retrained model's TFLite beside this one's ONNX would pass for it)."""

from __future__ import annotations

import json

import numpy as np

from tfpersist import cli
from tfpersist.core import layout

from helpers import W1, W2, X, rows_csv, two_layer


def test_exports_into_one_directory_keep_the_same_models_formats(tf, tmp_path, capsys):
    first, other = tmp_path / "first.pb", tmp_path / "other.pb"
    two_layer(tf, first)
    two_layer(tf, other, w1=W1 * 2, w2=W2)
    data = rows_csv(tmp_path / "rows.csv", X[:5])
    out = tmp_path / "export"

    assert cli.main(["export", str(first), "--to", "onnx", "--out", str(out)]) == 0
    assert cli.main(["export", str(first), "--to", "tflite", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{out}: kept onnx of an earlier export of the same frozen graph" in said
    card = json.loads((out / layout.EXPORT_CARD).read_text())
    assert sorted(card["formats"]) == ["onnx", "tflite"]
    for fmt in ("onnx", "tflite"):  # each runs from the card's signature, the CSV's columns
        argv = ["predict", str(layout.exported(out, fmt)), "--input", str(data)]
        assert cli.main([*argv, "--out", str(tmp_path / f"{fmt}.npz")]) == 0
    np.testing.assert_array_equal(
        np.load(tmp_path / "onnx.npz")["classes"], np.load(tmp_path / "tflite.npz")["classes"]
    )

    capsys.readouterr()
    assert cli.main(["export", str(other), "--to", "saved_model", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{out}: removed onnx, tflite: an earlier export of another frozen graph" in said
    assert not layout.exported(out, "onnx").exists()
    assert not layout.exported(out, "tflite").exists()
    card = json.loads((out / layout.EXPORT_CARD).read_text())
    assert sorted(card["formats"]) == ["saved_model"]
