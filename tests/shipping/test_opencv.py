"""OpenCV's dnn module runs the frozen model once opencv.py has rewritten it (tfpersist
export --to opencv); the rewrite leaves TensorFlow's bits alone, and what OpenCV would get
wrong is refused with one line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError
from tfpersist.graph import graphdefs
from tfpersist.shipping import opencv

from conftest import ROOT

RNG = np.random.default_rng(11)
X = RNG.normal(size=(9, 6)).astype(np.float32)


def tabular(tf, path):
    """The shapes a tabular model has and OpenCV's importer trips on: (x - mean) * scale,
    a dense layer whose bias is an AddV2 (what TF2 writes), a scalar added after a MatMul,
    c - x, and outputs that are Identity ops."""
    v1 = tf.compat.v1
    c = lambda shape: tf.constant(RNG.normal(size=shape).astype(np.float32))  # noqa: E731
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 6], name="x")
        h = (x - c([6])) * c([6])
        h = tf.nn.relu(tf.matmul(h, c([6, 8])) + c([8]))
        h = c([1, 8]) - h
        logits = tf.matmul(h, c([8, 4])) + 0.5
        tf.identity(tf.nn.softmax(logits), name="probabilities")
        tf.identity(tf.argmax(logits, 1), name="classes")
    from tfpersist.freezing import freeze

    freeze.write(graph.as_graph_def(), path, ["probabilities", "classes"])
    return graphdefs.read_graph_def(path)


def image_from_features(tf, path):
    """A reshape of [batch, 16] to a 4×4 image before a convolution (model.arch cnn)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 16], name="x")
        image = tf.reshape(x, [-1, 4, 4, 1])
        kernel = tf.constant(RNG.normal(size=(3, 3, 1, 2)).astype(np.float32))
        flat = tf.reshape(tf.nn.conv2d(image, kernel, 1, "SAME"), [-1, 32])
        tf.nn.softmax(tf.matmul(flat, tf.constant(np.ones((32, 3), np.float32))), name="p")
    from tfpersist.freezing import freeze

    freeze.write(graph.as_graph_def(), path, ["p"])


def run_tf(tf, graph_def, x, outputs):
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        tf.import_graph_def(graph_def, name="")
        return sess.run([f"{n}:0" for n in outputs], {"x:0": x})


def test_opencv_runs_the_rewritten_graph_and_not_the_original(tf, tmp_path):
    graph_def = tabular(tf, tmp_path / "model.pb")
    names = ["probabilities", "classes"]
    with pytest.raises(TfpersistError, match="OpenCV cannot run it"):
        opencv.OpenCVModel(tmp_path / "model.pb", names).run({"x": X})

    rewritten = opencv.rewrite(graph_def, names)
    (tmp_path / "opencv.pb").write_bytes(graphdefs.serialize(rewritten))
    # exact in TensorFlow: the same bits as the frozen graph
    want = run_tf(tf, graph_def, X, names)
    for a, b in zip(run_tf(tf, rewritten, X, names), want, strict=True):
        np.testing.assert_array_equal(a, b)
    # and OpenCV computes it, under the output names TensorFlow has (Identity outputs)
    got = opencv.OpenCVModel(tmp_path / "opencv.pb", names).run({"x": X})
    np.testing.assert_allclose(got["probabilities"], want[0], atol=1e-6)
    np.testing.assert_array_equal(got["classes"], want[1])
    assert got["classes"].dtype == np.int64 and got["classes"].shape == (9,)


def test_export_to_opencv_checks_parity_and_refuses_an_image_reshape(tf, tmp_path, capsys):
    tabular(tf, tmp_path / "model.pb")
    out = tmp_path / "out"
    assert (
        cli.main(["export", str(tmp_path / "model.pb"), "--out", str(out), "--to", "opencv"]) == 0
    )
    assert "opencv.pb: opencv" in capsys.readouterr().out
    again = tmp_path / "again"
    assert (
        cli.main(["export", str(tmp_path / "model.pb"), "--out", str(again), "--to", "opencv"]) == 0
    )
    assert (out / layout.OPENCV_FILE).read_bytes() == (again / layout.OPENCV_FILE).read_bytes()

    image_from_features(tf, tmp_path / "cnn.pb")
    cnn_out = tmp_path / "cnn"
    assert (
        cli.main(["export", str(tmp_path / "cnn.pb"), "--out", str(cnn_out), "--to", "opencv"]) == 1
    )
    err = capsys.readouterr().err
    assert "reshapes [batch, features] to an image" in err and "give OpenCV the onnx export" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not cnn_out.exists() or not any(cnn_out.iterdir())
    # ... and the ONNX export of that model is what OpenCV reads right
    assert (
        cli.main(["export", str(tmp_path / "cnn.pb"), "--out", str(cnn_out), "--to", "onnx"]) == 0
    )
    import cv2

    net = cv2.dnn.readNetFromONNX(str(cnn_out / layout.ONNX_FILE))
    x = RNG.normal(size=(5, 16)).astype(np.float32)
    net.setInput(x)
    graph_def = graphdefs.read_graph_def(tmp_path / "cnn.pb")
    np.testing.assert_allclose(net.forward("p"), run_tf(tf, graph_def, x, ["p"])[0], atol=1e-6)


