"""Freezing straight from checkpoint files to a .pb, one tensor at a time.

The session path (restore into variables, fetch them, build a GraphDef, serialise it) holds
several copies of the weights at once. Here each variable's value is read from the
checkpoint's files (formats/bundles.py, checksums verified), turned into a Const node,
serialised and written, then dropped: peak memory is about one model's worth of bytes plus
the largest tensor, nothing is restored into a session, and TensorFlow's Python layer is not
imported (its op registry is read through capi.py). The bytes are GraphDef's wire format
written field by field in field-number order, as deterministic serialisation would write
them, and the Const messages are ``tf.make_tensor_proto``'s (tensors.py).

``plan`` says whether a (pruned) graph fits: variables read through ``ReadVariableOp`` or
consumed by ops that take no reference input, each restored by the checkpoint's own saver
from a key (and slice) found in the checkpoint — the saver's name mapping is followed, as
restore would. Anything else returns None and the caller uses the session path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpersist.core import atomic
from tfpersist.formats import bundles
from tfpersist.freezing import restore
from tfpersist.graph import graphdefs, surgery
from tfpersist.tfapi import capi, dtypes, protos, tensors
from tfpersist.tfapi.tensornames import op_name

SPLICE_BYTES = 1 << 16  # tensors this large are written from their own buffer, not copied


@dataclass
class Plan:
    keys: dict[str, str]  # variable node → checkpoint key
    dtypes: dict[str, int]  # variable node → DataType enum
    slices: dict[str, str]  # variable node → slice spec ("" for the whole tensor)


def _is_ref_input(op: str, index: int) -> bool:
    op_def = capi.op_def(op)
    if op_def is None:
        return True  # unknown op: do not guess
    args = list(op_def.input_arg)
    for position, arg in enumerate(args):
        if arg.number_attr or arg.type_list_attr:  # variadic: where index falls is unknown
            return any(a.is_ref for a in args[position:])
        if position == index:
            return arg.is_ref
    return False


def plan(graph_def, reader: bundles.Bundle, full_graph=None, saver_def=None) -> Plan | None:
    """How to freeze ``graph_def`` (already pruned to its outputs) straight from ``reader``.

    ``full_graph`` and ``saver_def`` give the saver's own name mapping; without them each
    variable is looked up under its own name.
    """
    variables = {n.name: n for n in graph_def.node if n.op in surgery.VARIABLE_OPS}
    if graph_def.library.function and variables:
        return None  # functions may capture variables: leave it to the session path
    mapping = restore.saver_keys(full_graph, saver_def) if saver_def is not None else {}
    if mapping is None:
        return None
    stored = reader.entries
    keys, types, slices = {}, {}, {}
    for name, node in variables.items():
        key, spec = mapping.get(name, (None if saver_def else name, ""))
        if key not in stored:
            return None
        dtype = dtypes.base(node.attr["dtype"].type)
        if dtype != dtypes.base(stored[key].dtype):
            return None
        keys[name], slices[name], types[name] = key, spec, dtype
    for node in graph_def.node:
        for index, tensor in enumerate(node.input):
            source = op_name(tensor)
            if source not in variables or tensor.startswith("^"):
                continue
            if variables[source].op == "VarHandleOp":
                if node.op != "ReadVariableOp":
                    return None
            elif _is_ref_input(node.op, index):
                return None
    return Plan(keys, types, slices)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nodes(graph_def, frozen_plan: Plan, reader, stats: dict):
    """The frozen graph's nodes as (NodeDef, weights or None): a variable becomes a Const
    whose value (read lazily) is spliced in by ``write`` rather than copied into the proto."""
    for node in graph_def.node:
        if node.name in frozen_plan.keys:
            value = reader.read(frozen_plan.keys[node.name])
            # not np.ascontiguousarray: it makes a scalar (a 0-d variable) shape [1]
            value = np.asarray(restore.sliced(value, frozen_plan.slices[node.name]), order="C")
            dtype = frozen_plan.dtypes[node.name]
            if dtypes.as_dtype(dtype).is_floating and value.ndim:  # as const_parameters
                stats["parameters"] += int(value.size)
                stats["parameter_bytes"] += int(value.nbytes)
            const = protos.NodeDef(name=node.name, op="Const")
            const.attr["dtype"].type = dtype
            # big tensors are spliced in as tensor_content: only where make_tensor_proto
            # writes that (not bool, complex, uint16: typed value fields)
            if value.nbytes < SPLICE_BYTES or not tensors.uses_content(dtype, value.size):
                const.attr["value"].tensor.CopyFrom(tensors.make_tensor_proto(value))
                yield const, None
            else:
                yield const, value
            del value
        elif node.op == "ReadVariableOp" and op_name(node.input[0]) in frozen_plan.keys:
            identity = protos.NodeDef()
            _read_as_identity(node, identity)
            yield identity, None
        else:
            add_default_attrs(node)
            count, size = graphdefs.const_parameters(node)  # counted as the card counts them
            stats["parameters"] += count
            stats["parameter_bytes"] += size
            yield node, None


def _read_as_identity(read, into) -> None:
    """A variable's ReadVariableOp as the Identity of the Const that replaces the variable."""
    into.name, into.op = read.name, "Identity"
    into.input.extend(read.input)
    into.attr["T"].type = read.attr["dtype"].type


