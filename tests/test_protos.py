"""protos.py and dtypes.py: TensorFlow's messages and data types without importing TensorFlow,
and one set of classes in a process that imports TensorFlow before or after."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, env

PROTOS_FIRST = """
import sys
from google.protobuf import descriptor_pool
from tfpersist.tfapi import protos
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("tensorflow"))
graph = protos.GraphDef()
node = graph.node.add(name="x", op="Placeholder")
node.attr["dtype"].type = 1
meta = protos.MetaGraphDef()
meta.graph_def.CopyFrom(graph)

from tfpersist.tfapi.tfcompat import import_tf
tf = import_tf()
from tensorflow.core.framework import graph_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2, tensor_bundle_pb2
assert tf.compat.v1.GraphDef is protos.GraphDef is graph_pb2.GraphDef
framework = sys.modules["tensorflow.core.framework"]  # its modules are its attributes too
assert framework.graph_pb2.GraphDef is protos.GraphDef
assert meta_graph_pb2.MetaGraphDef is protos.MetaGraphDef
assert saved_model_pb2.SavedModel is protos.SavedModel
assert tensor_bundle_pb2.BundleEntryProto is protos.BundleEntryProto
pool = descriptor_pool.Default()
assert pool.FindMessageTypeByName("tensorflow.GraphDef") is protos.GraphDef.DESCRIPTOR
with tf.Graph().as_default() as g:
    tf.graph_util.import_graph_def(meta.graph_def, name="")
    y = g.get_tensor_by_name("x:0") * 2.0
    v = tf.compat.v1.get_variable("v", initializer=[3.0])
    with tf.compat.v1.Session() as s:
        s.run(v.initializer)
        print(s.run(y, {"x:0": 1.5}), s.run(v)[0])
        tf.compat.v1.train.Saver().save(s, sys.argv[1])
    assert type(g.as_graph_def()) is protos.GraphDef
tf.saved_model.save(tf.Module(), sys.argv[1] + "-saved")
print(tf.train.load_checkpoint(sys.argv[1]).get_tensor("v")[0])
"""

TF_FIRST = """
import sys
import tensorflow as tf
from tfpersist.tfapi import protos
assert protos.GraphDef is tf.compat.v1.GraphDef
from tensorflow.core.protobuf import trackable_object_graph_pb2
assert protos.TrackableObjectGraph is trackable_object_graph_pb2.TrackableObjectGraph
print("ok")
"""


def python(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_tensorflow_imported_after_uses_the_same_messages(tmp_path):
    """Messages made before TensorFlow is imported go into its graphs, sessions, savers and
    SavedModels, and TensorFlow's own modules are the ones protos loaded."""
    out = python(PROTOS_FIRST, str(tmp_path / "ckpt")).split()
    assert out == ["3.0", "3.0", "3.0"]


def test_tensorflow_imported_before_is_used_as_it_is():
    assert python(TF_FIRST).strip() == "ok"


def test_every_data_type_as_tensorflow_names_and_sizes_it(tf):
    from tfpersist.core.errors import TfpersistError
    from tfpersist.tfapi import dtypes, protos

    seen = 0
    for name, enum in protos.types_pb2.DataType.items():
        if enum == 0:  # DT_INVALID: TensorFlow refuses it too
            with pytest.raises(TfpersistError, match="unknown TensorFlow data type 0"):
                dtypes.as_dtype(enum)
            continue
        theirs, ours = tf.dtypes.as_dtype(enum), dtypes.as_dtype(enum)
        assert (ours.name, ours.size, ours.is_floating) == (
            theirs.name,
            theirs.size,
            theirs.is_floating,
        ), name
        if ours.numpy is not None:
            assert ours.as_numpy().itemsize == theirs.size or theirs.size == 0, name
            if not name.startswith("DT_Q"):  # quantized: a record type in TF, its bytes here
                assert ours.as_numpy() == tf.dtypes.as_dtype(theirs.base_dtype).as_numpy_dtype
        assert dtypes.by_name(ours.name.removesuffix("_ref")).enum == enum % dtypes.REF
        seen += 1
    assert seen > 60
