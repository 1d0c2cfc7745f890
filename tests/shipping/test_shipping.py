"""tfpersist export: a serving SavedModel, TFLite and ONNX, each run by its own runtime and
held to the frozen graph."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli, shipping
from tfpersist.core import layout
from tfpersist.freezing import freeze
from tfpersist.graph import graphdefs

from helpers import X
from helpers import two_layer as build

COLUMNS = {"features": ["d", "c", "b", "a"]}  # not in the CSV's order: taken by name


@pytest.fixture(scope="module")
def exported(tf, tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    build(tf, root / "model.pb")
    # the card freeze writes for a release checkpoint: it names the feature columns
    graph_def = graphdefs.read_graph_def(root / "model.pb")
    outputs = ["probabilities", "classes"]
    freeze.write(graph_def, root / "model.pb", outputs, layout.card(root / "model.pb"), COLUMNS)
    every = ",".join(layout.EXPORT_FORMATS)
    for out in ("a", "b"):
        assert (
            cli.main(["export", str(root / "model.pb"), "--out", str(root / out), "--to", every])
            == 0
        )
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


def test_every_shipped_format_takes_the_csv_the_frozen_graph_takes(exported, tmp_path):
    """The export card (export.json) carries the feature columns: predict picks them from a
    CSV with a label column, by name, for every format as for the .pb."""
    import json

    csv = tmp_path / "rows.csv"
    header = "label,a,b,c,d\n"
    csv.write_text(header + "".join(f"7,{','.join(map(str, row[::-1]))}\n" for row in X))
    card = json.loads((exported / "a" / layout.EXPORT_CARD).read_text())
    assert card["signature"]["features"] == COLUMNS["features"]
    assert sorted(card["formats"]) == sorted(layout.EXPORT_FORMATS)

    def predict(model):
        out = tmp_path / "y.json"
        args = ["predict", str(model), "--input", str(csv), "--output-nodes", "classes"]
        assert cli.main([*args, "--out", str(out)]) == 0, model
        return json.loads(out.read_text())["classes"]

    want = predict(exported / "model.pb")
    assert len(want) == len(X)
    for fmt in layout.EXPORT_FORMATS:
        assert predict(layout.exported(exported / "a", fmt)) == want, fmt


def test_each_runtime_loads_its_format_and_agrees_with_the_frozen_graph(tf, exported):
    """Loaded the way their users load them: tf.saved_model.load + the serving signature,
    the TFLite interpreter's signature runner, onnxruntime."""
    from tfpersist.running.runner import Runner

    with Runner.from_frozen(exported / "model.pb") as frozen:
        want = frozen.run(X, "x", ["probabilities", "classes"])
    loaded = tf.saved_model.load(str(exported / "a" / "saved_model" / "1"))
    got = loaded.signatures["serving_default"](x=tf.constant(X))
    assert set(got) == {"probabilities", "classes"}
    np.testing.assert_array_equal(got["classes"].numpy(), want["classes"])
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported / "a" / "model.onnx"))
    probabilities, classes = session.run(["probabilities", "classes"], {"x": X})  # plain names
    np.testing.assert_allclose(probabilities, want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(classes, want["classes"])
    sig = shipping.Signature(["x"], ["probabilities", "classes"])
    lite = shipping.Loaded("tflite", exported / "a" / "model.tflite", sig).run(X)
    np.testing.assert_allclose(lite["probabilities"], want["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(lite["classes"], want["classes"])


def test_a_format_beyond_the_tolerance_fails_and_writes_nothing(exported, capsys):
    out = exported / "strict"
    args = ["export", str(exported / "model.pb"), "--out", str(out), "--to", "tflite"]
    assert cli.main([*args, "--tolerance", "0", "--rtol", "0"]) == 1
    err = capsys.readouterr().err
    assert "tflite differs from the frozen graph: probabilities" in err
    assert "where the frozen graph gives" in err and "allowed 0 + 0·|value|" in err
    assert f"nothing written to {out}" in err
    assert "Traceback" not in err and not (out / "model.tflite").exists()
    assert cli.main([*args, "--tolerance", "0", "--rtol", "0", "--quantize", "dynamic"]) == 0
    assert "model.tflite: tflite" in capsys.readouterr().out
    # a failing re-export leaves the good artifact already there (and no temp dirs)
    before = (out / "model.tflite").read_bytes()
    assert cli.main([*args, "--tolerance", "0", "--rtol", "0"]) == 1
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


def test_predict_runs_every_format_on_the_same_rows(exported, tmp_path):
    """One command, every format: .pb, SavedModel (--signature), .tflite, .onnx, each by its
    own runtime, the same class ids and probabilities within float noise."""
    np.save(tmp_path / "x.npy", X)
    models = {
        "pb": exported / "model.pb",
        "saved_model": layout.exported(exported / "a", "saved_model"),
        "tflite": layout.exported(exported / "a", "tflite"),
        "onnx": layout.exported(exported / "a", "onnx"),
    }
    got = {}
    for name, path in models.items():
        out = tmp_path / f"{name}.npz"
        assert (
            cli.main(["predict", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out)])
            == 0
        )
        with np.load(out) as z:
            got[name] = {k: z[k] for k in z.files}
    for name, outputs in got.items():
        assert sorted(outputs) == ["classes", "probabilities"], name
        np.testing.assert_array_equal(outputs["classes"], got["pb"]["classes"])
        np.testing.assert_allclose(outputs["probabilities"], got["pb"]["probabilities"], atol=1e-5)
    sm = str(models["saved_model"])
    args = ["predict", sm, "--input", str(tmp_path / "x.npy"), "--signature", "serving_default"]
    assert cli.main(args) == 0
    for name, path in models.items():  # --output-nodes picks outputs in every format
        out = tmp_path / f"{name}-classes.npy"
        args = ["predict", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out)]
        assert cli.main([*args, "--output-nodes", "classes"]) == 0, name
        np.testing.assert_array_equal(np.load(out), got["pb"]["classes"])


def test_predict_names_what_is_wrong_with_a_format(exported, tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    sm = str(layout.exported(exported / "a", "saved_model"))
    assert cli.main(["predict", sm, "--input", str(tmp_path / "x.npy"), "--signature", "nope"]) == 1
    assert "no 'nope' signature (signatures: serving_default)" in capsys.readouterr().err
    lite = str(layout.exported(exported / "a", "tflite"))
    np.save(tmp_path / "wide.npy", np.ones((2, 7), np.float32))
    assert cli.main(["predict", lite, "--input", str(tmp_path / "wide.npy")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tfpersist: error: ")
    assert cli.main(["predict", lite, "--input", f"nope={tmp_path / 'x.npy'}"]) == 1
    assert "no input 'nope'; its inputs are x" in capsys.readouterr().err
    # the TensorFlow-graph commands name the format instead of "not a GraphDef"
    assert cli.main(["inspect", lite]) == 1
    assert "a TFLite flatbuffer, not a TensorFlow graph; 'tfpersist predict'" in (
        capsys.readouterr().err
    )
    (tmp_path / "junk.tflite").write_bytes(b"\0\0\0\0TFL3junk")
    assert (
        cli.main(["predict", str(tmp_path / "junk.tflite"), "--input", str(tmp_path / "x.npy")])
        == 1
    )
    assert (
        "cannot load the TFLite model (The model is not a valid Flatbuffer"
        in capsys.readouterr().err
    )


def test_hostile_onnx_and_tflite_are_refused_before_they_run(tf, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    np.save(tmp_path / "x.npy", X)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    custom = helper.make_node("Exfiltrate", ["x"], ["y"], domain="evil.ops")
    graph = helper.make_graph([custom], "g", [x], [y])
    onnx.save(helper.make_model(graph), tmp_path / "custom.onnx")
    # an initializer whose bytes live "outside": ../../etc/passwd
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0] * 4)
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../../../etc/passwd")
    add = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph([add], "g", [x], [y], initializer=[w])
    (tmp_path / "external.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    for name, why in (
        ("custom", "custom domains (evil.ops)"),
        ("external", "outside its directory"),
    ):
        args = ["predict", str(tmp_path / f"{name}.onnx"), "--input", str(tmp_path / "x.npy")]
        assert cli.main(args) == 1
        err = capsys.readouterr().err
        assert "refusing to run an ONNX model with" in err and why in err, err

    # a .tflite that falls back to TensorFlow's ReadFile (a "Flex" op)
    class Reader(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def read(self, names):
            return {"bytes": tf.map_fn(tf.io.read_file, names)}

    module = Reader()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.read.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    (tmp_path / "reader.tflite").write_bytes(converter.convert())
    np.save(tmp_path / "names.npy", np.array([b"/etc/hostname"], dtype=object), allow_pickle=True)
    args = ["predict", str(tmp_path / "reader.tflite"), "--input", str(tmp_path / "x.npy")]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "refusing to run" in err and "ReadFile (reads files)" in err, err


def test_the_linear_architecture_ships_every_default_format(tf, tmp_path):
    """params.yaml's export.formats as the export stage ships them, for the architecture the
    README offers beside mlp and cnn (those two run through the real pipeline in
    tests/test_readme.py, the cnn without opencv): nothing left out, all held to the graph."""
    import yaml

    from tfpersist.pipeline import model as model_lib
    from tfpersist.pipeline.params import ExportParams, ModelParams

    from conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["arch"] = "linear"
    model, export = ModelParams.from_params(params), ExportParams.from_params(params)
    graph, _, _ = model_lib.inference_graph(model, 64, 10)
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        frozen = freeze.freeze_session(sess, model.output_nodes)
    sig = shipping.Signature([model.input_node], model.output_nodes)
    out = tmp_path / "export"
    report = shipping.ship(
        frozen,
        out,
        sig,
        list(export.formats),
        tolerance=export.tolerance,
        leave_out_unsupported=True,
    )
    assert sorted(report["formats"]) == sorted(export.formats) and report["left_out"] == {}
    for fmt in export.formats:
        assert layout.exported(out, fmt).exists(), fmt


def test_a_class_id_is_reported_by_how_often_it_agrees_not_as_a_distance(exported):
    """A dynamically quantized TFLite is measured, not held: its float outputs by their max
    abs difference, its class ids by how often they are the frozen graph's — a class 4 for a
    0 is not "a difference of 4"."""
    graph_def = graphdefs.read_graph_def(exported / "model.pb")
    sig = shipping.Signature(["x"], ["probabilities", "classes"])
    report = shipping.ship(graph_def, exported / "q", sig, ["tflite"], "dynamic")
    info = report["formats"]["tflite"]
    assert sorted(info["max_abs_diff"]) == ["probabilities"]
    assert sorted(info["equal"]) == ["classes"] and 0 <= info["equal"]["classes"] <= 1
    assert (
        shipping.difference(
            {"max_abs_diff": {"probabilities": 2.5e-3}, "equal": {"classes": 0.984375}}, "graph"
        )
        == "max abs difference to the frozen graph 0.0025, classes equal for 98.4%"
    )
    assert (
        shipping.difference(
            {"max_abs_diff": {"probabilities": 0.0}, "equal": {"classes": 1.0}}, "model"
        )
        == "max abs difference to the frozen model 0"
    )