def test_opencv_refuses_a_graph_with_ops_outside_the_allowlist(tf, tmp_path):
    """The OpenCV runner reads only graphs the inference allowlist admits (it is handed the
    export's own output, but checks anyway before OpenCV's parser sees it)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.string, [], name="x")
        tf.io.read_file(x, name="y")
    (tmp_path / "bad.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(TfpersistError, match="outside the inference allowlist: ReadFile"):
        opencv.OpenCVModel(tmp_path / "bad.pb", ["y"])


def test_what_opencv_reads_as_shipped(tf, tmp_path):
    """docs/shipping.md's table, OpenCV's column: the frozen graph fails on its normalisation
    ("'dims' is 2"), the .tflite on ArgMax; the .onnx runs (test above: cnn too)."""
    import cv2

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 6], name="x")
        y = tf.matmul(
            x - np.arange(6, dtype=np.float32), RNG.normal(size=(6, 3)).astype(np.float32)
        )
        tf.argmax(y, 1, name="classes")
    from tfpersist.freezing import freeze

    freeze.write(graph.as_graph_def(), tmp_path / "model.pb", ["classes"])
    with pytest.raises(TfpersistError, match="'dims' is 2"):
        opencv.OpenCVModel(tmp_path / "model.pb", ["classes"]).run({"x": X})
    out = tmp_path / "out"
    args = ["export", str(tmp_path / "model.pb"), "--out", str(out)]
    assert cli.main([*args, "--to", "tflite,onnx,opencv"]) == 0
    with pytest.raises(cv2.error, match="ARG_MAX"):
        cv2.dnn.readNetFromTFLite(str(out / layout.TFLITE_FILE))
    want = run_tf(tf, graphdefs.read_graph_def(tmp_path / "model.pb"), X, ["classes"])[0]
    assert len(set(want)) > 1
    net = cv2.dnn.readNetFromONNX(str(out / layout.ONNX_FILE))
    net.setInput(X)
    np.testing.assert_array_equal(net.forward("classes"), want)
    got = opencv.OpenCVModel(out / layout.OPENCV_FILE, ["classes"]).run({"x": X})
    np.testing.assert_array_equal(got["classes"], want)


sys.path.insert(0, str(ROOT / "tests" / "ported"))
from opencv_cases import CASES, L1, LINF, OPENCV_WRONG  # noqa: E402


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=OPENCV_WRONG[n]))
        if n in OPENCV_WRONG
        else n
        for n in CASES
    ],
)
def test_opencvs_own_importer_cases_survive_the_rewrite(tf, tmp_path, name):
    """OpenCV's TensorFlow-importer test models (tests/ported/opencv_cases.py), frozen,
    rewritten and run by OpenCV: TensorFlow's bits unchanged by the rewrite, OpenCV within
    its own test tolerances of TensorFlow."""
    from tfpersist.freezing import freeze

    graph = tf.Graph()
    with graph.as_default():
        input_node, output_node, shape = CASES[name](tf, tf.compat.v1, np.random.default_rng(2701))
    freeze.write(graph.as_graph_def(), tmp_path / "model.pb", [output_node])
    frozen = graphdefs.read_graph_def(tmp_path / "model.pb")
    rewritten = opencv.rewrite(frozen, [output_node])
    assert graphdefs.undefined_attrs(rewritten) == []  # valid for every consumer
    (tmp_path / "opencv.pb").write_bytes(graphdefs.serialize(rewritten))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def run(graph_def):
        with tf.compat.v1.Session(graph=tf.Graph()) as sess:
            tf.import_graph_def(graph_def, name="")
            return sess.run(f"{output_node}:0", {f"{input_node}:0": x})

    want = run(frozen)
    np.testing.assert_array_equal(run(rewritten), want)
    got = opencv.OpenCVModel(tmp_path / "opencv.pb", [output_node]).run({input_node: x})
    got = got[output_node].reshape(want.shape)
    diff = np.abs(got.astype(np.float64) - want)
    assert diff.mean() <= L1 and diff.max() <= LINF, (diff.mean(), diff.max())


def test_a_graph_tensorflow_cannot_import_is_refused_with_one_line(tf):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.node.add(name="x", op="NoSuchOp")
    with pytest.raises(TfpersistError, match=r"cannot rewrite the graph for OpenCV .*NoSuchOp"):
        opencv.rewrite(graph_def, ["x"])
