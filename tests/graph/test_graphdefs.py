"""graphdefs.py on GraphDefs of a few nodes: extract_sub_graph as TensorFlow's."""

from __future__ import annotations

import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.graph import graphdefs


def test_extract_sub_graph_is_tensorflows(tf):
    """Inputs, control inputs and colocation kept, in the graph's order, library and
    versions copied: the same message tf.compat.v1.graph_util.extract_sub_graph returns."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        unused = tf.identity(x, name="unused")
        a = tf.add(x, 1.0, name="a")
        with tf.control_dependencies([tf.no_op(name="before")]):
            b = tf.multiply(a, 2.0, name="b")
        with graph.colocate_with(unused.op):
            c = tf.identity(b, name="c")
        tf.identity(c, name="out")
        tf.identity(x, name="other_out")
    graph_def = graph.as_graph_def()
    for outputs in (["out"], ["out", "other_out"], ["a"]):
        theirs = v1.graph_util.extract_sub_graph(graph_def, outputs)
        ours = graphdefs.extract_sub_graph(graph_def, outputs)
        assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
            deterministic=True
        ), outputs
    assert "unused" in {n.name for n in graphdefs.extract_sub_graph(graph_def, ["out"]).node}


def test_extract_sub_graph_refuses_in_one_line(tf):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.node.add(name="y", op="Identity", input=["gone:0"])
    with pytest.raises(TfpersistError, match="node 'y' takes an input from 'gone'"):
        graphdefs.extract_sub_graph(graph_def, ["y"])
    with pytest.raises(TfpersistError, match="output node 'z' is not in the graph"):
        graphdefs.extract_sub_graph(graph_def, ["z"])
