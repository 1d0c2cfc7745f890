"""Rewrites for a runtime that lacks a TensorFlow op, applied to a copy made for it (the
frozen graph keeps TensorFlow's op).

Imports: the core and graphdefs.
"""

from __future__ import annotations

import numpy as np

from tfpersist.core.errors import TfpersistError
from tfpersist.graph.graphdefs import all_nodes
from tfpersist.tfapi import dtypes, tensors


def erfc_as_erf(graph_def):
    """A copy where each ``Erfc(x)`` (Keras's exact gelu) is ``1 - Erf(x)``: ONNX has Erf and
    no Erfc, and tf2onnx converts none. Where erfc is tiny the difference loses its relative
    precision, not its absolute one (|1 - erf(x) - erfc(x)| ≤ float32's epsilon)."""
    if not any(n.op == "Erfc" for n in all_nodes(graph_def)):
        return graph_def
    copy = type(graph_def)()
    copy.CopyFrom(graph_def)
    taken = {n.name for n in all_nodes(copy)}
    bodies = [(copy.node, False), *((f.node_def, True) for f in copy.library.function)]
    for nodes, in_function in bodies:
        for node in [n for n in nodes if n.op == "Erfc"]:
            dtype = node.attr["T"].type
            erf, one = f"{node.name}/erf", f"{node.name}/one"
            if erf in taken or one in taken:
                raise TfpersistError(f"cannot rewrite Erfc '{node.name}': '{erf}' is taken")
            erf_node = nodes.add(name=erf, op="Erf", input=list(node.input[:1]))
            erf_node.attr["T"].type = dtype
            one_node = nodes.add(name=one, op="Const")
            one_node.attr["dtype"].type = dtype
            one_node.attr["value"].tensor.CopyFrom(
                tensors.make_tensor_proto(np.array(1, dtypes.as_dtype(dtype).as_numpy()), dtype)
            )
            controls = [i for i in node.input if i.startswith("^")]
            node.op = "Sub"
            del node.input[:]
            refs = [f"{one}:output:0", f"{erf}:y:0"] if in_function else [one, erf]
            node.input.extend([*refs, *controls])
    return copy
