"""Freezing straight from checkpoint files to a .pb, one tensor at a time.

The session path (restore into variables, fetch them, build a GraphDef, serialise it) holds
several copies of the weights at once. Here each variable's value is read from the
checkpoint with ``CheckpointReader``, turned into a Const node, serialised and written, then
dropped: peak memory is about one model's worth of bytes plus the largest tensor, and
nothing is restored into a session. The bytes are GraphDef's wire format written field by
field in field-number order, as deterministic serialisation would write them.

``plan`` says whether a (pruned) graph fits: variables read through ``ReadVariableOp`` or
consumed by ops that take no reference input, with keys found in the checkpoint. Anything
else returns None and the caller uses the session path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tfpersist import atomic
from tfpersist.errors import TfpersistError
from tfpersist.tfcompat import import_tf

tf = import_tf()

VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp"}


@dataclass
class Plan:
    keys: dict[str, str]  # variable node → checkpoint key
    dtypes: dict[str, int]  # variable node → DataType enum


def _is_ref_input(op: str, index: int) -> bool:
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(op)
    if op_def is None:
        return True  # unknown op: do not guess
    position = 0
    for arg in op_def.input_arg:
        count = 1
        if arg.number_attr or arg.type_list_attr:
            return arg.is_ref  # variadic: conservative
        if position <= index < position + count:
            return arg.is_ref
        position += count
    return False


def plan(graph_def, reader) -> Plan | None:
    """How to freeze ``graph_def`` (already pruned to its outputs) straight from ``reader``."""
    variables = {n.name: n for n in graph_def.node if n.op in VARIABLE_OPS}
    stored = reader.get_variable_to_dtype_map()
    keys, dtypes = {}, {}
    for name, node in variables.items():
        key = node.attr["shared_name"].s.decode() if node.op == "VarHandleOp" else ""
        key = name if name in stored else key
        if key not in stored:
            return None
        dtype = node.attr["dtype"].type
        if tf.dtypes.as_dtype(dtype).base_dtype != stored[key].base_dtype:
            return None
        keys[name], dtypes[name] = key, tf.dtypes.as_dtype(dtype).base_dtype.as_datatype_enum
    for node in graph_def.node:
        for index, tensor in enumerate(node.input):
            source = tensor.lstrip("^").split(":")[0]
            if source not in variables or tensor.startswith("^"):
                continue
            if variables[source].op == "VarHandleOp":
                if node.op != "ReadVariableOp":
                    return None
            elif _is_ref_input(node.op, index):
                return None
    if graph_def.library.function and variables:
        return None  # functions may capture variables: leave it to the session path
    return Plan(keys, dtypes)


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
    """The frozen graph's NodeDefs, variables turned into Consts (values read lazily)."""
    for node in graph_def.node:
        if node.name in frozen_plan.keys:
            value = reader.get_tensor(frozen_plan.keys[node.name])
            const = tf.compat.v1.NodeDef(name=node.name, op="Const")
            const.attr["dtype"].type = frozen_plan.dtypes[node.name]
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            stats["parameters"] += int(value.size) if value.dtype.kind == "f" else 0
            stats["parameter_bytes"] += int(value.nbytes) if value.dtype.kind == "f" else 0
            del value
            yield const
        elif node.op == "ReadVariableOp" and node.input[0].split(":")[0] in frozen_plan.keys:
            identity = tf.compat.v1.NodeDef(name=node.name, op="Identity")
            identity.input.extend(node.input)
            identity.attr["T"].type = node.attr["dtype"].type
            yield identity
        else:
            add_default_attrs(node)
            yield node


def add_default_attrs(node) -> None:
    """Fill in attributes left at their defaults (a .meta saved with strip_default_attrs),
    as importing the graph would: the frozen bytes then match the session path's."""
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(node.op)
    for attr in op_def.attr if op_def else []:
        if attr.name not in node.attr and attr.HasField("default_value"):
            node.attr[attr.name].CopyFrom(attr.default_value)


def write(graph_def, frozen_plan: Plan, reader, path: str | Path, limit: int) -> dict:
    """Stream the frozen graph to ``path`` (atomically); return sha256, bytes, op counts."""
    from collections import Counter

    digest = hashlib.sha256()
    stats = {"parameters": 0, "parameter_bytes": 0, "bytes": 0, "ops": Counter()}
    with atomic.open_for_write(path) as f:

        def emit(chunk: bytes) -> None:
            stats["bytes"] += len(chunk)
            if stats["bytes"] > limit:
                raise TfpersistError(
                    "the frozen graph would be over protobuf's 2 GiB limit for a GraphDef; "
                    "keep this model as a SavedModel or checkpoint instead"
                )
            digest.update(chunk)
            f.write(chunk)

        for node in nodes(graph_def, frozen_plan, reader, stats):
            stats["ops"][node.op] += 1
            emit(_field(1, node.SerializeToString(deterministic=True)))
        # Always present, as convert_variables_to_constants leaves it: same bytes either way.
        emit(_field(2, graph_def.library.SerializeToString(deterministic=True)))
        if graph_def.version:
            emit(_varint(3 << 3) + _varint(graph_def.version))
        if graph_def.versions.ByteSize():
            emit(_field(4, graph_def.versions.SerializeToString(deterministic=True)))
    stats["sha256"] = digest.hexdigest()
    return stats


def skeleton(graph_def, frozen_plan: Plan | None = None):
    """The graph without weight values (shapes and dtypes kept): cheap to import for shapes."""
    out = tf.compat.v1.GraphDef()
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
        elif node.op == "ReadVariableOp" and node.input[0].split(":")[0] in variables:
            new.name, new.op = node.name, "Identity"
            new.input.extend(node.input)
            new.attr["T"].type = node.attr["dtype"].type
        else:
            new.CopyFrom(node)
    return out
