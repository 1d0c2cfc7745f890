"""tfpersist export: a serving SavedModel, TFLite and ONNX, each run by its own runtime and
held to the frozen graph."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli, layout, shipping

from helpers import X
from helpers import two_layer as build


@pytest.fixture(scope="module")
def exported(tf, tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    build(tf, root / "model.pb")
    assert cli.main(["export", str(root / "model.pb"), "--out", str(root / "a")]) == 0
    assert cli.main(["export", str(root / "model.pb"), "--out", str(root / "b")]) == 0
    return root


def test_each_format_is_written_deterministically(exported):
    for fmt in layout.EXPORT_FORMATS:
        a = layout.exported(exported / "a", fmt)
        b = layout.exported(exported / "b", fmt)
        files = (
            sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()) if a.is_dir() else [None]
        )
        assert files, fmt
        for f in files:
            assert ((a / f) if f else a).read_bytes() == ((b / f) if f else b).read_bytes(), fmt
    # TF Serving's layout: a numbered version directory holding saved_model.pb
    assert (exported / "a" / "saved_model" / "1" / "saved_model.pb").is_file()


def test_each_runtime_loads_its_format_and_agrees_with_the_frozen_graph(tf, exported):
    """Loaded the way their users load them: tf.saved_model.load + the serving signature,
    the TFLite interpreter's signature runner, onnxruntime."""
    from tfpersist.runner import Runner

    with Runner.from_frozen(exported / "model.pb") as frozen:
        want = frozen.run(X, "x", ["probabilities", "classes"])
    loaded = tf.saved_model.load(str(exported / "a" / "saved_model" / "1"))
    got = loaded.signatures["serving_default"](x=tf.constant(X))
    assert set(got) == {"probabilities", "classes"}
    np.testing.assert_array_equal(got["classes"].numpy(), want["classes"])
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported / "a" / "model.onnx"))
    probabilities, classes = session.run(["probabilities:0", "classes:0"], {"x:0": X})
    np.testing.assert_allclose(probabilities, want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(classes, want["classes"])
    sig = shipping.Signature("x", ["probabilities", "classes"])
    lite = shipping.Loaded("tflite", exported / "a" / "model.tflite", sig).run(X)
    np.testing.assert_allclose(lite["probabilities"], want["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(lite["classes"], want["classes"])


def test_a_format_beyond_the_tolerance_fails_and_writes_nothing(exported, capsys):
    out = exported / "strict"
    args = ["export", str(exported / "model.pb"), "--out", str(out), "--to", "tflite"]
    assert cli.main([*args, "--tolerance", "0"]) == 1
    err = capsys.readouterr().err
    assert "tflite differs from the frozen graph: probabilities" in err
    assert f"nothing written to {out}" in err
    assert "Traceback" not in err and not (out / "model.tflite").exists()
    assert cli.main([*args, "--tolerance", "0", "--quantize", "dynamic"]) == 0  # measured only
    assert "model.tflite: tflite" in capsys.readouterr().out
    # a failing re-export leaves the good artifact already there (and no temp dirs)
    before = (out / "model.tflite").read_bytes()
    assert cli.main([*args, "--tolerance", "0"]) == 1
    assert (out / "model.tflite").read_bytes() == before
    assert sorted(p.name for p in exported.iterdir() if p.name.startswith(".")) == []
    # TFLite alone converts from a SavedModel of its own: the one already in DIR stays.
    again = ["export", str(exported / "model.pb"), "--out", str(exported / "b"), "--to", "tflite"]
    assert cli.main(again) == 0
    assert (exported / "b" / "saved_model" / "1" / "saved_model.pb").is_file()
    assert cli.main([*args[:-1], "pickle"]) == 1
    assert "export formats pickle: choose from saved_model, tflite, onnx" in (
        capsys.readouterr().err
    )


def test_export_refuses_a_hostile_model(tf, tmp_path, capsys):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        secret = tf.strings.to_number(tf.io.read_file("/etc/hostname"))
        tf.identity(x * secret, name="y")
    pb = tmp_path / "hostile.pb"
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    out = tmp_path / "out"
    assert cli.main(["export", str(pb), "--out", str(out), "--output-nodes", "y"]) == 1
    assert "ReadFile" in capsys.readouterr().err and not out.exists()
