"""Every contraction a graph runs — MatMul, BatchMatMul, convolutions and their gradients —
with its contraction length K, read from TensorFlow's own shape inference (capi: no Python
TensorFlow, nothing runs).

Why K matters: under the CPU pin TensorFlow's matmul and convolution kernels run Eigen's
tensor contraction, which sums K in blocks whose size it derives from the L1 data cache the
CPU reports (``computeProductBlockingSizes``: 288 floats for a 32 KiB L1D, 432 for 48 KiB).
A contraction with K ≤ ``BOUND`` (256) is one block on every CPU with an L1D of 32 KiB or
more — the same float sum everywhere; a longer one may be summed in another order on a CPU
with other caches (Intel Ice Lake and newer, AMD Zen 5: 48 KiB; AMD Zen 2–4, Intel Skylake
and Cascade Lake: 32 KiB), so its bits are not portable. ``pipeline.portable`` builds layers
whose contractions all stay within the bound.

A dimension the graph leaves open (the batch, usually) is read as ``rows`` when given (a
training graph's largest micro-batch), else K is unknown (None): it depends on what is fed.
Contractions inside functions (a TF2 SavedModel's, a Keras model's) are not seen here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfpersist.tfapi import capi, protos

BOUND = 256  # one Eigen K-block on every CPU whose L1 data cache holds 32 KiB or more
# (params.py's train.max_k defaults to the same figure; tests/pipeline/test_portable.py)


def _matmul(node, shapes):
    a, b = shapes[0], shapes[1]
    if a is not None:
        return [a[0] if _flag(node, "transpose_a") else a[1]]
    if b is not None:
        return [b[1] if _flag(node, "transpose_b") else b[0]]
    return None


def _batch_matmul(node, shapes):
    x = shapes[0]
    if x is None or len(x) < 2:
        return None
    return [x[-2] if _flag(node, "adj_x") else x[-1]]


def _filter_taps_in(node, shapes):  # forward: kernel taps × input channels
    f = shapes[1]
    return None if f is None else f[:-1]


def _filter_taps_out(node, shapes):  # input gradient: kernel taps × output channels
    f = shapes[1]
    return None if f is None else [*f[:-2], f[-1]]


def _depthwise_taps(node, shapes):
    f = shapes[1]
    return None if f is None else f[:-2]


def _rows_pixels(node, shapes):  # filter gradient: batch rows × output pixels
    g = shapes[2]
    if g is None:
        return None
    channels_first = _string(node, "data_format").startswith("NC")
    return g[:1] + (g[2:] if channels_first else g[1:-1])


# op → (the dims of its inputs' shapes whose product is K, what K counts)
_RULES = {
    "MatMul": (_matmul, "its input's width"),
    "BatchMatMul": (_batch_matmul, "the inner dimension"),
    "BatchMatMulV2": (_batch_matmul, "the inner dimension"),
    "BatchMatMulV3": (_batch_matmul, "the inner dimension"),
    "Conv2D": (_filter_taps_in, "kernel taps × input channels"),
    "Conv3D": (_filter_taps_in, "kernel taps × input channels"),
    "DepthwiseConv2dNative": (_depthwise_taps, "kernel taps"),
    "Conv2DBackpropInput": (_filter_taps_out, "kernel taps × output channels"),
    "Conv3DBackpropInputV2": (_filter_taps_out, "kernel taps × output channels"),
    "DepthwiseConv2dNativeBackpropInput": (_filter_taps_out, "kernel taps × multiplier"),
    "Conv2DBackpropFilter": (_rows_pixels, "rows × output pixels"),
    "Conv3DBackpropFilterV2": (_rows_pixels, "rows × output pixels"),
    "DepthwiseConv2dNativeBackpropFilter": (_rows_pixels, "rows × output pixels"),
}
_MATMUL_OVER = {False: "its input's width", True: "its input's rows"}


@dataclass(frozen=True)
class Contraction:
    node: str
    op: str
    k: int | None  # None: a dimension K is made of is left open by the graph
    over: str  # what K counts

    def portable(self, bound: int = BOUND) -> bool:
        return self.k is not None and self.k <= bound

    def describe(self) -> str:
        k = "?" if self.k is None else str(self.k)
        return f"{self.node} ({self.op}): K = {k}, over {self.over}"


def _flag(node, name: str) -> bool:
    return name in node.attr and node.attr[name].b


def _string(node, name: str) -> str:
    return node.attr[name].s.decode() if name in node.attr else ""


def _bound_rows(graph_def, rows: int):
    """A copy whose placeholders take ``rows`` rows where their first dimension is open."""
    bound = protos.graph_pb2.GraphDef()
    bound.CopyFrom(graph_def)
    for node in bound.node:
        if node.op == "Placeholder" and "shape" in node.attr:
            shape = node.attr["shape"].shape
            if not shape.unknown_rank and shape.dim and shape.dim[0].size < 0:
                shape.dim[0].size = rows
    return bound


def _tensor(name: str) -> tuple[str, int]:
    node, _, port = name.partition(":")
    return node, int(port) if port else 0


# Ops whose output has the shape of their first input (followed to find a weight's shape).
_PASS_THROUGH = {"Identity", "ReadVariableOp", "Enter", "StopGradient"}
# Ops whose K the weight operand alone gives (input 1: MatMul's b, a convolution's filter).
_FROM_WEIGHT = {
    "MatMul",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2dNative",
    "Conv2DBackpropInput",
    "Conv3DBackpropInputV2",
    "DepthwiseConv2dNativeBackpropInput",
}


def _declared_shape(name: str, by_name: dict) -> list[int | None] | None:
    """The shape a Const, variable or placeholder declares, through pass-through ops; None
    where the producer declares none (then TensorFlow's shape inference is asked)."""
    for _ in range(32):
        node = by_name.get(_tensor(name)[0])
        if node is None:
            return None
        if node.op in _PASS_THROUGH and node.input:
            name = node.input[0]
            continue
        if node.op == "Const" and "value" in node.attr:
            shape = node.attr["value"].tensor.tensor_shape
        elif node.op in ("VariableV2", "VarHandleOp", "Placeholder") and "shape" in node.attr:
            shape = node.attr["shape"].shape
        else:
            return None
        return None if shape.unknown_rank else [d.size if d.size >= 0 else None for d in shape.dim]
    return None


def _from_declarations(node, by_name: dict) -> list[int | None] | None:
    """K's dims read from the weight operand's declared shape alone, when that decides K."""
    if node.op not in _FROM_WEIGHT:
        return None
    inputs = [i for i in node.input if not i.startswith("^")]
    weight = _declared_shape(inputs[1], by_name) if len(inputs) > 1 else None
    if weight is None or (node.op == "MatMul" and len(weight) != 2):
        return None
    if node.op == "MatMul":  # b: [K, N], or [N, K] transposed
        return [weight[1] if _flag(node, "transpose_b") else weight[0]]
    rule, _ = _RULES[node.op]
    return rule(node, [None, weight, None])


def find(graph_def, rows: int | None = None) -> list[Contraction]:
    """The graph's contractions, in node order. ``rows``: the batch size read for a first
    dimension the graph leaves open (a training graph's largest micro-batch). K is read from
    the weights' declared shapes where they decide it (a frozen graph: no TensorFlow), else
    from TensorFlow's shape inference (its C library)."""
    wanted = [n for n in graph_def.node if n.op in _RULES]
    if not wanted:
        return []
    by_name = {n.name: n for n in graph_def.node}
    declared = {n.name: _from_declarations(n, by_name) for n in wanted}
    inferred = {}
    if any(dims is None or None in dims for dims in declared.values()):
        imported = _bound_rows(graph_def, rows) if rows else graph_def
        with capi.Graph(imported) as graph:
            for node in wanted:
                inputs = [_tensor(i) for i in node.input if not i.startswith("^")]
                shapes = [graph.output(name, port)[1] for name, port in inputs]
                inferred[node.name] = _RULES[node.op][0](node, shapes)
    found = []
    for node in wanted:
        dims = inferred.get(node.name, declared[node.name])
        k = None if dims is None or any(d is None for d in dims) else math.prod(dims)
        over = _RULES[node.op][1]
        if node.op == "MatMul":
            over = _MATMUL_OVER[_flag(node, "transpose_a")]
        found.append(Contraction(node.name, node.op, k, over))
    return found


def past(found: list[Contraction], bound: int = BOUND) -> list[Contraction]:
    """Those whose K is known and exceeds ``bound``."""
    return [c for c in found if c.k is not None and c.k > bound]


def beyond(found: list[Contraction], bound: int = BOUND) -> list[Contraction]:
    """Those whose K exceeds ``bound`` or is not known."""
    return [c for c in found if not c.portable(bound)]


def explain(found: list[Contraction], bound: int = BOUND, limit: int = 5) -> str:
    """One line: which contractions are past the bound and what that means."""
    past = beyond(found, bound)
    listed = "; ".join(c.describe() for c in past[:limit])
    more = f"; and {len(past) - limit} more" if len(past) > limit else ""
    return (
        f"{len(past)} of {len(found)} contractions sum over more than K = {bound} "
        f"({listed}{more}): "
        "Eigen cuts such a sum into blocks sized by the CPU's L1 data cache, so its float bits "
        "may differ between CPUs with other caches (32 KiB vs 48 KiB L1D)"
    )