def _const_with_content(const, value: np.ndarray) -> list:
    """Wire bytes of ``const`` with ``attr["value"]`` = ``value``, its data not copied.

    NodeDef's last field present is attr (5), a map whose entries are written sorted by key:
    "dtype" < "value". In the value's TensorProto, tensor_content (4) follows dtype (1) and
    tensor_shape (2) and nothing after it is set. So the bytes are the NodeDef without the
    "value" entry, then that entry built around the raw little-endian array bytes, exactly
    as make_tensor_proto + SerializeToString(deterministic=True) would produce them.
    """
    tensor = protos.TensorProto(dtype=const.attr["dtype"].type)
    tensor.tensor_shape.CopyFrom(tensors.shape_proto(value.shape))
    data = memoryview(value).cast("B")
    tensor_head = (
        tensor.SerializeToString(deterministic=True) + _varint(4 << 3 | 2) + _varint(len(data))
    )
    attr_len = len(tensor_head) + len(data)
    attr_head = _varint(8 << 3 | 2) + _varint(attr_len)
    key = _field(1, b"value")
    entry_len = len(key) + 1 + len(_varint(len(attr_head) + attr_len)) + len(attr_head) + attr_len
    entry_head = _varint(5 << 3 | 2) + _varint(entry_len) + key + _varint(2 << 3 | 2)
    entry_head += _varint(len(attr_head) + attr_len) + attr_head + tensor_head
    body = const.SerializeToString(deterministic=True)
    node_len = len(body) + len(entry_head) + len(data)
    return [_varint(1 << 3 | 2) + _varint(node_len) + body + entry_head, data]


def add_default_attrs(node) -> None:
    """Fill in attributes left at their defaults (a .meta saved with strip_default_attrs),
    as importing the graph would: the frozen bytes then match the session path's."""
    op_def = capi.op_def(node.op)
    for attr in op_def.attr if op_def else []:
        if attr.name not in node.attr and attr.HasField("default_value"):
            node.attr[attr.name].CopyFrom(attr.default_value)


def write(
    graph_def, frozen_plan: Plan, reader, path: str | Path, limit: int, digest: bool = True
) -> dict:
    """Stream the frozen graph to ``path`` (atomically); return sha256 (when ``digest``),
    bytes, op counts and parameters."""
    from collections import Counter

    sha = hashlib.sha256() if digest else None
    stats = {"parameters": 0, "parameter_bytes": 0, "bytes": 0, "ops": Counter()}
    with atomic.open_for_write(path) as f:

        def emit(*chunks) -> None:
            for chunk in chunks:
                stats["bytes"] += len(chunk)
                if stats["bytes"] > limit:
                    raise graphdefs.too_big()
                if sha is not None:
                    sha.update(chunk)
                f.write(chunk)

        for node, value in nodes(graph_def, frozen_plan, reader, stats):
            stats["ops"][node.op] += 1
            if value is None:
                emit(_field(1, node.SerializeToString(deterministic=True)))
            else:
                emit(*_const_with_content(node, value))
        # Always present, as convert_variables_to_constants leaves it: same bytes either way.
        emit(_field(2, graph_def.library.SerializeToString(deterministic=True)))
        if graph_def.version:
            emit(_varint(3 << 3) + _varint(graph_def.version))
        if graph_def.versions.ByteSize():
            emit(_field(4, graph_def.versions.SerializeToString(deterministic=True)))
    stats["sha256"] = sha.hexdigest() if sha is not None else None
    return stats


def graph_def_of(graph_def, frozen_plan: Plan, reader):
    """The frozen graph in memory: the message whose bytes ``write`` streams."""
    out = protos.GraphDef()
    stats = {"parameters": 0, "parameter_bytes": 0}
    for node, value in nodes(graph_def, frozen_plan, reader, stats):
        new = out.node.add()
        new.CopyFrom(node)
        if value is not None:
            new.attr["value"].tensor.CopyFrom(tensors.make_tensor_proto(value))
    out.library.CopyFrom(graph_def.library)
    out.version = graph_def.version
    out.versions.CopyFrom(graph_def.versions)
    return out


def skeleton(graph_def, frozen_plan: Plan | None = None):
    """The graph without weight values (shapes and dtypes kept): cheap to import for shapes."""
    out = protos.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    variables = frozen_plan.keys if frozen_plan else {}
    for node in graph_def.node:
        new = out.node.add()
        if node.name in variables or (
            node.op == "Const" and node.attr["value"].tensor.ByteSize() > 1024
        ):
            new.name, new.op = node.name, "Const"
            new.input.extend(i for i in node.input if i.startswith("^"))
            dtype = node.attr["dtype"].type
            new.attr["dtype"].type = dtype
            tensor = new.attr["value"].tensor
            tensor.dtype = dtype
            shape = (
                node.attr["shape"].shape
                if node.name in variables
                else node.attr["value"].tensor.tensor_shape
            )
            tensor.tensor_shape.CopyFrom(shape)
        elif node.op == "ReadVariableOp" and op_name(node.input[0]) in variables:
            _read_as_identity(node, new)
        else:
            new.CopyFrom(node)
    return out
