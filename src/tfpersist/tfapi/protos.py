"""TensorFlow's protocol buffer messages without importing TensorFlow.

``from tensorflow.core.framework import graph_pb2`` runs ``tensorflow/__init__.py`` first:
all of TensorFlow, ~2.4 s. The generated modules themselves need only protobuf. Here they are
imported from the installed TensorFlow package with its packages (``tensorflow``,
``tensorflow.core``, …) stood in for by bare module objects for the moment of the import —
their ``__init__`` not run — which are then taken out of ``sys.modules`` again. The ``_pb2``
modules stay: when TensorFlow is imported later in the process its own imports find them, so
there is one ``GraphDef`` class, one registration in protobuf's default pool, and messages
made before and after pass between tfpersist and TensorFlow as they are (tests/test_protos.py).

Where TensorFlow is already imported, its modules are used as they are.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys

_PACKAGES = (
    "tensorflow",
    "tensorflow.core",
    "tensorflow.core.framework",
    "tensorflow.core.protobuf",
)
_MODULES = {
    "graph": "tensorflow.core.framework.graph_pb2",
    "node_def": "tensorflow.core.framework.node_def_pb2",
    "attr_value": "tensorflow.core.framework.attr_value_pb2",
    "tensor": "tensorflow.core.framework.tensor_pb2",
    "tensor_shape": "tensorflow.core.framework.tensor_shape_pb2",
    "types": "tensorflow.core.framework.types_pb2",
    "function": "tensorflow.core.framework.function_pb2",
    "op_def": "tensorflow.core.framework.op_def_pb2",
    "meta_graph": "tensorflow.core.protobuf.meta_graph_pb2",
    "saver": "tensorflow.core.protobuf.saver_pb2",
    "saved_model": "tensorflow.core.protobuf.saved_model_pb2",
    "tensor_bundle": "tensorflow.core.protobuf.tensor_bundle_pb2",
    "trackable_object_graph": "tensorflow.core.protobuf.trackable_object_graph_pb2",
}


def _import_without_tensorflow(names: list[str]) -> list:
    if "tensorflow" in sys.modules:  # TensorFlow is here (or on its way): its own modules
        return [importlib.import_module(n) for n in names]
    stand_ins = []
    try:
        for package in _PACKAGES:
            parent = sys.modules.get(package.rpartition(".")[0])
            spec = importlib.machinery.PathFinder.find_spec(
                package, parent.__path__ if parent else None
            )
            if spec is None:
                raise ImportError(f"{package} is not installed (pip install tensorflow-cpu)")
            sys.modules[package] = importlib.util.module_from_spec(spec)  # __init__ not run
            stand_ins.append(package)
        return [importlib.import_module(n) for n in names]
    finally:
        for package in stand_ins:  # the real packages are imported when TensorFlow is
            del sys.modules[package]


def bind_to_packages() -> None:
    """Make each module loaded here an attribute of its (now real) package, as importing it
    under TensorFlow would have: ``tensorflow.core.framework.graph_pb2`` works dotted."""
    for name in _MODULES.values():
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and name in sys.modules:
            setattr(sys.modules[parent], child, sys.modules[name])


def _load() -> dict:
    modules = _import_without_tensorflow(list(_MODULES.values()))  # once: import is locked
    return dict(zip(_MODULES, modules, strict=True))


_pb2 = _load()
graph_pb2 = _pb2["graph"]
node_def_pb2 = _pb2["node_def"]
attr_value_pb2 = _pb2["attr_value"]
tensor_pb2 = _pb2["tensor"]
tensor_shape_pb2 = _pb2["tensor_shape"]
types_pb2 = _pb2["types"]
function_pb2 = _pb2["function"]
op_def_pb2 = _pb2["op_def"]
meta_graph_pb2 = _pb2["meta_graph"]
saver_pb2 = _pb2["saver"]
saved_model_pb2 = _pb2["saved_model"]
tensor_bundle_pb2 = _pb2["tensor_bundle"]
trackable_object_graph_pb2 = _pb2["trackable_object_graph"]

GraphDef = graph_pb2.GraphDef
NodeDef = node_def_pb2.NodeDef
AttrValue = attr_value_pb2.AttrValue
TensorProto = tensor_pb2.TensorProto
TensorShapeProto = tensor_shape_pb2.TensorShapeProto
FunctionDefLibrary = function_pb2.FunctionDefLibrary
MetaGraphDef = meta_graph_pb2.MetaGraphDef
SavedModel = saved_model_pb2.SavedModel
BundleHeaderProto = tensor_bundle_pb2.BundleHeaderProto
BundleEntryProto = tensor_bundle_pb2.BundleEntryProto
TrackableObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph
