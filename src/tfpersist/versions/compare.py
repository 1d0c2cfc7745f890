"""How far apart two versions of a model are: signature, structure, weights, outputs.

``tfpersist compare`` freezes both sides in memory (whatever their format, freezing/models.py),
so a .pb, a checkpoint and a SavedModel of the same model compare equal. The signature,
structure and weights sections read the frozen graphs (no TensorFlow import where freezing
needs none); the outputs section runs both models.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from tfpersist import safety
from tfpersist.freezing.models import Model
from tfpersist.graph import signature
from tfpersist.numerics.distances import max_abs_diff
from tfpersist.tfapi import dtypes, tensors
from tfpersist.versions.distances import weight_distance
from tfpersist.versions.localize import rows

# -- tfpersist compare ---------------------------------------------------------------------

SECTIONS = ("signature", "structure", "weights", "outputs")


def _signature(model: Model) -> dict:
    sig = signature.describe_graph_def(model.graph_def, model.outputs)
    return {
        side: {t["name"]: {"dtype": t["dtype"], "shape": t["shape"]} for t in sig[side]}
        for side in ("inputs", "outputs")
    }


def _float_constants(graph_def) -> dict[str, np.ndarray]:
    return {
        n.name: tensors.make_ndarray(n.attr["value"].tensor)
        for n in graph_def.node
        if n.op == "Const" and dtypes.as_dtype(n.attr["value"].tensor.dtype).is_floating
    }


def _weights(a: Model, b: Model) -> dict:
    wa, wb = _float_constants(a.graph_def), _float_constants(b.graph_def)
    changed = []
    for name in sorted(set(wa) & set(wb)):
        if wa[name].shape != wb[name].shape:
            continue
        diff = wa[name].astype(np.float64) - wb[name].astype(np.float64)
        max_abs = max_abs_diff(wa[name], wb[name])
        if max_abs > 0:
            norm = float(np.linalg.norm(wa[name].astype(np.float64)))
            rel = float(np.linalg.norm(diff)) / norm if norm > 0 else float("inf")
            changed.append({"name": name, "max_abs": max_abs, "rel_l2": rel})
    changed.sort(key=lambda c: (-c["max_abs"], c["name"]))
    distance = weight_distance(wa, wb)
    return {
        "compared": distance["compared"],
        "changed": changed,
        "max_abs": distance["max_abs"],
        "shape_changed": [
            {"name": n, "a": list(wa[n].shape), "b": list(wb[n].shape)}
            for n in distance["shape_changed"]
        ],
        "only_a": distance["only_a"],
        "only_b": distance["only_b"],
    }


def node_changes(a_def, b_def) -> dict[str, list[str]]:
    """Nodes only in B (added), only in A (removed), in both with another op, inputs or
    attributes (changed), and constants holding other values (values_changed)."""
    nodes_a = {n.name: n for n in a_def.node}
    nodes_b = {n.name: n for n in b_def.node}

    def same(x, y) -> bool:
        return x.SerializeToString(deterministic=True) == y.SerializeToString(deterministic=True)

    differ = [n for n in nodes_a if n in nodes_b and not same(nodes_a[n], nodes_b[n])]
    values = [
        n
        for n in differ
        if nodes_a[n].op == nodes_b[n].op == "Const"
        and nodes_a[n].attr["dtype"] == nodes_b[n].attr["dtype"]
    ]
    return {
        "added": sorted(set(nodes_b) - set(nodes_a)),
        "removed": sorted(set(nodes_a) - set(nodes_b)),
        "changed": sorted(set(differ) - set(values)),
        "values_changed": sorted(values),
    }


def _structure(a: Model, b: Model) -> dict:
    ops_a = Counter(n.op for n in a.graph_def.node)
    ops_b = Counter(n.op for n in b.graph_def.node)
    deltas = {op: ops_b[op] - ops_a[op] for op in sorted(ops_a | ops_b) if ops_b[op] != ops_a[op]}
    changes = node_changes(a.graph_def, b.graph_def)
    return {
        "nodes": {"a": len(a.graph_def.node), "b": len(b.graph_def.node)},
        "ops_added": sorted(set(ops_b) - set(ops_a)),
        "ops_removed": sorted(set(ops_a) - set(ops_b)),
        "op_count_deltas": deltas,
        "nodes_added": changes["added"],
        "nodes_removed": changes["removed"],
        "nodes_changed": changes["changed"],
        "constants_changed": changes["values_changed"],
    }


def _class_output(model: Model, values: dict[str, np.ndarray]) -> np.ndarray | None:
    for name in model.outputs:
        v = values[name]
        if v.ndim == 1 and np.issubdtype(v.dtype, np.integer):
            return v
    for name in model.outputs:
        v = values[name]
        if v.ndim == 2 and np.issubdtype(v.dtype, np.floating):
            return v.argmax(axis=1)
    return None


def _unfed(a: Model, b: Model, x) -> str | None:
    """Why ``x`` cannot be fed to both models, or None. ``x`` is one array for the input node
    both share, or {placeholder: array} for models with several inputs."""
    if isinstance(x, dict):
        for model in (a, b):
            missing = sorted(set(x) - set(signature.placeholders(model.graph_def)))
            if missing:
                return f"{model.spec} has no placeholder {', '.join(missing)}"
        return None
    if not a.input_node or a.input_node != b.input_node:
        return f"the input nodes differ ({a.input_node} vs {b.input_node})"
    return None


def _behaviour(a: Model, b: Model, x, y, source: str, trust: safety.Trust) -> dict:
    if x is None:
        return {"skipped": source}
    why = _unfed(a, b, x)
    if why:
        return {"skipped": why}
    from tfpersist.running.runner import Runner  # TensorFlow: both models run

    with (
        Runner.from_graph_def(a.graph_def, a.spec) as ra,
        Runner.from_graph_def(b.graph_def, b.spec) as rb,
    ):
        ra.trust = rb.trust = trust
        out_a = ra.run(x, a.input_node, a.outputs)
        out_b = rb.run(x, b.input_node, b.outputs)
    result: dict = {"data": source, "rows": rows(x), "max_abs": {}}
    for name in a.outputs:
        if name in out_b and out_a[name].shape == out_b[name].shape:
            result["max_abs"][name] = max_abs_diff(out_a[name], out_b[name])
            if out_a[name].dtype.kind not in "fc":
                result.setdefault("exact", []).append(name)
    ca, cb = _class_output(a, out_a), _class_output(b, out_b)
    if ca is not None and cb is not None:
        result["equal_predictions"] = float((ca == cb).mean())
        if y is not None:
            result["accuracy"] = {"a": float((ca == y).mean()), "b": float((cb == y).mean())}
    return result


def compare_models(
    a: Model,
    b: Model,
    x=None,
    y=None,
    data_source: str = "no data",
    trust=safety.TRUST_NOTHING,
    localize_tolerance: float | None = None,
) -> dict:
    """The comparison report (JSON-able; keys documented in docs/cli.md, stable). With
    ``localize_tolerance``, also where the two part (localize.py) on the same rows."""
    sig_a, sig_b = _signature(a), _signature(b)
    changes = []
    for side in ("inputs", "outputs"):
        for name in sorted(set(sig_a[side]) | set(sig_b[side])):
            old, new = sig_a[side].get(name), sig_b[side].get(name)
            if old != new:
                what = (
                    "removed"
                    if new is None
                    else "added"
                    if old is None
                    else (f"{old['dtype']} {old['shape']} → {new['dtype']} {new['shape']}")
                )
                changes.append(f"{side[:-1]} {name}: {what}")
    report = {
        "a": {"spec": a.spec, "format": a.kind, "sha256": a.sha256, "bytes": a.size},
        "b": {"spec": b.spec, "format": b.kind, "sha256": b.sha256, "bytes": b.size},
        "identical": a.sha256 == b.sha256,
        "signature": {"a": sig_a, "b": sig_b, "changes": changes},
        "structure": _structure(a, b),
        "weights": _weights(a, b),
        "outputs": _behaviour(a, b, x, y, data_source, trust),
    }
    if localize_tolerance is not None:
        report["localize"] = _localize(a, b, x, data_source, trust, localize_tolerance)
    return report


def _localize(a: Model, b: Model, x, source: str, trust, tolerance: float) -> dict:
    if x is None:
        return {"skipped": source}
    why = _unfed(a, b, x)
    if why:
        return {"skipped": why}
    from tfpersist.versions import localize

    return localize.localize(a, b, x, a.input_node, tolerance, trust)


def differences(report: dict, tolerance: float) -> dict[str, str | None]:
    """For each section, why it differs beyond ``tolerance`` (None when it does not)."""
    s, w, o = report["structure"], report["weights"], report["outputs"]
    # The tolerance is for floats: class ids, counts and flags must be equal.
    exact = set(o.get("exact", []))
    changed_exact = sorted(n for n, d in o.get("max_abs", {}).items() if n in exact and d > 0)
    floats = [d for n, d in o.get("max_abs", {}).items() if n not in exact]
    out_max = max(floats, default=0.0)
    return {
        "signature": "; ".join(report["signature"]["changes"]) or None,
        "structure": (f"ops {s['op_count_deltas']}" if s["op_count_deltas"] else None),
        "weights": (
            f"max abs weight difference {w['max_abs']:.3g} > {tolerance:g}"
            if w["max_abs"] > tolerance
            else "weights added, removed or reshaped"
            if w["only_a"] or w["only_b"] or w["shape_changed"]
            else None
        ),
        "outputs": (
            f"max abs output difference {out_max:.3g} > {tolerance:g}"
            if out_max > tolerance
            else f"{', '.join(changed_exact)} differ (integer outputs must be equal)"
            if changed_exact
            else None
        ),
    }


def _short(side: dict) -> str:
    return f"{side['format']}, {side['bytes']} bytes, sha256 {side['sha256'][:12]}"


def _verdicts(report: dict, tolerance: float) -> dict[str, str]:
    why = differences(report, tolerance)
    return {k: ("DIFFERS: " + v) if v else "same" for k, v in why.items()}


def render_text(report: dict, tolerance: float) -> str:
    v = _verdicts(report, tolerance)
    s, w, o = report["structure"], report["weights"], report["outputs"]
    lines = [
        f"A: {report['a']['spec']} ({_short(report['a'])})",
        f"B: {report['b']['spec']} ({_short(report['b'])})",
        f"identity:  {'identical bytes' if report['identical'] else 'different bytes'}",
        f"signature: {v['signature']}",
        f"structure: {v['structure']} ({s['nodes']['a']} → {s['nodes']['b']} nodes"
        + (f"; ops added {', '.join(s['ops_added'])}" if s["ops_added"] else "")
        + (f"; ops removed {', '.join(s['ops_removed'])}" if s["ops_removed"] else "")
        + (
            f"; nodes +{len(s['nodes_added'])} -{len(s['nodes_removed'])} "
            f"~{len(s['nodes_changed'])}"
            if s["nodes_added"] or s["nodes_removed"] or s["nodes_changed"]
            else ""
        )
        + ")",
        f"weights:   {v['weights']} ({w['compared']} compared, {len(w['changed'])} changed"
        + (
            f", largest {w['changed'][0]['name']} rel L2 {w['changed'][0]['rel_l2']:.3g}"
            if w["changed"]
            else ""
        )
        + (f"; only in A: {', '.join(w['only_a'])}" if w["only_a"] else "")
        + (f"; only in B: {', '.join(w['only_b'])}" if w["only_b"] else "")
        + ")",
    ]
    if "skipped" in o:
        lines.append(f"outputs:   not compared ({o['skipped']})")
    else:
        lines.append(f"outputs:   {v['outputs']} (on {o['data']}, {o['rows']} rows)")
        for name, value in o["max_abs"].items():
            lines.append(f"  max abs difference {name}: {value:.3g}")
        if "equal_predictions" in o:
            lines.append(f"  equal predicted classes: {o['equal_predictions']:.2%}")
        if "accuracy" in o:
            lines.append(f"  accuracy: A {o['accuracy']['a']:.4f}, B {o['accuracy']['b']:.4f}")
    if "localize" in report:
        from tfpersist.versions.localize import render_text as localized

        loc = report["localize"]
        lines += [f"localize:  not run ({loc['skipped']})"] if "skipped" in loc else localized(loc)
    return "\n".join(lines)


def render_markdown(report: dict, tolerance: float) -> str:
    v = _verdicts(report, tolerance)
    a, b, s, w, o = (report[k] for k in ("a", "b", "structure", "weights", "outputs"))
    rows = [
        ("format", a["format"], b["format"], ""),
        ("bytes", a["bytes"], b["bytes"], "identical" if report["identical"] else "different"),
        ("sha256", a["sha256"][:12], b["sha256"][:12], ""),
        ("signature", "", "", v["signature"]),
        ("nodes", s["nodes"]["a"], s["nodes"]["b"], v["structure"]),
        (
            "weights",
            "",
            "",
            f"{v['weights']} ({w['compared']} compared, {len(w['changed'])} changed)",
        ),
    ]
    if "skipped" not in o:
        rows.append(("outputs", "", "", f"{v['outputs']} ({o['rows']} rows of {o['data']})"))
        rows += [(f"max abs diff `{n}`", "", "", f"{x:.3g}") for n, x in o["max_abs"].items()]
        if "equal_predictions" in o:
            rows.append(("equal predicted classes", "", "", f"{o['equal_predictions']:.2%}"))
        if "accuracy" in o:
            acc = o["accuracy"]
            rows.append(
                ("accuracy", f"{acc['a']:.4f}", f"{acc['b']:.4f}", f"{acc['b'] - acc['a']:+.4f}")
            )
    loc = report.get("localize")
    if loc and "skipped" not in loc:
        where = (
            "; ".join(f"`{f['node']}` ({f['op']}, {f['distance']:.3g})" for f in loc["first"])
            or f"none ({loc['compared']} tensors compared)"
        )
        rows.append(("first divergence", "", "", where))
    head = f"| | A: `{a['spec']}` | B: `{b['spec']}` | |\n|---|---|---|---|\n"
    return head + "\n".join(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows)


def render_json(report: dict, tolerance: float) -> str:
    payload = dict(report, differs=differences(report, tolerance), tolerance=tolerance)
    return json.dumps(payload, indent=2, sort_keys=True)
