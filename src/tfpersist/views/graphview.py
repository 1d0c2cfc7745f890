"""A frozen graph described for people: every node with its scope, tensor shapes, parameters
and estimated FLOPs; totals per scope and per op; statistics of every weight.

Shapes come from TensorFlow's shape inference when the graph is imported into its C library
(capi.py: nothing runs, TensorFlow's Python layer is not imported);
FLOPs are estimated at batch size 1 (placeholders' unknown first dimension set to 1) with the
rules in ``FLOP_RULES``. Numbers are rounded to 6 significant digits so the description is
the same on every machine. Used by ``inspect --html`` and ``compare --html`` (pages.py).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tfpersist import safety
from tfpersist.core.errors import TfpersistError
from tfpersist.tfapi import capi, dtypes, protos, tensors
from tfpersist.tfapi.tensornames import is_control, op_name, port
from tfpersist.views import drawing

HISTOGRAM_BINS = 20
_LIGHT = 1024  # float constants bigger than this lose their values for shape inference

ELEMENTWISE = {
    "Abs", "Add", "AddV2", "BiasAdd", "Cast", "Ceil", "Elu", "Erf", "Exp", "Floor", "Gelu",
    "LeakyRelu", "Log", "Log1p", "Maximum", "Minimum", "Mul", "Neg", "Pow", "RealDiv",
    "Reciprocal", "Relu", "Relu6", "Round", "Rsqrt", "Selu", "Sigmoid", "Sign", "Softplus",
    "Softsign", "Sqrt", "Square", "SquaredDifference", "Sub", "Tanh", "Swish",
}  # fmt: skip
FREE = {
    "Const", "Identity", "IdentityN", "Placeholder", "PlaceholderWithDefault", "Reshape",
    "Squeeze", "ExpandDims", "Shape", "StopGradient", "NoOp", "Snapshot", "Transpose",
    "ConcatV2", "Pack", "Unpack", "StridedSlice", "Slice", "Split", "SplitV", "Fill",
}  # fmt: skip
FLOP_RULES = {
    "MatMul, BatchMatMul": "2·M·N·K",
    "Conv2D, Conv3D": "2 · output elements · kernel height·width(·depth) · input channels",
    "DepthwiseConv2dNative": "2 · output elements · kernel height·width",
    "MaxPool, AvgPool": "output elements · window size",
    "FusedBatchNorm*": "2 per element (scale and shift)",
    "Softmax, LogSoftmax": "5 per element (as TensorFlow's profiler counts)",
    "Sum, Mean, Max, Min, Prod, ArgMax, ArgMin": "1 per input element",
    "elementwise (Add, BiasAdd, Mul, Relu, Sigmoid, Tanh, …)": "1 per output element",
    "data movement (Identity, Reshape, Transpose, Concat, …)": "0",
}


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def _shapes(graph_def) -> tuple[dict[str, list] | None, dict[str, list] | None]:
    """({node: [(dtype, shape or None) per output]}, the same at batch size 1) by TF's shape
    inference; None where the graph does not import. Big float constants are imported
    without their values (only their shape matters); the batch-1 graph gives placeholders'
    unknown first dimension the size 1."""
    light = protos.GraphDef()
    light.CopyFrom(graph_def)
    for node in light.node:
        if node.op == "Const":
            tensor = node.attr["value"].tensor
            if dtypes.as_dtype(tensor.dtype).is_floating and len(tensor.tensor_content) > _LIGHT:
                tensor.ClearField("tensor_content")
    as_given = _inferred(light)
    for node in light.node:
        if node.op == "Placeholder" and "shape" in node.attr:
            dims = node.attr["shape"].shape.dim
            if dims and dims[0].size < 0:
                dims[0].size = 1
    return as_given, _inferred(light)


def _inferred(graph_def) -> dict[str, list] | None:
    try:
        graph = capi.Graph(graph_def)
    except TfpersistError:  # unknown ops, inconsistent shapes: describe without shapes
        return None
    with graph:
        return {
            node.name: [(dtypes.as_dtype(d).name, s) for d, s in graph.outputs(node.name)]
            for node in graph_def.node
        }


def _known(shape) -> bool:
    return shape is not None and all(d is not None for d in shape)


def _flops(node, shapes: dict[str, list]) -> tuple[int | None, str | None]:
    """(estimated FLOPs at batch 1, None) or (None, why unknown)."""
    op = node.op
    if op in FREE:
        return 0, None
    outs = shapes.get(node.name) or []
    out = outs[0][1] if outs else None

    def input_shape(i: int):
        if i >= len(node.input):
            return None
        found = shapes.get(op_name(node.input[i]))
        index = port(node.input[i])
        return found[index][1] if found and index < len(found) else None

    if not _known(out):
        return None, "output shape unknown"
    elements = int(np.prod(out, dtype=np.int64))
    if op in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = input_shape(0)
        if not _known(a) or len(a) < 2:
            return None, "input shape unknown"
        flag = "transpose_a" if op == "MatMul" else "adj_x"  # read only what the op defines
        transposed = flag in node.attr and node.attr[flag].b
        return 2 * elements * a[-2 if transposed else -1], None
    if op in ("Conv2D", "Conv3D", "DepthwiseConv2dNative"):
        kernel = input_shape(1)
        if not _known(kernel):
            return None, "kernel shape unknown"
        window = kernel[:-1] if op != "DepthwiseConv2dNative" else kernel[:-2]
        return 2 * elements * int(np.prod(window, dtype=np.int64)), None
    if op in ("MaxPool", "AvgPool"):
        return elements * int(np.prod(list(node.attr["ksize"].list.i), dtype=np.int64)), None
    if op.startswith("FusedBatchNorm"):
        return 2 * elements, None
    if op in ("Softmax", "LogSoftmax"):
        return 5 * elements, None
    if op in ("Sum", "Mean", "Max", "Min", "Prod", "ArgMax", "ArgMin"):
        a = input_shape(0)
        if not _known(a):
            return None, "input shape unknown"
        return int(np.prod(a, dtype=np.int64)), None
    if op in ELEMENTWISE:
        return elements, None
    return None, f"no FLOP rule for {op}"


def _weight_stats(name: str, values: np.ndarray) -> dict:
    v = values.astype(np.float64).ravel()
    finite = v[np.isfinite(v)]
    stats = {
        "name": name,
        "dtype": values.dtype.name,
        "shape": list(values.shape),
        "params": int(values.size),
        "bytes": int(values.nbytes),
        "nonfinite": int(v.size - finite.size),
    }
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        counts, _ = np.histogram(finite, bins=HISTOGRAM_BINS, range=(lo, hi) if hi > lo else None)
        stats.update(
            min=_round(lo),
            max=_round(hi),
            mean=_round(float(finite.mean())),
            std=_round(float(finite.std())),
            zeros=int(np.count_nonzero(finite == 0)),
            histogram=[int(c) for c in counts],
        )
    return stats


def scope_of(name: str) -> str:
    """``a/b/MatMul`` → ``a/b``; a top-level node → ``""``."""
    return name.rpartition("/")[0]


def describe(graph_def, outputs: list[str], card: dict | None = None) -> dict:
    """The description of a frozen graph (JSON-able, deterministic); ``outputs``: the output
    nodes to mark; ``card``: a signature/card dict with feature columns, if any."""
    shapes, batch_shapes = _shapes(graph_def)
    unsafe = set(safety.outside(safety.ops_in(graph_def)))
    output_set = set(outputs)
    nodes, weights = [], []
    unknown: list[dict] = []
    total_flops = total_params = total_bytes = 0
    for node in graph_def.node:
        entry: dict = {
            "name": node.name,
            "op": node.op,
            "scope": scope_of(node.name),
            "inputs": [
                {
                    "node": op_name(i),
                    "port": port(i),
                    "control": is_control(i),
                }
                for i in node.input
            ],
            "outputs": [{"dtype": d, "shape": s} for d, s in (shapes or {}).get(node.name, [])],
        }
        role = "op"
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            role = "input"
        elif node.name in output_set:
            role = "output"
        elif node.op == "Const":
            tensor = node.attr["value"].tensor
            dtype = dtypes.as_dtype(tensor.dtype)
            size = int(np.prod([d.size for d in tensor.tensor_shape.dim], dtype=np.int64))
            if dtype.is_floating:
                role = "weight"
                entry["params"], entry["bytes"] = size, size * dtype.size
                total_params += size
                total_bytes += size * dtype.size
                weights.append(_weight_stats(node.name, tensors.make_ndarray(tensor)))
            else:
                role = "const"
        entry["role"] = role
        if node.op in unsafe:
            entry["unsafe"] = safety.risk(node.op)
        if batch_shapes is None:
            flops, why = None, "the graph's shapes could not be inferred"
        else:
            flops, why = _flops(node, batch_shapes)
        entry["flops"] = flops
        if flops is None:
            unknown.append({"node": node.name, "op": node.op, "why": why})
        else:
            total_flops += flops
        nodes.append(entry)
    return {
        "nodes": nodes,
        "scopes": _scopes(nodes),
        "ops": sorted(Counter(n["op"] for n in nodes).items(), key=lambda kv: (-kv[1], kv[0])),
        "weights": sorted(weights, key=lambda w: w["name"]),
        "totals": {
            "nodes": len(nodes),
            "parameters": total_params,
            "parameter_bytes": total_bytes,
            "flops": total_flops,
            "flops_unknown": unknown,
        },
        "signature": _signature(nodes, outputs, card),
        "unsafe_ops": {op: safety.risk(op) for op in sorted(unsafe)},
        "flop_rules": FLOP_RULES,
        "shapes_inferred": shapes is not None,
    }


def _scopes(nodes: list[dict]) -> list[dict]:
    """Every scope (and its parents) with the nodes, parameters and FLOPs under it."""
    totals: dict[str, dict] = {}
    for n in nodes:
        for key in ["", *drawing.ancestors(n["scope"])]:
            t = totals.setdefault(
                key, {"scope": key, "nodes": 0, "params": 0, "bytes": 0, "flops": 0, "unknown": 0}
            )
            t["nodes"] += 1
            t["params"] += n.get("params", 0)
            t["bytes"] += n.get("bytes", 0)
            if n["flops"] is None:
                t["unknown"] += 1
            else:
                t["flops"] += n["flops"]
    return [totals[k] for k in sorted(totals)]


def _signature(nodes: list[dict], outputs: list[str], card: dict | None) -> dict:
    by_name = {n["name"]: n for n in nodes}

    def spec(name: str) -> dict:
        outs = by_name[name]["outputs"] if name in by_name else []
        first = outs[0] if outs else {"dtype": "?", "shape": None}
        return {"name": name, "dtype": first["dtype"], "shape": first["shape"]}

    sig = {
        "inputs": [spec(n["name"]) for n in nodes if n["role"] == "input"],
        "outputs": [spec(name) for name in outputs],
    }
    for key in ("features", "label", "num_classes"):
        if card and key in card:
            sig[key] = card[key]
    return sig


def describe_model(source, output_nodes=None, trust=safety.TRUST_NOTHING) -> tuple[dict, dict]:
    """(description, facts: format, bytes, short sha256) of a .pb (described as it is:
    nothing runs, unsafe ops are shown, not refused), a checkpoint or a SavedModel (frozen in
    memory first, under the untrusted-model checks)."""
    from pathlib import Path

    from tfpersist import formats
    from tfpersist.core.digests import digest
    from tfpersist.freezing import models
    from tfpersist.graph import graphdefs, signature

    path = Path(source)
    kind = formats.detect(path)
    card = signature.beside(path)
    if kind == formats.GRAPH_DEF:
        graph_def = graphdefs.read_graph_def(path)
        found = models.outputs_of(path, kind, card, output_nodes, graph_def)
        outputs = graphdefs.node_names(found) if found else []
        graphdefs.check_nodes(graph_def, outputs)
        sha, size = digest(path)
    else:
        model = models.load_model(path, output_nodes, trust, spec=str(source))
        graph_def, outputs, sha, size = model.graph_def, model.outputs, model.sha256, model.size
        card = card or ({"features": model.features} if model.features else None)
    return describe(graph_def, outputs, card), {"format": kind, "bytes": size, "sha256": sha[:12]}
