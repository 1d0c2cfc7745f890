"""streaming.plan on graphs of a few nodes: which variables stream from which checkpoint key
(and slice), and which graphs it leaves to the session path (None)."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist.formats import bundles
from tfpersist.freezing import restore, streaming


@pytest.fixture(scope="module")
def v1(tf):
    return tf.compat.v1


def saved(tf, tmp_path, build, outputs=("y",)):
    """Build a graph (``build`` returns the Saver's var_list, None for all), save it, and
    return what freeze.py hands plan: (pruned graph, reader, full graph, saver_def)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)  # initializers are random ops: op determinism may be on
        saver = v1.train.Saver(build())
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    graph_def = graph.as_graph_def()
    pruned = v1.graph_util.extract_sub_graph(graph_def, list(outputs))
    return pruned, bundles.Bundle(prefix), graph_def, saver.as_saver_def()


def test_resource_variables_stream_from_their_saver_keys(tf, v1, tmp_path):
    def build():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.get_variable("w", [3, 2], use_resource=True)
        b = v1.get_variable("b", [2], dtype=tf.float64, use_resource=True)
        tf.add(tf.matmul(x, w), tf.cast(b, tf.float32), name="y")

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    plan = streaming.plan(pruned, reader, graph_def, saver_def)
    assert plan.keys == {"w": "w", "b": "b"}
    assert plan.slices == {"w": "", "b": ""}
    assert plan.dtypes == {"w": tf.float32.as_datatype_enum, "b": tf.float64.as_datatype_enum}
    # Without the saver, each variable is looked up under its own name: the same here.
    assert streaming.plan(pruned, reader).keys == plan.keys


def test_a_renamed_saver_key_is_followed(tf, v1, tmp_path):
    def build():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.get_variable("w", [3, 2], use_resource=True)
        tf.matmul(x, w, name="y")
        return {"dense/kernel": w}

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    assert set(reader.entries) == {"dense/kernel"}
    assert streaming.plan(pruned, reader, graph_def, saver_def).keys == {"w": "dense/kernel"}
    assert streaming.plan(pruned, reader) is None  # no key 'w' in the checkpoint


def test_a_partitioned_variable_streams_each_part_from_its_slice(tf, v1, tmp_path):
    def build():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        w = v1.get_variable(
            "w", [4, 3], partitioner=v1.fixed_size_partitioner(2), use_resource=True
        )
        tf.matmul(x, tf.concat(list(w), axis=0), name="y")

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    plan = streaming.plan(pruned, reader, graph_def, saver_def)
    assert plan.keys == {"w/part_0": "w", "w/part_1": "w"}
    assert plan.slices == {"w/part_0": "4 3 0,2:0,3", "w/part_1": "4 3 2,2:0,3"}
    full = reader.read("w")
    np.testing.assert_array_equal(restore.sliced(full, plan.slices["w/part_1"]), full[2:])


def test_a_reference_variable_read_by_value_streams_but_not_one_written(tf, v1, tmp_path):
    def build():
        x = v1.placeholder(tf.float32, [None], name="x")
        v = v1.Variable(np.float32(2.0), name="v", use_resource=False)
        assert v.op.type == "VariableV2"
        tf.multiply(x, v, name="y")  # Mul takes its input by value
        v1.assign_add(v, 1.0, name="bump")  # AssignAdd takes a reference

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    assert streaming.plan(pruned, reader, graph_def, saver_def).keys == {"v": "v"}
    bump = v1.graph_util.extract_sub_graph(graph_def, ["bump"])
    assert streaming.plan(bump, reader, graph_def, saver_def) is None


def test_a_resource_variable_used_other_than_through_a_read(tf, v1, tmp_path):
    def build():
        ids = v1.placeholder(tf.int32, [None], name="ids")
        table = v1.get_variable("table", [5, 2], use_resource=True)
        tf.identity(v1.nn.embedding_lookup(table, ids), name="y")  # ResourceGather

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    assert "ResourceGather" in {n.op for n in pruned.node}
    assert streaming.plan(pruned, reader, graph_def, saver_def) is None


def test_a_variable_stored_with_another_dtype(tf, v1, tmp_path):
    def build(dtype):
        def inner():
            v = v1.get_variable("v", [2], dtype=dtype, use_resource=True)
            tf.identity(v, name="y")

        return inner

    _, reader64, _, _ = saved(tf, tmp_path / "a", build(tf.float64))
    pruned32, reader32, _, _ = saved(tf, tmp_path / "b", build(tf.float32))
    assert streaming.plan(pruned32, reader32) is not None
    assert streaming.plan(pruned32, reader64) is None


def test_a_saver_whose_restore_op_is_not_a_plain_restore(tf, v1, tmp_path):
    def build():
        v = v1.get_variable("v", [2], use_resource=True)
        tf.identity(v, name="y")

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    saver_def.restore_op_name = "y"  # an Identity of a ReadVariableOp: no RestoreV2 behind it
    assert streaming.plan(pruned, reader, graph_def, saver_def) is None


def test_variables_beside_a_function_library_are_left_to_the_session_path(tf, v1, tmp_path):
    @tf.function
    def double(t):
        return t * 2.0

    def build():
        v = v1.get_variable("v", [2], use_resource=True)
        tf.identity(double(tf.identity(v)), name="y")  # the function gets a value, not v

    pruned, reader, graph_def, saver_def = saved(tf, tmp_path, build)
    assert pruned.library.function
    assert {n.op for n in pruned.node if "v" in n.input} == {"ReadVariableOp"}
    assert streaming.plan(pruned, reader, graph_def, saver_def) is None


def test_big_tensors_of_every_kind_stream_to_the_session_paths_bytes(tf, v1, tmp_path):
    """Past SPLICE_BYTES a tensor is written from its own buffer — but only where
    make_tensor_proto writes raw bytes: bool, complex and uint16 go to typed value fields."""
    from tfpersist.freezing import freeze
    from tfpersist.graph import graphdefs

    rng = np.random.default_rng(3)
    n = streaming.SPLICE_BYTES  # elements: at least SPLICE_BYTES bytes for every type
    values = {
        "f32": rng.standard_normal(n).astype(np.float32),
        "flag": rng.random(n) > 0.5,
        "c64": (rng.standard_normal(n) + 1j).astype(np.complex64),
        "u16": rng.integers(0, 65535, n).astype(np.uint16),
        "i64": rng.integers(-(2**40), 2**40, n),
    }
    graph = tf.Graph()
    with graph.as_default():
        for name, value in values.items():
            tf.identity(
                v1.get_variable(name, initializer=value, use_resource=False), name=f"y_{name}"
            )
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(tmp_path / "model.ckpt"))
    outputs = [f"y_{name}" for name in values]
    src = freeze.checkpoint_source(tmp_path, outputs)
    assert streaming.plan(src.pruned, bundles.Bundle(src.prefix), src.graph_def, src.saver_def)
    freeze.freeze_to_file(tmp_path, tmp_path / "streamed.pb", outputs)
    session = graphdefs.serialize(freeze.freeze_checkpoint(tmp_path, outputs))
    assert (tmp_path / "streamed.pb").read_bytes() == session
