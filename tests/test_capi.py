"""capi.py: TensorFlow's C library without its Python layer gives TensorFlow's own answers —
the op registry op_def_registry reads, the dtypes and shapes import_graph_def infers — and
TensorFlow imported later in the same process still works."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.tfapi import capi, dtypes, protos

from conftest import ROOT, env


def test_every_op_is_defined_as_tensorflows_registry_defines_it(tf):
    from tensorflow.python.framework import op_def_registry

    names = list(capi._read_registry())
    assert len(names) > 1500
    for name in names:
        assert _without_docs(capi.op_def(name)) == _without_docs(op_def_registry.get(name)), name
    assert capi.op_def("NoSuchOp") is None
    # ops that only TensorFlow's Python layer registers are found once it is loaded
    assert capi.op_def("AudioMicrofrontend") is not None


def _without_docs(op_def) -> bytes:
    """An OpDef's bytes without its documentation (for some 170 internal ops TensorFlow's
    Python layer registers a copy without it)."""
    op = type(op_def)()
    op.CopyFrom(op_def)
    for part in (op, *op.input_arg, *op.output_arg, *op.attr):
        for field in ("summary", "description"):
            if field in part.DESCRIPTOR.fields_by_name:
                part.ClearField(field)
    return op.SerializeToString(deterministic=True)


def test_dtypes_and_shapes_are_those_tensorflow_infers(tf):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 1], name="x")
        n = v1.placeholder(tf.int32, None, name="n")  # unknown rank
        k = tf.constant(np.ones((3, 3, 1, 4), np.float32), name="k")
        conv = tf.nn.conv2d(x, k, strides=2, padding="SAME", name="conv")
        flat = tf.reshape(conv, [-1, 64], name="flat")
        w = tf.constant(np.ones((64, 10), np.float32), name="w")
        logits = tf.matmul(flat, w, name="logits")
        tf.nn.softmax(logits, name="probabilities")
        tf.argmax(logits, 1, name="predictions")
        tf.unstack(tf.reshape(logits, [-1, 2, 5]), axis=1, name="parts")
        tf.identity(n + 1, name="m")
        tf.cast(tf.shape(x), tf.float64, name="shape")
    graph_def = graph.as_graph_def()
    with capi.Graph(graph_def) as ours:
        for op in graph.get_operations():
            want = [
                (t.dtype.as_datatype_enum, None if t.shape.rank is None else t.shape.as_list())
                for t in op.outputs
            ]
            assert ours.outputs(op.name) == want, op.name
        assert dtypes.as_dtype(ours.output("predictions")[0]).name == "int64"
        with pytest.raises(TfpersistError, match="'parts:7' is not a tensor"):
            ours.output("parts", 7)


def test_a_graph_that_does_not_import_is_one_line():
    graph_def = protos.GraphDef()
    graph_def.node.add(name="y", op="Softmax", input=["x"])
    with pytest.raises(TfpersistError, match=r"^the graph does not import into TensorFlow \("):
        capi.Graph(graph_def)


LIBRARY_FIRST = """
import sys
from tfpersist.tfapi import capi, protos
graph_def = protos.GraphDef()
node = graph_def.node.add(name="x", op="Placeholder")
node.attr["dtype"].type = 1
with capi.Graph(graph_def) as g:
    assert g.output("x") == (1, None)
assert capi.loaded() and "tensorflow" not in sys.modules
from tfpersist.tfapi.tfcompat import import_tf
tf = import_tf()
with tf.Graph().as_default() as graph:
    tf.graph_util.import_graph_def(graph_def, name="")
    y = graph.get_tensor_by_name("x:0") * 2.0
    with tf.compat.v1.Session() as s:
        print(s.run(y, {"x:0": 1.5}))
print(float(tf.constant(3.0) + 1))  # eager too
"""


def test_tensorflow_imported_after_the_library_works():
    out = subprocess.run(
        [sys.executable, "-c", LIBRARY_FIRST],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["3.0", "4.0"]


def test_an_op_registered_after_the_registry_was_read_is_found():
    code = (
        "from tfpersist.tfapi import capi\n"
        "assert capi.op_def('AudioMicrofrontend') is None\n"  # not in the C library alone
        "from tfpersist.tfapi.tfcompat import import_tf\n"
        "import_tf()\n"  # TensorFlow's Python layer registers it
        "print(capi.op_def('AudioMicrofrontend').name, capi.op_def('NoSuchOp'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True, text=True
    )
    assert out.stdout.split() == ["AudioMicrofrontend", "None"], out.stderr[-2000:]


KEPT = (
    "import sys\n"
    "from tfpersist.tfapi import capi\n"
    "for op in sys.argv[1:]:\n"
    "    found = capi.op_def(op)\n"
    "    print(op, found.SerializeToString(deterministic=True).hex() if found else None)\n"
    "print('loaded', capi.loaded())\n"
)


def _kept(tmp_path, *ops: str, **extra) -> list[str]:
    e = {**env(), "TFPERSIST_CACHE": str(tmp_path), **extra}
    out = subprocess.run(
        [sys.executable, "-c", KEPT, *ops], cwd=ROOT, env=e, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("\n")[:-1]


def test_the_op_registry_is_kept_and_the_next_process_does_not_load_the_library(tmp_path):
    first = _kept(tmp_path, "MatMul", "SaveV2", "NoSuchOp")
    assert first[-1] == "loaded True" and first[2] == "NoSuchOp None"
    (kept,) = tmp_path.glob("op-registry-*.pb")
    assert kept.name == capi.registry_cache().name  # one file per build of the library
    second = _kept(tmp_path, "MatMul", "SaveV2")
    assert second == [*first[:2], "loaded False"]  # the library's own answers, not loaded
    # an op the kept registry lacks is looked up in the library
    assert _kept(tmp_path, "MatMul", "NoSuchOp")[-1] == "loaded True"
    # a damaged file is read from the library again, and kept anew
    kept.write_bytes(b"\xff\xff not an OpList")
    assert _kept(tmp_path, "MatMul", "SaveV2") == [*first[:2], "loaded True"]
    assert _kept(tmp_path, "MatMul", "SaveV2") == [*first[:2], "loaded False"]
    # "off": nothing kept, nothing read
    off = tmp_path / "off"
    assert _kept(off, "MatMul", TFPERSIST_CACHE="off") == [first[0], "loaded True"]
    assert not off.exists()


def test_a_registry_with_pythons_ops_is_not_kept(tmp_path):
    """TensorFlow's Python layer registers ops the library alone lacks (AudioMicrofrontend):
    a registry read after it loaded would answer otherwise than the library."""
    code = (
        "from tfpersist.tfapi.tfcompat import import_tf\n"
        "import_tf()\n"
        "from tfpersist.tfapi import capi\n"
        "print(capi.op_def('MatMul').name)\n"
    )
    e = {**env(), "TFPERSIST_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=e, capture_output=True)
    assert out.stdout.split() == [b"MatMul"], out.stderr[-2000:]
    assert not list(tmp_path.iterdir())
