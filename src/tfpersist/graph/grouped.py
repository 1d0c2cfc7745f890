"""Grouped convolutions as every runtime runs them.

TensorFlow's CPU kernels refuse a grouped ``Conv2D`` (a filter of fewer input channels than
the input has: Keras's ``Conv2D(groups=…)``, ConvNeXt's depthwise convolutions), so Keras's
TensorFlow backend wraps each in a function XLA must compile: a traced Keras model then
holds ``StatefulPartitionedCall``s that tf2onnx leaves unconverted and OpenCV cannot read.
``ungroup`` replaces each such call by what computes the same without XLA: a
``DepthwiseConv2dNative`` where every group is one channel, else a ``Split`` → one
``Conv2D`` per group → ``ConcatV2``. Each group's sums are the same sums in the same order.

Imports: the core and surgery (TensorFlow's Python layer only to infer the input's channels).
"""

from __future__ import annotations

import numpy as np

from tfpersist.graph import surgery
from tfpersist.tfapi import tensors
from tfpersist.tfapi.tensornames import op_name

CALLS = ("StatefulPartitionedCall", "PartitionedCall")
_CONV_ATTRS = ("strides", "padding", "dilations", "explicit_paddings", "data_format")


def ungroup(graph_def) -> int:
    """Rewrite, in place, each call of a function that holds nothing but one grouped NHWC
    ``Conv2D`` of a constant filter; return how many. The call node keeps its name (its
    consumers are unchanged); the functions no one calls any more are dropped."""
    library = {f.signature.name: f for f in graph_def.library.function}
    by_name = {n.name: n for n in graph_def.node}
    found = []
    for node in graph_def.node:
        if node.op not in CALLS or "f" not in node.attr:
            continue
        function = library.get(node.attr["f"].func.name)
        lone = function is not None and _lone_convolution(function)
        if not lone:
            continue
        conv, x_arg, w_arg = lone
        data = [i for i in node.input if not i.startswith("^")]
        kernel = by_name.get(op_name(data[w_arg]))
        if kernel is None or kernel.op != "Const" or conv.attr["data_format"].s != b"NHWC":
            continue
        found.append((node, conv, data[x_arg], kernel))
    if not found:
        return 0
    channels = _channels(graph_def, [x for _, _, x, _ in found])
    consumers: dict[str, int] = {}
    for node in graph_def.node:
        for tensor in node.input:
            consumers[op_name(tensor)] = consumers.get(op_name(tensor), 0) + 1
    done = 0
    for node, conv, x, kernel in found:
        filters = tensors.make_ndarray(kernel.attr["value"].tensor)
        c = channels.get(x)
        if c is None or filters.ndim != 4 or c % filters.shape[2] or c == filters.shape[2]:
            continue
        groups = c // filters.shape[2]
        if filters.shape[3] % groups:
            continue
        controls = [i for i in node.input if i.startswith("^")]
        if filters.shape[2] == 1:  # one channel a group: depthwise, multiplier cout / c
            depthwise = filters.reshape((*filters.shape[:2], c, filters.shape[3] // c))
            name = kernel.name if consumers.get(kernel.name) == 1 else f"{node.name}/kernel"
            _const(graph_def, by_name, name, depthwise)
            _become(node, "DepthwiseConv2dNative", [x, name, *controls], conv, _CONV_ATTRS)
        else:
            _split_groups(graph_def, by_name, node, conv, x, filters, groups, controls)
        done += 1
    surgery.prune_library(graph_def)
    return done


def _lone_convolution(function):
    """(the Conv2D, its input's argument index, its filter's) when the function computes
    nothing else (its other nodes are Identity or NoOp), else None."""
    args = [a.name for a in function.signature.input_arg]
    body = {n.name: n for n in function.node_def}
    convs = [n for n in function.node_def if n.op == "Conv2D"]
    if len(convs) != 1 or any(n.op not in ("Conv2D", "Identity", "NoOp") for n in body.values()):
        return None

    def argument(ref: str):
        name = ref.split(":")[0]
        for _ in range(len(body) + 1):
            if name in args:
                return args.index(name)
            node = body.get(name)
            if node is None or node.op != "Identity":
                return None
            name = node.input[0].split(":")[0]
        return None

    x_arg, w_arg = (argument(ref) for ref in convs[0].input[:2])
    return None if x_arg is None or w_arg is None else (convs[0], x_arg, w_arg)


def _channels(graph_def, inputs: list[str]) -> dict[str, int]:
    """The static channel count (last dimension) of each tensor, as TensorFlow infers it."""
    from tfpersist.tfapi.tfcompat import import_tf

    tf = import_tf()
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    found = {}
    for name in inputs:
        tensor = graph.get_tensor_by_name(name if ":" in name else f"{name}:0")
        dims = tensor.shape.as_list() if tensor.shape.rank else None
        if dims and dims[-1] is not None:
            found[name] = dims[-1]
    return found


def _const(graph_def, by_name: dict, name: str, value: np.ndarray) -> None:
    node = by_name.get(name)
    if node is None:
        node = graph_def.node.add(name=name, op="Const")
        by_name[name] = node
    proto = tensors.make_tensor_proto(value)
    node.attr["dtype"].type = proto.dtype
    node.attr["value"].tensor.CopyFrom(proto)


def _become(node, op: str, inputs: list[str], conv, attrs=()) -> None:
    """Turn ``node`` into ``op`` on ``inputs``: the convolution's type and its ``attrs``."""
    node.op = op
    del node.input[:]
    node.input.extend(inputs)
    for key in list(node.attr):
        del node.attr[key]
    node.attr["T"].CopyFrom(conv.attr["T"])
    for key in attrs:
        if key in conv.attr:
            node.attr[key].CopyFrom(conv.attr[key])


def _split_groups(graph_def, by_name, node, conv, x, filters, groups, controls) -> None:
    """``node`` as Split (channels) → one Conv2D a group → ConcatV2 (channels)."""
    width = filters.shape[3] // groups
    axis = f"{node.name}/channels"  # NHWC: the split's and the concat's axis
    _const(graph_def, by_name, axis, np.array(3, np.int32))
    split = graph_def.node.add(name=f"{node.name}/split", op="Split", input=[axis, x])
    split.attr["T"].CopyFrom(conv.attr["T"])
    split.attr["num_split"].i = groups
    parts = []
    for g in range(groups):
        kernel = f"{node.name}/kernel_{g}"
        part_filters = np.ascontiguousarray(filters[..., g * width : (g + 1) * width])
        _const(graph_def, by_name, kernel, part_filters)
        part = graph_def.node.add(name=f"{node.name}/group_{g}")
        inputs = [f"{split.name}:{g}", kernel]
        _become(part, "Conv2D", inputs, conv, (*_CONV_ATTRS, "use_cudnn_on_gpu"))
        parts.append(part.name)
    _become(node, "ConcatV2", [*parts, axis, *controls], conv)
    node.attr["N"].i = groups
    node.attr["Tidx"].type = by_name[axis].attr["dtype"].type
