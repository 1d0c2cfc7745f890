"""OpenCV's dnn module as a target: a frozen GraphDef rewritten so that
``cv2.dnn.readNetFromTensorflow`` loads it and computes what TensorFlow computes, and a
runner for it (the export's parity check).

What OpenCV's TensorFlow importer does with a frozen model (measured with OpenCV 5.0.0 and
4.14.0, both the same):

- ``x + c`` / ``x - c`` with a constant vector (Add, AddV2, Sub, BiasAdd) becomes its Shift
  layer, which fails on a [batch, features] tensor ("'end' is 3 … 'dims' is 2") — unless the
  op follows a MatMul, into which OpenCV folds the first BiasAdd or Add reading it (not
  AddV2, not Sub; a scalar Add folded so fails "numOutput == blobs[1].total()").
  Rewritten: after a MatMul read by nothing else, ``BiasAdd(x, ±c)`` with c a full row;
  elsewhere on a rank-2 tensor, ``BiasAdd(MatMul(x, ±I), ±c)`` — an identity fully connected
  layer OpenCV folds the bias into (scalars elsewhere stay: OpenCV's Power layer runs them).
  Both are exact in TensorFlow (x·I adds x's own value to zeros; x + (-c) is x - c in IEEE
  arithmetic), so the rewritten graph gives TensorFlow's bits unchanged.
- Identity ops are dropped by OpenCV, and their names with them: an output that is an
  Identity takes the name of what it forwards.
- A Reshape from [batch, features] to an image ([batch, h, w, c]) gets a layout permute
  that the next layer is not wired to (it reads NHWC data as NCHW): refused, with ONNX as
  the way to OpenCV (``cv2.dnn.readNetFromONNX`` reads the .onnx export correctly).

OpenCV 4.x's ArgMax returns uninitialised memory in place of the class ids; the runner and
the tests use the pinned OpenCV 5.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from tfpersist import safety
from tfpersist.core.errors import TfpersistError, Unsupported, first_line
from tfpersist.graph import graphdefs
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf

ADDS = ("Add", "AddV2", "BiasAdd", "Sub")
FOLDED = ("Add", "BiasAdd")  # what OpenCV folds into the MatMul it reads (a full row)


def rewrite(graph_def, output_nodes: list[str]):
    """A copy of the frozen ``graph_def`` that OpenCV's TensorFlow importer runs as
    TensorFlow does (see the module docstring); refuses what it cannot make right."""
    tf = import_tf()
    from tensorflow.python.framework import tensor_util

    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    readers = _readers(out)
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.import_graph_def(graph_def, name="")
    except (ValueError, TypeError, KeyError, tf.errors.OpError) as e:
        raise TfpersistError(f"cannot rewrite the graph for OpenCV ({first_line(e)})") from None

    def shape(name: str) -> list[int | None] | None:
        s = graph.get_tensor_by_name(name if ":" in name else f"{name}:0").shape
        return None if s.rank is None else s.as_list()

    def constant(name: str):
        node = nodes.get(op_name(name))
        while node is not None and node.op == "Identity":
            node = nodes.get(op_name(node.input[0]))
        return node if node is not None and node.op == "Const" else None

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in nodes:
            name, i = f"{base}_{i}", i + 1
        return name

    def add_node(name: str, op: str, inputs: list[str], like, value=None, exact=False):
        node = tf.compat.v1.NodeDef(name=name if exact else fresh(name), op=op, input=inputs)
        if value is None:
            node.attr["T"].CopyFrom(like.attr["T"])
        else:
            node.attr["dtype"].type = tf.dtypes.as_dtype(value.dtype).as_datatype_enum
            node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))
        nodes[node.name] = node
        return node

    rewritten = []
    for node in out.node:
        reshaped = node.op == "Reshape" and len(shape(node.input[0]) or ()) == 2
        if reshaped and len(shape(node.name) or ()) == 4:
            raise Unsupported(
                f"OpenCV cannot run this model: '{node.name}' reshapes [batch, features] "
                "to an image, and OpenCV's TensorFlow importer wires the next layer past "
                "its layout permute; give OpenCV the "
                "onnx export (cv2.dnn.readNetFromONNX reads it)"
            )
        found = _constant_add(node, constant, shape, tensor_util)
        if found is None:
            rewritten.append(node)
            continue
        x, vector, negate_x = found
        source = nodes[op_name(x)]
        folded = source.op == "MatMul" and readers.get(source.name) == 1 and not negate_x
        row = vector.size == shape(node.name)[1]
        as_is = folded and row and node.op in FOLDED and x == node.input[0]  # OpenCV folds it
        if as_is or (not folded and vector.size == 1):  # a scalar: OpenCV's Power layer
            rewritten.append(node)
            continue
        vector = np.broadcast_to(vector.reshape(-1), shape(node.name)[1:]).astype(vector.dtype)
        new = []
        if not folded:  # x·I: an identity fully connected layer for OpenCV to fold into
            eye = np.eye(vector.size, dtype=vector.dtype) * (-1 if negate_x else 1)
            weights = add_node(f"{node.name}/opencv/identity", "Const", [], node, eye)
            matmul = add_node(f"{node.name}/opencv/matmul", "MatMul", [x, weights.name], node)
            new, x = [weights, matmul], matmul.name
        bias = add_node(f"{node.name}/opencv/bias", "Const", [], node, vector)
        add = tf.compat.v1.NodeDef(name=node.name, op="BiasAdd", input=[x, bias.name])
        for key in ("T", "data_format") if node.op == "BiasAdd" else ("T",):
            if key in node.attr:  # data_format: OpenCV infers layouts from it
                add.attr[key].CopyFrom(node.attr[key])
        rewritten += [*new, bias, add]
    del out.node[:]
    out.node.extend(rewritten)
    _name_identity_outputs(out, output_nodes)
    _name_folded_outputs(out, output_nodes, add_node, tensor_util)
    return out


def _constant_add(node, constant, shape, tensor_util):
    """(the other input, the float32 constant to add, whether that input is negated: c - x)
    when ``node`` adds a constant row or scalar to a [batch, features] tensor; else None."""
    if node.op not in ADDS or len(node.input) != 2:
        return None
    consts = [constant(i) for i in node.input]
    if (consts[0] is None) == (consts[1] is None):
        return None
    side = 1 if consts[1] is not None else 0
    x = node.input[1 - side]
    x_shape, y_shape = shape(x), shape(node.name)
    if x_shape is None or len(x_shape) != 2 or x_shape != y_shape or y_shape[1] is None:
        return None
    value = tensor_util.MakeNdarray(consts[side].attr["value"].tensor)
    if value.dtype != np.float32 or value.size not in (1, y_shape[1]) or value.ndim > 2:
        return None
    if value.ndim == 2 and value.shape[0] != 1:  # not one row
        return None
    if node.op == "Sub" and side == 1:
        value = -value
    return x, value, node.op == "Sub" and side == 0


def _name_identity_outputs(graph_def, output_nodes: list[str]) -> None:
    """OpenCV drops Identity ops: an output Identity gives its name to the op it forwards
    (when nothing else reads that op), so the output keeps its name in OpenCV."""
    nodes = {n.name: n for n in graph_def.node}
    readers = _readers(graph_def)
    for name in output_nodes:
        node = nodes.get(name)
        if node is None or node.op != "Identity" or len(node.input) != 1:
            continue
        source = nodes.get(op_name(node.input[0]))
        if (
            source is None
            or node.input[0] != source.name
            or readers.get(source.name) != 1
            or source.name in output_nodes
            or source.op in ("Placeholder", "Const")
        ):
            continue
        graph_def.node.remove(node)
        _rename(graph_def, source, name)


def _name_folded_outputs(graph_def, output_nodes, add_node, tensor_util) -> None:
    """OpenCV names a MatMul with its folded bias after the MatMul: an output that is that
    bias add is renamed ``NAME/opencv/value`` and read back through a Reshape to
    [-1, features] named NAME (a no-op in TensorFlow, a named layer in OpenCV)."""
    nodes = {n.name: n for n in graph_def.node}
    for name in output_nodes:
        node = nodes.get(name)
        if node is None or node.op not in FOLDED or len(node.input) != 2:
            continue
        if nodes.get(op_name(node.input[0]), node).op != "MatMul":
            continue
        bias = nodes.get(op_name(node.input[1]))
        if bias is None or bias.op != "Const":
            continue
        width = tensor_util.MakeNdarray(bias.attr["value"].tensor).size
        value = f"{name}/opencv/value"
        _rename(graph_def, node, value)
        dims = add_node(f"{name}/opencv/shape", "Const", [], node, np.array([-1, width], np.int32))
        reshape = add_node(name, "Reshape", [value, dims.name], node, exact=True)
        reshape.attr["Tshape"].type = dims.attr["dtype"].type
        graph_def.node.extend([dims, reshape])


def _readers(graph_def) -> Counter:
    """How many inputs (data and control) name each op."""
    return Counter(op_name(i) for n in graph_def.node for i in n.input)


def _rename(graph_def, node, new: str) -> None:
    """Rename ``node`` and every input naming it (``op``, ``op:1``, ``^op``)."""
    old, node.name = node.name, new

    def renamed(tensor: str) -> str:
        if op_name(tensor) != old:
            return tensor
        port = tensor.partition(":")[2]
        return f"{'^' if tensor.startswith('^') else ''}{new}{':' + port if port else ''}"

    for n in graph_def.node:
        n.input[:] = [renamed(i) for i in n.input]


def _cv2():
    try:
        import cv2
    except ImportError:
        raise TfpersistError(
            "OpenCV is not installed: pip install opencv-python-headless (make setup does)"
        ) from None
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


class OpenCVModel:
    """A rewritten frozen graph in ``cv2.dnn`` (its ops checked against the inference
    allowlist first); ``run({input node: array})`` → {output node: array}. Images go in and
    come out as TensorFlow has them (NHWC); OpenCV's blobs are NCHW."""

    def __init__(self, path: str | Path, output_nodes: list[str]):
        self.path, self.output_nodes = Path(path), list(output_nodes)
        graph_def = graphdefs.read_graph_def(self.path)
        safety.check(graph_def, self.output_nodes, str(self.path))
        checked = np.frombuffer(graphdefs.serialize(graph_def), np.uint8)  # what was checked
        cv2 = _cv2()
        try:
            self._net = cv2.dnn.readNetFromTensorflow(checked)
        except cv2.error as e:
            raise TfpersistError(f"{self.path}: OpenCV cannot load it ({_why(e)})") from None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cv2 = _cv2()
        for name, x in feeds.items():
            x = np.asarray(x, np.float32)
            blob = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x
            self._net.setInput(np.ascontiguousarray(blob), name)
        try:
            got = self._net.forward(self.output_nodes)
        except cv2.error as e:
            raise TfpersistError(f"{self.path}: OpenCV cannot run it ({_why(e)})") from None
        return {
            name: y.transpose(0, 2, 3, 1) if y.ndim == 4 else y
            for name, y in zip(self.output_nodes, got, strict=True)
        }


