"""Freezing options and SavedModel routes: live placeholders, signatures, the TF1 fallback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.formats import saved_models
from tfpersist.freezing import freeze
from tfpersist.graph import graphdefs
from tfpersist.running.runner import Runner

from conftest import ROOT

FOREIGN = ROOT / "tests" / "foreign" / "writers.py"


def tfpersist(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def tf1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("foreign_tf1")
    subprocess.run(
        [sys.executable, str(FOREIGN), str(root), "mlp_adam_v1", "bn_cond_v1"],
        check=True,
        capture_output=True,
    )
    return root


def test_keep_placeholder_leaves_a_training_flag_live(tf1, tmp_path, capsys):
    expected = dict(np.load(tf1 / "mlp_adam_v1" / "expected.npz"))
    out = tmp_path / "live.pb"
    args = ["--output-nodes", "probs", "--keep-placeholder", "training", "--out", out]
    assert tfpersist("freeze", tf1 / "mlp_adam_v1", *args) == 0
    graph_def = graphdefs.read_graph_def(out)
    flag = next(n for n in graph_def.node if n.name == "training")
    assert flag.op == "PlaceholderWithDefault"
    with Runner.from_graph_def(graph_def) as model:
        got = model.run(expected["input"], "features", ["probs"])
        training = model.sess.run("probs:0", {"features:0": expected["input"], "training:0": True})
    np.testing.assert_allclose(got["probs"], expected["probs"], atol=1e-6)
    assert not np.allclose(training, expected["probs"])  # dropout is live when fed True

    # Batch norm's training branch assigns the moving averages: a live flag cannot be frozen.
    bad = tmp_path / "bn.pb"
    args = ["--output-nodes", "logits", "--keep-placeholder", "is_training", "--out", bad]
    assert tfpersist("freeze", tf1 / "bn_cond_v1", *args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "which changes a variable" in err, err
    assert not bad.exists()
    assert (
        tfpersist(
            "freeze",
            tf1 / "bn_cond_v1",
            "--output-nodes",
            "logits",
            "--keep-placeholder",
            "nope",
            "--out",
            bad,
        )
        == 1
    )
    assert "--keep-placeholder nope: 'nope' is not in the graph" in capsys.readouterr().err


def two_signature_model(tf, path: Path) -> None:
    class Model(tf.Module):
        def __init__(self):
            self.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def scores(self, x):
            return {"scores": tf.matmul(x, self.w)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def echo(self, x):
            return {"x": x * 2.0, "total": tf.reduce_sum(x * self.w[0])}

    model = Model()
    tf.saved_model.save(
        model, str(path), signatures={"serving_default": model.scores, "echo": model.echo}
    )


def test_signature_choice_and_output_keys_that_collide_with_node_names(tf, tmp_path, capsys):
    saved = tmp_path / "saved"
    two_signature_model(tf, saved)
    x = np.array([[1.0, 1.0]], np.float32)
    out = tmp_path / "echo.pb"
    assert tfpersist("freeze", saved, "--signature", "echo", "--out", out) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    names = [o["name"] for o in card["signature"]["outputs"]]
    assert names == ["total", "x_output"]  # key 'x' is the input's name: not silently the input
    with Runner.from_frozen(out) as model:
        got = model.sess.run(["x_output:0", "total:0"], {"x:0": x})
    assert got[0].tolist() == [[2.0, 2.0]] and float(got[1]) == 3.0
    # --output-nodes takes the signature's keys, mapped to their nodes.
    assert (
        tfpersist("freeze", saved, "--signature", "echo", "--output-nodes", "x", "--out", out) == 0
    )
    with Runner.from_frozen(out) as model:
        assert model.sess.run("x_output:0", {"x:0": x}).tolist() == [[2.0, 2.0]]
    assert tfpersist("freeze", saved, "--signature", "nope", "--out", out) == 1
    err = capsys.readouterr().err
    assert "no 'nope' signature (signatures: echo, serving_default)" in err
    assert tfpersist("freeze", saved / "saved_model.pb", "--out", out) == 1
    assert "pass its directory" in capsys.readouterr().err


def test_a_savedmodel_the_tf2_loader_cannot_revive_is_frozen_through_its_meta_graph(tf, tmp_path):
    """A Keras-2-era SavedModel with optimizer slots fails to revive under Keras 3
    ('_UserObject' object has no attribute 'add_slot'); its meta graph still freezes."""
    saved = tmp_path / "saved"

    class Model(tf.Module):
        def __init__(self):
            self.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
            self.optimizer = tf.Module()  # revived as a plain object, as Keras 2's was
            self.w_m = tf.Variable(tf.zeros([2, 2]))  # its slot for w

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def scores(self, x):
            return {"scores": tf.matmul(x, self.w)}

    model = Model()
    tf.saved_model.save(model, str(saved), signatures={"serving_default": model.scores})
    proto = saved_models.read(saved)
    graph = proto.meta_graphs[0].object_graph_def
    ids = {ref.local_name: ref.node_id for ref in graph.nodes[0].children}
    graph.nodes[ids["optimizer"]].slot_variables.add(
        original_variable_node_id=ids["w"], slot_name="m", slot_variable_node_id=ids["w_m"]
    )
    (saved / "saved_model.pb").write_bytes(proto.SerializeToString())
    with pytest.raises(Exception, match="add_slot"):
        tf.saved_model.load(str(saved))
    graph_def, names = freeze.freeze(saved)
    assert names == ["scores"]
    with Runner.from_graph_def(graph_def) as model:
        inputs = [n.name for n in graph_def.node if n.op == "Placeholder"]
        got = model.sess.run("scores:0", {f"{inputs[0]}:0": np.array([[1.0, 1.0]], np.float32)})
    assert got.tolist() == [[4.0, 6.0]]


def test_a_keras_export_is_counted_once_and_its_weights_keep_their_names(tf, tmp_path, capsys):
    import keras

    # named: Keras numbers unnamed layers process-wide (other tests build models too)
    layers = [keras.layers.Dense(8, "relu", name="dense"), keras.layers.Dense(2, name="dense_1")]
    model = keras.Sequential([keras.Input((4,)), *layers], name="sequential")
    model.export(str(tmp_path / "exported"), verbose=False)
    assert tfpersist("inspect", tmp_path / "exported", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == 4 * 8 + 8 + 8 * 2 + 2  # Keras tracks each variable twice
    assert [v["name"] for v in info["variables"]] == [
        "sequential/dense/bias",
        "sequential/dense/kernel",
        "sequential/dense_1/bias",
        "sequential/dense_1/kernel",
    ]
    out = tmp_path / "k.pb"
    assert tfpersist("freeze", tmp_path / "exported", "--out", out) == 0
    graph_def = graphdefs.read_graph_def(out)
    consts = {n.name for n in graph_def.node if n.op == "Const"}
    assert {"sequential/dense/kernel", "sequential/dense_1/bias"} <= consts
    (feed,) = [n.name for n in graph_def.node if n.op == "Placeholder"]
    x = np.ones((3, 4), np.float32)
    with Runner.from_graph_def(graph_def) as frozen:
        got = frozen.sess.run("output_0:0", {f"{feed}:0": x})
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-6)


def test_freeze_says_what_it_pinned_and_keeps_a_pure_switch_live(tf, tmp_path, capsys):
    """A dropout flag must be pinned (its training branch draws random numbers); a switch
    callers feed (``use_abs``) must not vanish: it stays an input, fed by predict and serve."""
    from tfpersist.running import loaders
    from tfpersist.serving import jsontensor, rest

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        training = v1.placeholder_with_default(False, [], name="training")
        use_abs = v1.placeholder_with_default(False, [], name="use_abs")
        w = v1.get_variable("w", initializer=np.eye(3, 2, dtype=np.float32))
        h = tf.cond(use_abs, lambda: tf.abs(x), lambda: x)
        h = tf.cond(training, lambda: tf.nn.dropout(h, rate=0.5, seed=1), lambda: h)
        tf.matmul(h, w, name="out")
        with v1.Session(graph=graph) as sess:
            sess.run(w.initializer)
            v1.train.Saver().save(sess, str(tmp_path / "ckpt" / "model.ckpt"))
    out = tmp_path / "model.pb"
    assert tfpersist("freeze", tmp_path / "ckpt", "--output-nodes", "out", "--out", out) == 0
    said = capsys.readouterr().out
    assert "pinned placeholder 'training' to its default false" in said
    assert "--keep-placeholder training keeps it as an input" in said
    assert "kept placeholder 'use_abs' as an input with its default" in said
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["pinned"] == {"training": False}
    assert [t["name"] for t in card["signature"]["optional_inputs"]] == ["use_abs"]
    ops = {n.op for n in graphdefs.read_graph_def(out).node}
    assert not [op for op in ops if "Random" in op]  # the dropout branch is gone
    rows = np.array([[-1.0, 2.0, -3.0]], np.float32)
    np.save(tmp_path / "x.npy", rows)
    np.save(tmp_path / "on.npy", np.array(True))
    args = ["predict", out, "--input", f"x={tmp_path / 'x.npy'}", "--out"]
    assert tfpersist(*args, tmp_path / "default.json") == 0
    feed_on = ["--input", f"use_abs={tmp_path / 'on.npy'}"]
    assert tfpersist(*args, tmp_path / "abs.json", *feed_on) == 0
    assert json.loads((tmp_path / "default.json").read_text()) == {"out": [[-1.0, 2.0]]}
    assert json.loads((tmp_path / "abs.json").read_text()) == {"out": [[1.0, 2.0]]}
    model = loaders.open_model(out)
    try:
        meta = rest.metadata(model, "m")["metadata"]["signature_def"]["signature_def"]
        assert sorted(meta["serving_default"]["inputs"]) == ["use_abs", "x"]
        body = {"inputs": {"x": rows.tolist(), "use_abs": True}}
        _, feeds, kind = jsontensor.parse(body, None, model)
        assert rest.respond(model.run(feeds), kind) == {"outputs": [[1.0, 2.0]]}
        body = {"instances": rows.tolist()}  # one required input
        _, feeds, kind = jsontensor.parse(body, None, model)
        assert rest.respond(model.run(feeds), kind) == {"predictions": [[-1.0, 2.0]]}
    finally:
        model.close()
