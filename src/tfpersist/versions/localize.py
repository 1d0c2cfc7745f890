"""Where two versions of a model part: the first nodes whose values differ.

Both frozen graphs run on the same rows with every intermediate tensor they share (same node
name, dtype and static shape; the first output of each node) fetched. A node *diverges* when
its value differs beyond the tolerance (float tensors) or at all (integer and bool tensors)
while no compared node upstream of it does: the difference starts there. For the first such
node the report gives the reasons visible in the two GraphDefs (its weights, op or attributes
changed) and the path from an input through it to an output, with the distance at each step.
``compare --localize`` prints it and draws it in ``--html``.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from tfpersist import safety
from tfpersist.numerics.distances import max_abs_diff
from tfpersist.tfapi.tensornames import op_name

if TYPE_CHECKING:
    from tfpersist.running.runner import Runner

MAX_ROWS = 256  # rows run with every intermediate tensor fetched (memory grows with them)
SKIPPED_OPS = {"Const", "Placeholder", "PlaceholderWithDefault", "NoOp"}


def topological(graph_def) -> list[str]:
    """Node names with every node after its inputs (data and control); ties keep the
    GraphDef's order, so the order is the same every time."""
    position = {n.name: i for i, n in enumerate(graph_def.node)}
    pending = {n.name: 0 for n in graph_def.node}
    consumers: dict[str, list[str]] = {}
    for n in graph_def.node:
        for i in {op_name(x) for x in n.input}:
            if i in pending:
                pending[n.name] += 1
                consumers.setdefault(i, []).append(n.name)
    ready = [(position[name], name) for name, count in pending.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for c in consumers.get(name, []):
            pending[c] -= 1
            if pending[c] == 0:
                heapq.heappush(ready, (position[c], c))
    seen = set(order)
    order += sorted((n for n in pending if n not in seen), key=position.get)  # cycles
    return order


def constant(graph_def) -> set[str]:
    """Nodes computed from constants alone (a weight, the Identity reading it): their
    differences are the weights' own, reported as a reason, not as a divergence."""
    nodes = {n.name: n for n in graph_def.node}
    found: set[str] = set()
    for name in topological(graph_def):
        node = nodes[name]
        sources = [op_name(x) for x in node.input if not x.startswith("^")]
        if node.op == "Const" or (
            sources and node.op == "Identity" and all(s in found for s in sources)
        ):
            found.add(name)
    return found


def shared_tensors(a: Runner, b: Runner) -> list[str]:
    """Nodes of both graphs whose first output has the same dtype and static shape, in A's
    topological order; constants (and what only reads them), placeholders and non-numeric
    tensors left out."""
    names = []
    nodes_b = {n.name for n in b.graph_def.node}
    fixed = constant(a.graph_def) | constant(b.graph_def)
    for name in topological(a.graph_def):
        op_a = a.graph.get_operation_by_name(name)
        if name not in nodes_b or name in fixed or op_a.type in SKIPPED_OPS or not op_a.outputs:
            continue
        op_b = b.graph.get_operation_by_name(name)
        if op_b.type in SKIPPED_OPS or not op_b.outputs:
            continue
        ta, tb = op_a.outputs[0], op_b.outputs[0]
        numeric = ta.dtype.is_floating or ta.dtype.is_integer or ta.dtype.is_bool
        if ta.dtype != tb.dtype or not numeric:
            continue
        shape_a = None if ta.shape.rank is None else ta.shape.as_list()
        shape_b = None if tb.shape.rank is None else tb.shape.as_list()
        if shape_a == shape_b:
            names.append(name)
    return names


def _differs(a: np.ndarray, b: np.ndarray, tolerance: float) -> tuple[float, bool]:
    if a.shape != b.shape:  # a dynamic shape that came out different
        return float("inf"), True
    if a.dtype.kind in "fc":
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if (nan_a != nan_b).any():
            return float("inf"), True
        d = max_abs_diff(np.where(nan_a, 0, a), np.where(nan_b, 0, b))
        return d, d > tolerance
    d = max_abs_diff(a, b)
    return d, d > 0


def _reasons(name: str, a_nodes: dict, b_nodes: dict) -> list[str]:
    """What the two GraphDefs ({name: NodeDef}) show changed at ``name``: its op,
    attributes, inputs, or the constants it reads (directly or through Identity nodes)."""
    na, nb = a_nodes[name], b_nodes[name]
    reasons = []
    if na.op != nb.op:
        reasons.append(f"op {na.op} → {nb.op}")
    attrs = sorted(
        k
        for k in set(na.attr) | set(nb.attr)
        if k not in ("_output_shapes", "_class") and na.attr[k] != nb.attr[k]
    )
    if attrs:
        reasons.append(f"attributes changed: {', '.join(attrs)}")
    if [op_name(x) for x in na.input] != [op_name(x) for x in nb.input]:
        reasons.append("inputs rewired")
    for x in na.input:
        src = op_name(x)
        while src in a_nodes and a_nodes[src].op == "Identity" and a_nodes[src].input:
            src = op_name(a_nodes[src].input[0])
        weight = a_nodes.get(src)
        if weight is not None and weight.op == "Const" and weight != b_nodes.get(src):
            reasons.append(f"weight {src} changed")
    return reasons


def _path(graph_def, through: str, outputs: list[str]) -> list[str]:
    """Shortest data path input → ``through`` → an output (the first of ``outputs`` it
    reaches: pass the differing ones first)."""
    nodes = {n.name: n for n in graph_def.node}
    consumers: dict[str, list[str]] = {}
    for n in graph_def.node:
        for x in n.input:
            if not x.startswith("^"):
                consumers.setdefault(op_name(x), []).append(n.name)

    def bfs(start: str, step, done) -> list[str]:
        parent = {start: None}
        queue = deque([start])
        while queue:
            name = queue.popleft()
            if done(name):
                path = []
                while name is not None:
                    path.append(name)
                    name = parent[name]
                return path
            for nxt in step(name):
                if nxt not in parent:
                    parent[nxt] = name
                    queue.append(nxt)
        return [start]

    def inputs_of(name):
        node = nodes.get(name)
        return [op_name(x) for x in node.input if not x.startswith("^")] if node else []

    back = bfs(through, inputs_of, lambda n: nodes[n].op == "Placeholder")
    for target in outputs:
        forward = bfs(through, lambda n: consumers.get(n, []), lambda n, t=target: n == t)
        if forward[0] == target:
            return back + list(reversed(forward))[1:]
    return back


def rows(x) -> int:
    """Rows of one input array, or of the first of {placeholder: array}."""
    return len(next(iter(x.values())) if isinstance(x, dict) else x)


def localize(
    a,
    b,
    x: np.ndarray | dict[str, np.ndarray],
    input_node: str | None,
    tolerance: float = 0.0,
    trust: safety.Trust = safety.TRUST_NOTHING,
    max_rows: int = MAX_ROWS,
) -> dict:
    """Where models ``a`` and ``b`` (freezing.models.Model) part on the rows of ``x``."""
    from tfpersist.running.runner import Runner  # TensorFlow: both models run

    count = min(rows(x), max_rows)
    feed = {k: v[:count] for k, v in x.items()} if isinstance(x, dict) else x[:count]
    with (
        Runner.from_graph_def(a.graph_def, a.spec) as ra,
        Runner.from_graph_def(b.graph_def, b.spec) as rb,
    ):
        ra.trust = rb.trust = trust
        names = shared_tensors(ra, rb)
        values_a = ra.run(feed, input_node, names, batch_size=max_rows)
        values_b = rb.run(feed, input_node, names, batch_size=max_rows)
    distance, differs = {}, {}
    for name in names:
        distance[name], differs[name] = _differs(values_a[name], values_b[name], tolerance)
    compared = set(names)
    upstream: dict[str, bool] = {}  # a compared node above it differs
    nodes = {n.name: n for n in a.graph_def.node}
    for name in topological(a.graph_def):
        upstream[name] = any(
            (differs.get(i, False) if i in compared else False) or upstream.get(i, False)
            for i in (op_name(x) for x in nodes[name].input)
        )
    first = [n for n in names if differs[n] and not upstream[n]]
    b_nodes = {n.name: n for n in b.graph_def.node}
    report = {
        "rows": count,
        "tolerance": tolerance,
        "compared": len(names),
        "differing": sum(differs.values()),
        "first": [
            {
                "node": n,
                "op": nodes[n].op,
                "distance": distance[n],
                "why": _reasons(n, nodes, b_nodes),
            }
            for n in first
        ],
        "path": [],
        "distances": distance,
        "differs": sorted(n for n in names if differs[n]),
    }
    if first:
        report["path"] = [
            {"node": n, "op": nodes[n].op, "distance": distance.get(n)}
            for n in _path(
                a.graph_def, first[0], sorted(a.outputs, key=lambda o: not differs.get(o))
            )
        ]
    return report


def render_text(loc: dict) -> list[str]:
    """Lines for compare's text report."""
    head = (
        f"{loc['compared']} shared tensors on {loc['rows']} rows, {loc['differing']} differ "
        f"beyond {loc['tolerance']:g}"
    )
    if not loc["first"]:
        return [f"localize:  no divergence ({head})"]
    lines = [f"localize:  {len(loc['first'])} divergence point(s) ({head})"]
    for f in loc["first"]:
        why = f"; {'; '.join(f['why'])}" if f["why"] else ""
        lines.append(
            f"  first differs at {f['node']} ({f['op']}): max abs {f['distance']:.3g}{why}"
        )
    steps = [
        f"{p['node']}" + ("" if p["distance"] is None else f" ({p['distance']:.3g})")
        for p in loc["path"]
    ]
    lines.append("  path: " + " → ".join(steps))
    return lines
