"""`tfpersist compare`: versions of the pipeline's model across git revisions, and formats."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from tfpersist import cli
from tfpersist.freezing import freeze, models
from tfpersist.versions import compare

from conftest import deep_update, run

PB = "models/frozen/model.pb"


def dvc(repo, *args):
    import sys

    return run([f"{sys.prefix}/bin/dvc", *args], repo)


def tfpersist(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.mark.slow
def test_compare_a_tagged_version_with_the_workspace(repo, monkeypatch, capsys):
    dvc(repo, "repro")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "v1"], repo)
    run(["git", "tag", "v1"], repo)
    params = repo / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            deep_update(yaml.safe_load(params.read_text()), {"train": {"learning_rate": 0.02}})
        )
    )
    dvc(repo, "repro")
    monkeypatch.chdir(repo)
    capsys.readouterr()

    assert tfpersist("compare", f"{PB}@v1", PB, "--format", "json", "--localize") == 0
    report = json.loads(capsys.readouterr().out)
    first = report["localize"]["first"]  # retrained: it parts at the first layer's matmul
    assert [f["node"] for f in first] == ["model/hidden_0/MatMul"]
    assert first[0]["why"] == ["weight model/hidden_0/weights changed"]
    assert report["localize"]["path"][0]["node"] == "input_holder"
    assert report["identical"] is False
    assert report["signature"]["changes"] == [] and report["differs"]["signature"] is None
    assert report["differs"]["structure"] is None
    assert report["weights"]["max_abs"] > 0 and report["weights"]["changed"]
    assert report["outputs"]["rows"] == 269 and report["outputs"]["max_abs"]["probabilities"] > 0
    assert set(report["outputs"]["accuracy"]) == {"a", "b"}
    assert 0 <= report["outputs"]["equal_predictions"] <= 1

    assert tfpersist("compare", f"{PB}@v1", PB, "--fail-on", "signature,structure") == 0
    assert tfpersist("compare", f"{PB}@v1", PB, "--fail-on", "outputs") == 1
    assert "outputs differs: max abs output difference" in capsys.readouterr().err
    assert tfpersist("compare", f"{PB}@v1", PB, "--fail-on", "weights", "--tolerance", "1e9") == 0
    assert tfpersist("compare", f"{PB}@v1", PB, "--fail-on", "any") == 1
    capsys.readouterr()

    assert tfpersist("compare", f"{PB}@v1", f"{PB}@v1", "--format", "md", "--fail-on", "any") == 0
    table = capsys.readouterr().out
    assert table.startswith(f"| | A: `{PB}@v1` | B: `{PB}@v1` | |\n|---|---|---|---|")
    assert "| bytes | " in table and "identical" in table and "DIFFERS" not in table

    # The frozen .pb and the release checkpoint it came from behave the same, everywhere.
    fail_on = ["--fail-on", "outputs,weights,signature"]
    assert tfpersist("compare", PB, "models/checkpoint", *fail_on, "--localize") == 0
    text = capsys.readouterr().out
    assert "outputs:   same" in text and "TF1 checkpoint" in text
    assert re.search(r"localize:  no divergence \(\d+ shared tensors on 256 rows, 0 differ", text)

    assert tfpersist("compare", f"{PB}@v0", PB) == 1
    assert "unknown revision 'v0'" in capsys.readouterr().err
    assert tfpersist("compare", "models/none.pb@v1", PB) == 1
    assert "'models/none.pb' did not exist at revision 'v1'" in capsys.readouterr().err
    assert tfpersist("compare", PB, PB, "--fail-on", "everything") == 2

    # v1 in no cache and on no running remote: refused truthfully, or rebuilt and verified.
    import shutil

    shutil.rmtree(repo / ".dvc" / "cache")
    assert tfpersist("compare", f"{PB}@v1", PB) == 1
    assert re.search(r"does not answer|nor on the DVC remote", capsys.readouterr().err)
    assert tfpersist("compare", f"{PB}@v1", PB, "--rebuild", "--fail-on", "signature") == 0
    assert f"A: {PB}@v1" in capsys.readouterr().out


def small_model(tf, path, classes: int, dtype):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.constant(np.arange(3 * classes, dtype=np.float32).reshape(3, classes), name="w")
        tf.identity(tf.cast(tf.nn.softmax(tf.matmul(x, w)), dtype), name="scores")
    freeze.write(graph.as_graph_def(), path, ["scores"])
    return path


def test_signature_section_reports_dtype_and_shape_changes(tf, tmp_path):
    a = models.load_model(small_model(tf, tmp_path / "a.pb", 2, tf.float32))
    b = models.load_model(small_model(tf, tmp_path / "b.pb", 3, tf.float64))
    x = np.ones((4, 3), np.float32)
    report = compare.compare_models(a, b, x, None, "ones")
    assert report["signature"]["changes"] == [
        "output scores: float32 [None, 2] → float64 [None, 3]"
    ]
    assert report["weights"]["shape_changed"] == [{"name": "w", "a": [3, 2], "b": [3, 3]}]
    assert "scores" not in report["outputs"]["max_abs"]  # shapes differ: not comparable
    why = compare.differences(report, 0.0)
    assert why["signature"] and why["weights"] and why["structure"]
    same = compare.compare_models(a, a, x, None, "ones")
    assert same["identical"] and not any(compare.differences(same, 0.0).values())


def test_tolerance_applies_to_float_outputs_and_integer_outputs_must_be_equal(tf, tmp_path):
    def model(path, w):
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, [None, 2], name="x")
            scores = tf.matmul(x, tf.constant(w, tf.float32), name="scores")
            tf.argmax(scores, 1, name="label")
        freeze.write(graph.as_graph_def(), path, ["scores", "label"])
        return models.load_model(path, ["scores", "label"])

    a = model(tmp_path / "a.pb", [[1.0, 0.0], [0.0, 1.0]])
    b = model(tmp_path / "b.pb", [[1.0, 0.0], [0.0, 1.1]])
    x = np.array([[1.0, 0.95], [1.0, 0.2]], np.float32)  # row 0: class 0 in a, 1 in b
    report = compare.compare_models(a, b, x, None, "rows")
    assert report["outputs"]["exact"] == ["label"]
    why = compare.differences(report, 0.5)["outputs"]
    assert why == "label differ (integer outputs must be equal)"
    same_classes = compare.compare_models(a, b, x[1:], None, "rows")
    assert compare.differences(same_classes, 0.5)["outputs"] is None
    assert compare.differences(same_classes, 0.01)["outputs"].startswith("max abs output")


def test_compare_feeds_models_with_two_inputs(tf, tmp_path, monkeypatch, capsys):
    """--input NAME=FILE, repeated (as predict takes it): both models run on every placeholder,
    outputs compared and the divergence localized."""
    monkeypatch.chdir(tmp_path)  # no data/prepared here: --input is the only data

    def model(path, scale):
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default():
            a = v1.placeholder(tf.float32, [None, 2], name="a")
            b = v1.placeholder(tf.float32, [None, 2], name="b")
            w = tf.constant([[1.0], [scale]], name="w")
            tf.identity(tf.matmul(a, w) + tf.matmul(b, w), name="score")
        freeze.write(graph.as_graph_def(), path, ["score"])

    model(tmp_path / "v1.pb", 1.0)
    model(tmp_path / "v2.pb", 2.0)
    np.save(tmp_path / "a.npy", np.array([[1, 2], [3, 4]], np.float32))
    np.save(tmp_path / "b.npy", np.array([[5, 6], [7, 8]], np.float32))
    feed = ["--input", f"a={tmp_path / 'a.npy'}", "--input", f"b={tmp_path / 'b.npy'}"]
    args = ["compare", tmp_path / "v1.pb", tmp_path / "v2.pb", *feed, "--format", "json"]
    assert tfpersist(*args, "--localize", "--fail-on", "outputs") == 1
    report = json.loads(capsys.readouterr().out)
    # v1: 1+2+5+6 = 14, 3+4+7+8 = 22; v2: 1+4+5+12 = 22, 3+8+7+16 = 34
    assert report["outputs"]["rows"] == 2 and report["outputs"]["max_abs"] == {"score": 12.0}
    assert [f["node"] for f in report["localize"]["first"]] == ["MatMul", "MatMul_1"]
    assert report["localize"]["first"][0]["why"] == ["weight w changed"]
    assert tfpersist("compare", tmp_path / "v1.pb", tmp_path / "v1.pb", *feed) == 0
    assert "max abs difference score: 0\n" in capsys.readouterr().out
    # a placeholder neither model has: said, not run
    np.save(tmp_path / "c.npy", np.ones((2, 2), np.float32))
    assert tfpersist(*args, "--input", f"c={tmp_path / 'c.npy'}") == 0
    assert "has no placeholder c" in json.loads(capsys.readouterr().out)["outputs"]["skipped"]
    assert tfpersist(*args, "--data", tmp_path / "a.npy") == 2
    assert "give --data (one CSV) or --input NAME=FILE, not both" in capsys.readouterr().err
