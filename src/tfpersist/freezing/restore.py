"""Restoring a checkpoint's variables without running the checkpoint's own restore op.

A ``.meta``'s saver restore op is part of an untrusted graph: it could write files as well as
read the checkpoint. Here the saver's graph is only *read* — which checkpoint key (and slice)
each variable is restored from, so renamed or swapped keys and partitioned variables come
out as restore would give them — and the values are read with TensorFlow's checkpoint reader
and assigned by ops built here. Reading the saver's graph needs no TensorFlow; restoring
into a session imports it.
"""

from __future__ import annotations

import numpy as np

from tfpersist.tfapi import tensornames, tensors
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf

ASSIGN_OPS = {"Assign", "AssignVariableOp"}


def _strings(node) -> list[str] | None:
    """The values of a string Const node, or None."""
    if node is None or node.op != "Const":
        return None
    return [v.decode() for v in tensors.make_ndarray(node.attr["value"].tensor).ravel().tolist()]


def saver_keys(graph_def, saver_def) -> dict[str, tuple[str, str]] | None:
    """variable node → (checkpoint key, slice spec), as the saver's restore op assigns them.

    Walks back from ``saver_def.restore_op_name`` to the Assign / AssignVariableOp nodes it
    waits for, each fed (through Identities) by an output of a RestoreV2 whose tensor names
    and slices are constants. None when the restore op is anything else (a function call).
    """
    by_name = {n.name: n for n in graph_def.node}

    def through_identity(tensor: str) -> tuple[str, int]:
        node = by_name.get(op_name(tensor))
        while node is not None and node.op == "Identity":
            tensor = node.input[0]
            node = by_name.get(op_name(tensor))
        return op_name(tensor), tensornames.port(tensor)

    start = op_name(saver_def.restore_op_name) if saver_def else ""
    keys, seen, stack = {}, set(), [start] if start in by_name else []
    while stack:
        node = by_name.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op in ASSIGN_OPS:
            variable, _ = through_identity(node.input[0])
            source, port = through_identity(node.input[1])
            restore_node = by_name.get(source)
            if restore_node is None or restore_node.op != "RestoreV2":
                return None
            names = _strings(by_name.get(through_identity(restore_node.input[1])[0]))
            slices = _strings(by_name.get(through_identity(restore_node.input[2])[0]))
            if names is None or slices is None or port >= len(names):
                return None
            keys[variable] = (names[port], slices[port])
        elif node.op in ("NoOp", "Identity"):
            stack.extend(op_name(i) for i in node.input)
        else:
            return None
    return keys


def sliced(value: np.ndarray, spec: str) -> np.ndarray:
    """The part of a partitioned variable's full tensor that ``spec`` names.

    ``spec`` is TF's shape-and-slice string: the full shape, then per dimension
    ``start,length`` or ``-`` (all), e.g. ``"10 4 0,5:-"``.
    """
    if not spec:
        return value
    parts = spec.split(" ")
    index = tuple(
        slice(None) if dim == "-" else slice(int(a), int(a) + int(b))
        for dim in parts[-1].split(":")
        for a, _, b in [dim.partition(",")]
    )
    return value[index]


def restore(sess, keys: dict, prefix, names: list[str] | None = None) -> list[str]:
    """Assign the variables of ``sess.graph`` (those in ``names``, else all in ``keys``) from
    checkpoint ``prefix``, each from its key and slice in ``keys`` (``saver_keys``); return
    the names restored."""
    tf = import_tf()
    wanted = [n for n in (names if names is not None else keys) if n in keys]
    reader = tf.train.load_checkpoint(str(prefix))
    graph = sess.graph
    assigns, feed = [], {}
    with graph.as_default(), tf.name_scope("tfpersist_restore"):
        for name in wanted:
            key, spec = keys[name]
            value = np.asarray(sliced(reader.get_tensor(key), spec))
            variable = graph.get_operation_by_name(name)
            holder = tf.compat.v1.placeholder(variable.get_attr("dtype"), value.shape)
            if variable.type == "VarHandleOp":
                assigns.append(
                    tf.raw_ops.AssignVariableOp(resource=variable.outputs[0], value=holder)
                )
            else:
                assigns.append(tf.raw_ops.Assign(ref=variable.outputs[0], value=holder).op)
            feed[holder] = value
    sess.run(assigns, feed)
    return wanted
