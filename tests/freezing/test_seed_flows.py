"""The seed project's three flows, as other TF1 projects write them (plain tf.compat.v1)."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist.freezing import freeze
from tfpersist.running.runner import Runner


def seed_graph(tf, op: str):
    """``input_holder * W1 + B1`` with W1=5, B1=1, plus the seed's output node."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None], name="input_holder")
        w = v1.get_variable("W1", initializer=5.0)
        b = v1.get_variable("B1", initializer=1.0)
        if op == "greater":
            y = tf.add(x * w, b, name="y")
            tf.greater(y, 50.0, name="predictions")
        else:
            tf.add(x * w, b, name="add")
        init = v1.global_variables_initializer()
    return graph, init


def save_seed_checkpoint(tf, directory):
    """The seed's CKPT: the ``greater`` graph saved with a plain ``Saver``."""
    v1 = tf.compat.v1
    graph, init = seed_graph(tf, "greater")
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        v1.train.Saver().save(sess, str(directory / "model.ckpt"))


def test_ckpt_saved_restored_predicts_true(tf, tmp_path):
    save_seed_checkpoint(tf, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint",
        "model.ckpt.data-00000-of-00001",
        "model.ckpt.index",
        "model.ckpt.meta",
    ]
    with Runner.from_checkpoint(tmp_path) as model:
        out = model.run(np.array([10.0, 9.0], np.float32), "input_holder", ["predictions"])
    assert out["predictions"].tolist() == [True, False]


def test_add_frozen_from_live_session(tf):
    v1 = tf.compat.v1
    graph, init = seed_graph(tf, "add")
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        frozen = freeze.freeze_session(sess, ["add"])
    assert len(frozen.node) <= 9
    assert not [n.op for n in frozen.node if "Variable" in n.op]
    with Runner.from_graph_def(frozen) as model:
        out = model.run(np.array([12.0], np.float32), "input_holder", ["add"])
    assert out["add"].tolist() == [61.0]


def test_ckpt_to_pb_with_comma_separated_outputs(tf, tmp_path):
    save_seed_checkpoint(tf, tmp_path)
    frozen = freeze.freeze_checkpoint(tmp_path, "y,predictions")
    freeze.write(frozen, tmp_path / "model.pb", ["y", "predictions"])
    with Runner.from_frozen(tmp_path / "model.pb") as model:
        out = model.run(np.array([10.0, 2.0], np.float32), "input_holder", ["y", "predictions"])
    assert out["y"].tolist() == [51.0, 11.0]
    assert out["predictions"].tolist() == [True, False]


def test_unknown_output_node_names_close_ones(tf, tmp_path):
    save_seed_checkpoint(tf, tmp_path)
    with pytest.raises(freeze.TfpersistError, match=r"'prediction' .*closest: predictions"):
        freeze.freeze_checkpoint(tmp_path / "model.ckpt", "prediction")
