"""GraphDef plumbing every module uses: node names, reading and writing GraphDefs and
MetaGraphDefs with one-line errors, and a frozen graph's parameter count."""

from __future__ import annotations

import difflib
from pathlib import Path

from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.tfapi import capi, dtypes, protos

PROTOBUF_LIMIT = 2**31 - 1


def node_names(names: list[str] | str) -> list[str]:
    """Accept ``a,b``, ``["a", "b:0"]`` or ``^a``: return op names, in order, without repeats."""
    if isinstance(names, str):
        names = names.split(",")
    result = []
    for name in names:
        name = name.strip().lstrip("^")
        if name.endswith(":0"):
            name = name[:-2]
        if name and name not in result:
            result.append(name)
    if not result:
        raise TfpersistError(
            "no output node names given; name the nodes to keep, e.g. 'predictions'"
        )
    return result


def check_nodes(graph_def, names: list[str], what: str = "output node") -> None:
    """Fail with the closest existing names when a node is not in ``graph_def``."""
    existing = [n.name for n in graph_def.node]
    known = set(existing)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, existing, n=3, cutoff=0.5)
            hint = (
                f"closest: {', '.join(close)}" if close else "run 'tfpersist inspect' to list nodes"
            )
            raise TfpersistError(f"{what} '{name}' is not in the graph ({hint})")


def read_meta_graph(prefix: Path):
    """The MetaGraphDef beside a checkpoint, or a one-line error."""
    meta = protos.MetaGraphDef()
    try:
        meta.ParseFromString(Path(f"{prefix}.meta").read_bytes())
    except Exception as e:  # DecodeError
        raise TfpersistError(
            f"{prefix}.meta: not a readable MetaGraphDef ({first_line(e)})"
        ) from None
    return meta


def too_big(size: str = "") -> TfpersistError:
    """The error for a frozen graph past protobuf's 2 GiB limit (``size``: how big)."""
    return TfpersistError(
        f"the frozen graph would be {size + ', ' if size else ''}over protobuf's 2 GiB limit "
        "for a GraphDef; keep this model as a SavedModel or checkpoint instead"
    )


def all_nodes(graph_def):
    """The graph's nodes and those of every function in its library."""
    yield from graph_def.node
    for function in graph_def.library.function:
        yield from function.node_def


def extract_sub_graph(graph_def, outputs: list[str]):
    """What ``outputs`` depend on (inputs, control inputs, colocation), in the graph's order:
    ``tf.compat.v1.graph_util.extract_sub_graph``, the same message."""
    inputs, by_name, order = {}, {}, {}
    for seq, node in enumerate(graph_def.node):
        name = _node_name(node.name)
        by_name[name] = node
        inputs[name] = [_node_name(i) for i in node.input]
        if "_class" in node.attr:
            inputs[name].extend(
                c.decode()[5:] if c.startswith(b"loc:@") else c.decode()
                for c in node.attr["_class"].list.s
            )
        order[name] = seq
    check_nodes(graph_def, list(outputs))
    keep, queue = set(), list(outputs)
    while queue:
        name = queue.pop()
        if name not in keep:
            keep.add(name)
            queue.extend(inputs.get(name, ()))
    missing = sorted(keep - order.keys())
    if missing:
        user = next(n for n, i in inputs.items() if missing[0] in i)
        raise TfpersistError(
            f"node '{user}' takes an input from '{missing[0]}', which is not in the graph"
        )
    out = protos.GraphDef()
    for name in sorted(keep, key=order.__getitem__):
        out.node.add().CopyFrom(by_name[name])
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    return out


def _node_name(tensor: str) -> str:
    return tensor[1:] if tensor.startswith("^") else tensor.split(":")[0]


def _undefined(node) -> list[str]:
    op_def = capi.op_def(node.op)
    if op_def is None:  # a call of a library function, or an op this TF lacks
        return []
    defined = {a.name for a in op_def.attr}
    return [a for a in node.attr if a not in defined and not a.startswith("_")]


def undefined_attrs(graph_def) -> list[tuple[str, str, str]]:
    """(node, op, attribute) for every attribute a node carries that its op does not define
    (TensorFlow's op registry), in the graph and its functions. Attributes starting with
    ``_`` are TensorFlow's own annotations; a call of a library function is not checked."""
    return [(n.name, n.op, a) for n in all_nodes(graph_def) for a in _undefined(n)]


def drop_undefined_attrs(graph_def) -> None:
    """Remove the attributes ``undefined_attrs`` lists, in place (TensorFlow ignores them
    with a warning on import; a graph we write must not carry them)."""
    for node in all_nodes(graph_def):
        for attr in _undefined(node):
            del node.attr[attr]


def check_attrs(graph_def) -> None:
    """Refuse to write a graph with a node carrying an attribute its op does not define: every
    consumer must be able to read what tfpersist writes (TensorFlow logs an error, stricter
    importers refuse). It would be tfpersist's own bug: the error says so."""
    bad = undefined_attrs(graph_def)
    if bad:
        node, op, attr = bad[0]
        raise TfpersistError(
            f"internal error: node '{node}' ({op}) carries attribute '{attr}', which {op} does "
            "not define; nothing written (please report this with the model)"
        )


def serialize(graph_def) -> bytes:
    """Deterministic bytes, or a clear error past protobuf's 2 GB limit or for a node with
    an attribute its op does not define (``check_attrs``)."""
    check_attrs(graph_def)
    size = graph_def.ByteSize()
    if size > PROTOBUF_LIMIT:
        raise too_big(f"{size / 2**30:.1f} GiB")
    return graph_def.SerializeToString(deterministic=True)


def read_graph_def(path: str | Path):
    """Parse a frozen .pb, or fail with one line saying why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TfpersistError(f"{path}: no such file; expected a frozen GraphDef (.pb)")
    graph_def = protos.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as e:  # google.protobuf.message.DecodeError
        raise TfpersistError(
            f"{path}: not a GraphDef (truncated or not a .pb file: {first_line(e)})"
        ) from None
    if not graph_def.node:
        raise TfpersistError(f"{path}: holds no graph nodes; expected a frozen GraphDef (.pb)")
    return graph_def


def constant_parameters(graph_def) -> tuple[int, int]:
    """(count, bytes) of the floating-point constants of rank 1 or more: a frozen graph's
    weights. Scalars are left out — a layer's epsilon, a scale, ReLU6's 6 are hyperparameters
    its config holds, and Keras's ``count_params()`` counts none of them."""
    counts = [const_parameters(node) for node in graph_def.node]
    return sum(c for c, _ in counts), sum(b for _, b in counts)


def const_parameters(node) -> tuple[int, int]:
    """(count, bytes) a node adds to ``constant_parameters``: a floating-point Const's."""
    if node.op != "Const":
        return 0, 0
    tensor = node.attr["value"].tensor
    dtype = dtypes.as_dtype(tensor.dtype)
    if not dtype.is_floating or not tensor.tensor_shape.dim:
        return 0, 0
    elements = 1
    for dim in tensor.tensor_shape.dim:
        elements *= dim.size
    return elements, elements * dtype.size
