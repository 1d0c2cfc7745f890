"""Graph surgery on GraphDefs of a few nodes: pin, prune, rename, state checks, libraries."""

from __future__ import annotations

import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.graph import surgery


@pytest.fixture(scope="module")
def v1(tf):
    return tf.compat.v1


def graph(tf, build):
    g = tf.Graph()
    with g.as_default():
        build()
    return g.as_graph_def()


def run(tf, graph_def, fetches, feed=None):
    g = tf.Graph()
    with g.as_default():
        tf.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as sess:
            return sess.run(fetches, feed or {})


def flag_graph(tf, v1):
    def build():
        x = v1.placeholder(tf.float32, [None], name="x")
        flag = v1.placeholder_with_default(False, [], name="flag")
        tf.identity(v1.cond(flag, lambda: x * 2.0, lambda: x + 1.0), name="y")

    return graph(tf, build)


def lowered(g):
    """TF2 behaviour builds a functional If: lower it to Switch/Merge as freezing does."""
    g = surgery.lower_functional_conditionals(g, ["y"])
    surgery.clear_devices(g)
    return g


def dropout_flag_graph(tf, v1):
    def build():
        x = v1.placeholder(tf.float32, [None], name="x")
        flag = v1.placeholder_with_default(False, [], name="flag")
        tf.identity(
            v1.cond(flag, lambda: tf.nn.dropout(x, rate=0.5, seed=1), lambda: x + 1.0), name="y"
        )

    return graph(tf, build)


def test_a_flag_whose_dead_branch_draws_random_is_pinned_and_pruned(tf, v1):
    g = dropout_flag_graph(tf, v1)
    assert surgery.pin(g, {}) == {"flag": False}
    g = lowered(g)
    assert {"Switch", "Merge"} <= {n.op for n in g.node}
    assert surgery.prune_dead_branches(g) > 0
    g = tf.compat.v1.graph_util.extract_sub_graph(g, ["y"])
    assert not {"Switch", "Merge"} & {n.op for n in g.node}
    assert not [n.op for n in g.node if surgery.is_random(n.op)]
    assert run(tf, g, "y:0", {"x:0": [1.0, 2.0]}).tolist() == [2.0, 3.0]


def test_a_pure_switch_stays_a_live_input(tf, v1):
    """``use_abs``-style: both branches are inference; pinning would take a client's input."""
    g = flag_graph(tf, v1)
    assert not surgery.needs_pinning(g, "flag")
    assert surgery.pin(g, {}) == {}
    assert [n.op for n in g.node if n.name == "flag"] == ["PlaceholderWithDefault"]
    g = lowered(g)
    assert surgery.prune_dead_branches(g) == 0
    assert run(tf, g, "y:0", {"x:0": [1.0]}).tolist() == [2.0]  # its default
    assert run(tf, g, "y:0", {"x:0": [1.0], "flag:0": True}).tolist() == [2.0]


def test_needs_pinning_reads_tf1_switches_and_tf2_ifs(tf, v1):
    def tf1_graph():
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [None], name="x")
            flag = v1.placeholder_with_default(False, [], name="flag")
            keep = v1.placeholder_with_default(True, [], name="keep")
            v = v1.get_variable("v", initializer=[0.0], use_resource=False)
            # TF1 control flow: Switch/Merge in the graph itself
            from tensorflow.python.ops import cond as cond_lib

            bumped = cond_lib.cond(
                flag, lambda: tf.identity(v1.assign_add(v, [1.0])) + x, lambda: x, name="c1"
            )
            tf.identity(v1.cond(keep, lambda: bumped, lambda: -bumped), name="y")
        return g.as_graph_def()

    v1.disable_control_flow_v2()
    try:
        g = tf1_graph()
    finally:
        v1.enable_control_flow_v2()
    assert "Switch" in {n.op for n in g.node}
    assert surgery.needs_pinning(g, "flag")  # its dead branch assigns
    assert not surgery.needs_pinning(g, "keep")  # a pure switch
    # the same with TF2's functional If: its untaken branch function is read
    assert surgery.needs_pinning(dropout_flag_graph(tf, v1), "flag")


def test_pin_a_value_and_keep_a_placeholder_live(tf, v1):
    g = dropout_flag_graph(tf, v1)
    assert surgery.pin(g, {"flag": "true"}) == {"flag": True}
    g = lowered(g)
    surgery.prune_dead_branches(g)
    assert {n.op for n in g.node} & {"RandomUniform"}
    live = dropout_flag_graph(tf, v1)
    assert surgery.pin(live, {}, live=["flag"]) == {}
    live = lowered(live)
    assert surgery.prune_dead_branches(live) == 0
    assert run(tf, live, "y:0", {"x:0": [1.0]}).tolist() == [2.0]
    with pytest.raises(TfpersistError, match="--keep-placeholder y: 'y' is a Identity"):
        surgery.pin(flag_graph(tf, v1), {}, live=["y"])
    with pytest.raises(TfpersistError, match="also pinned with --set"):
        surgery.pin(flag_graph(tf, v1), {"flag": "true"}, live=["flag"])