def one_input(input_nodes: list[str]) -> None:
    """The OpenCV export feeds its net one input: a model with several is Unsupported, said
    why (the ONNX export takes them all, and cv2.dnn reads it)."""
    if len(input_nodes) != 1:
        raise Unsupported(
            f"the OpenCV export takes one input and this model has {len(input_nodes)} "
            f"({', '.join(input_nodes)}); cv2.dnn.readNetFromONNX reads the ONNX export"
        )


def probe(graph_def, input_node: str, output_nodes: list[str]) -> None:
    """Load the rewritten graph in cv2.dnn and run one row of zeros: an op its TensorFlow
    importer has no layer for (Maximum, TopKV2, a Sqrt of constants…) is Unsupported, said
    why, before anything is written. It runs in a child process: OpenCV's importer crashes
    on some graphs (a segmentation fault on MobileNetV3's), which must not take the command
    with it."""
    import json
    import subprocess
    import sys

    by_name = {n.name: n for n in graph_def.node}
    node = by_name.get(input_node)
    dims = (
        [d.size for d in node.attr["shape"].shape.dim]
        if node is not None and "shape" in node.attr
        else []
    )
    if not dims or any(d < 0 for d in dims[1:]):
        return  # the parity check runs it on the real rows
    _cv2()  # installed, else the one line saying how
    head = json.dumps({"input": input_node, "outputs": list(output_nodes), "dims": dims[1:]})
    child = subprocess.run(
        [sys.executable, "-c", "from tfpersist.shipping import opencv; opencv._probe_child()"],
        input=head.encode() + b"\n" + graphdefs.serialize(graph_def),
        capture_output=True,
        timeout=600,
    )
    if child.returncode == 0:
        return
    said = child.stdout.decode(errors="replace").strip()
    why = said or (
        f"its importer crashed (signal {-child.returncode})"
        if child.returncode < 0
        else first_line(child.stderr.decode(errors="replace").strip() or "it failed")
    )
    raise Unsupported(
        f"OpenCV's TensorFlow importer cannot run this graph ({why}); "
        "cv2.dnn.readNetFromONNX reads the ONNX export"
    )


def _probe_child() -> None:
    """probe's child: the header line and the graph on stdin; exit 1 with why on stdout."""
    import json
    import sys

    data = sys.stdin.buffer.read()
    head, _, graph = data.partition(b"\n")
    spec = json.loads(head)
    cv2 = _cv2()
    x = np.zeros([1, *spec["dims"]], np.float32)
    try:
        net = cv2.dnn.readNetFromTensorflow(np.frombuffer(graph, np.uint8))
        net.setInput(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x, spec["input"])
        net.forward(spec["outputs"])
    except cv2.error as e:
        print(_why(e))
        sys.exit(1)


def _why(error: Exception) -> str:
    """The part of an OpenCV error worth a line: after 'error: ', without the source path."""
    text = " ".join(str(error).split())
    return text.partition(" error: ")[2] or first_line(error)