def test_lowering_adds_no_attribute_an_op_does_not_define(tf, v1):
    """Reading ``node.attr["Tout"]`` on a kept MatMul inserted an empty Tout (a protobuf
    map inserts on read); TensorFlow then logs 'NodeDef mentions attribute Tout'."""
    from tfpersist.graph import graphdefs

    def build():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        flag = v1.placeholder_with_default(False, [], name="flag")
        y = tf.cond(flag, lambda: tf.abs(x), lambda: x)
        tf.matmul(y, tf.ones([2, 2]), name="out")

    g = graph(tf, build)
    done = surgery.lower_functional_conditionals(g, ["out"])
    assert graphdefs.undefined_attrs(done) == []
    assert "Tout" not in next(n for n in done.node if n.name == "out").attr


def test_parse_value_keeps_scalars_scalar():
    assert surgery.parse_value("3", 3).shape == ()
    assert surgery.parse_value("1,2", 1).tolist() == [1.0, 2.0]
    with pytest.raises(TfpersistError, match="cannot read 'x' as int32"):
        surgery.parse_value("x", 3)
    with pytest.raises(TfpersistError, match="cannot read '300' as uint8"):
        surgery.parse_value("300", 4)  # out of range: one line, not NumPy's OverflowError


def test_rename_moves_references_and_skips_taken_names(tf, v1):
    def build():
        x = v1.placeholder(tf.float32, [], name="x")
        tf.identity(tf.identity(x, name="a"), name="b")

    g = graph(tf, build)
    assert surgery.rename(g, {"a": "renamed", "b": "x"}) == {"a": "renamed"}
    assert [n.input[:] for n in g.node if n.name == "b"] == [["renamed"]]


def test_check_stateless_names_the_output_and_the_assignment(tf, v1):
    def build():
        v = v1.get_variable("v", [2], initializer=v1.zeros_initializer(), use_resource=False)
        with tf.control_dependencies([v1.assign(v, v + 1, name="bump")]):
            tf.identity(v, name="y")
        tf.identity(v, name="z")

    g = graph(tf, build)
    surgery.check_stateless(g, ["z"], "m")
    with pytest.raises(TfpersistError, match=r"m: output 'y' depends on 'bump' \(Assign\)"):
        surgery.check_stateless(g, ["y"], "m")


def test_check_stateless_looks_inside_functions(tf):
    v = None

    def build():
        nonlocal v
        v = tf.Variable(1.0, name="v")

        @tf.function
        def bump():
            v.assign_add(1.0)
            return v.read_value()

        tf.identity(bump(), name="y")

    g = graph(tf, build)
    with pytest.raises(TfpersistError, match=r"its function runs AssignAddVariableOp"):
        surgery.check_stateless(g, ["y"], "m")


def test_prune_library_drops_functions_nobody_calls(tf):
    def build():
        @tf.function
        def used(x):
            return x * 2.0

        @tf.function
        def unused(x):
            return x + 1.0

        x = tf.constant(1.0)
        tf.identity(used(x), name="y")
        tf.identity(unused(x), name="z")

    g = graph(tf, build)
    kept = [n for n in g.node if n.name != "z" and "unused" not in n.attr["f"].func.name]
    del g.node[:]
    g.node.extend(kept)
    assert len(g.library.function) == 2
    surgery.prune_library(g)
    assert [f.signature.name for f in g.library.function] == [
        n.attr["f"].func.name for n in g.node if n.op.endswith("PartitionedCall")
    ]


def test_a_functional_if_named_as_output_survives_lowering(tf, v1):
    def build():
        x = v1.placeholder(tf.float32, [None], name="x")
        flag = v1.placeholder_with_default(False, [], name="flag")
        tf.cond(flag, lambda: (x * 2.0, x), lambda: (x + 1.0, x), name="branchy")

    g = graph(tf, build)
    assert {n.op for n in g.node if n.name == "branchy"} <= {"If", "StatelessIf"}
    surgery.pin(g, {})
    lowered = surgery.lower_functional_conditionals(g, ["branchy"])
    surgery.clear_devices(lowered)
    surgery.prune_dead_branches(lowered)
    node = next(n for n in lowered.node if n.name == "branchy")
    assert node.op == "IdentityN"
    got = run(tf, lowered, ["branchy:0", "branchy:1"], {"x:0": [1.0]})
    assert [a.tolist() for a in got] == [[2.0], [1.0]]


def test_attributes_an_op_does_not_define_are_found_and_dropped(tf, v1):
    """The op registry decides, node by node (a function's node may share a graph node's
    name); TensorFlow's own ``_`` annotations are left alone."""
    from tfpersist.graph import graphdefs

    def build():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        tf.matmul(x, tf.ones([2, 2]), name="out")

    g = graph(tf, build)
    out = next(n for n in g.node if n.name == "out")
    out.attr["Tout"].SetInParent()  # what reading node.attr["Tout"] leaves behind
    out.attr["_note"].s = b"kept"
    assert graphdefs.undefined_attrs(g) == [("out", "MatMul", "Tout")]
    with pytest.raises(TfpersistError, match="'out' \\(MatMul\\) carries attribute 'Tout'"):
        graphdefs.serialize(g)
    graphdefs.drop_undefined_attrs(g)
    assert graphdefs.undefined_attrs(g) == [] and "_note" in out.attr
    assert set(out.attr) >= {"T", "transpose_a", "transpose_b"}
