"""The compare page: two versions' merged graph (added, removed, changed nodes, the first
divergence), the verdicts, the signature and weight changes, the outputs and --localize's
path — one self-contained page like the model page (pages.py), whose parts it uses.
"""

from __future__ import annotations

from tfpersist.views import drawing
from tfpersist.views.pages import (
    document,
    e,
    graph_section,
    page_nodes,
    table,
)

DIFF_LEGEND = (
    '<span style="background:#b7f0b1">only in B</span><span style="background:#ffbcbc">only '
    'in A</span><span style="background:#ffd98a">changed</span><span style="border-color:'
    '#7b2cbf;border-width:3px">first divergence</span><span style="border-color:#b185db;'
    'border-width:2px">differs downstream</span>'
)


def merged_nodes(view_a: dict, view_b: dict, structure: dict) -> tuple[list[dict], dict]:
    """B's nodes, then the nodes only A has; and each changed node's status."""
    status = {n: "added" for n in structure["nodes_added"]}
    status.update((n, "removed") for n in structure["nodes_removed"])
    status.update((n, "changed") for n in structure["nodes_changed"])
    status.update((n, "changed") for n in structure["constants_changed"])
    removed = set(structure["nodes_removed"])
    nodes = list(view_b["nodes"]) + [n for n in view_a["nodes"] if n["name"] in removed]
    return nodes, status


def _verdict_rows(report: dict, why: dict) -> list[list]:
    rows = []
    for section in ("signature", "structure", "weights", "outputs"):
        text = why[section]
        mark = (
            ("html", f'<span class="bad">differs</span>: {e(text)}')
            if text
            else ("html", '<span class="ok">same</span>')
        )
        rows.append([section, mark])
    return rows


def diff_page(report: dict, view_a: dict, view_b: dict, why: dict) -> str:
    """The page for two versions: ``report`` from compare.compare_models, ``why`` its
    compare.differences."""
    s, w, o = report["structure"], report["weights"], report["outputs"]
    loc = report.get("localize") or {}
    nodes, status = merged_nodes(view_a, view_b, s)
    first = [f["node"] for f in loc.get("first", [])]
    extra = {n: {"status": st} for n, st in status.items()}
    for name, d in loc.get("distances", {}).items():
        extra.setdefault(name, {})["distance"] = d
    svg = drawing.render_svg(drawing.dot_source(nodes, status, first, loc.get("differs", ())))
    a, b = report["a"], report["b"]
    sides = table(
        ["", "spec", "format", "bytes", "sha256"],
        [
            ["A", a["spec"], a["format"], a["bytes"], a["sha256"][:12]],
            ["B", b["spec"], b["format"], b["bytes"], b["sha256"][:12]],
        ],
        numeric=(3,),
    )
    summary = (
        f'<section id="summary"><h2>Summary</h2>{sides}'
        + table(["section", "verdict"], _verdict_rows(report, why))
        + "</section>"
    )
    changes = report["signature"]["changes"]
    signature = '<section id="signature"><h2>Signature</h2>' + (
        "<ul>" + "".join(f"<li>{e(c)}</li>" for c in changes) + "</ul>"
        if changes
        else "<p>Same inputs and outputs (names, dtypes, shapes).</p>"
    )
    signature += "</section>"
    structure = (
        f'<section id="structure"><h2>Structure: {s["nodes"]["a"]} → {s["nodes"]["b"]} nodes'
        "</h2>"
        + table(
            ["", "nodes"],
            [
                ["only in B (added)", ", ".join(s["nodes_added"]) or "none"],
                ["only in A (removed)", ", ".join(s["nodes_removed"]) or "none"],
                [
                    "changed (op, inputs, attributes or values)",
                    ", ".join(s["nodes_changed"]) or "none",
                ],
                [
                    "op count changes",
                    ", ".join(f"{k} {v:+d}" for k, v in s["op_count_deltas"].items()) or "none",
                ],
            ],
        )
        + "</section>"
    )
    ranked = sorted(w["changed"], key=lambda c: (-c["rel_l2"], c["name"]))
    weights = (
        f'<section id="weights"><h2>Weights: {len(w["changed"])} of {w["compared"]} changed'
        "</h2>"
        + table(
            ["weight", "relative L2 change", "max abs change"],
            [[c["name"], f"{c['rel_l2']:.4g}", f"{c['max_abs']:.4g}"] for c in ranked],
            numeric=(1, 2),
        )
        + "".join(
            f"<p>{e(label)}: {e(', '.join(map(str, items)))}</p>"
            for label, items in (
                ("only in A", w["only_a"]),
                ("only in B", w["only_b"]),
                ("shape changed", [f"{x['name']} {x['a']} → {x['b']}" for x in w["shape_changed"]]),
            )
            if items
        )
        + "</section>"
    )
    if "skipped" in o:
        outputs = f"<p>Not run: {e(o['skipped'])}.</p>"
    else:
        rows = [[n, f"{d:.4g}"] for n, d in o["max_abs"].items()]
        if "equal_predictions" in o:
            rows.append(["equal predicted classes", f"{o['equal_predictions']:.2%}"])
        if "accuracy" in o:
            rows.append(["accuracy A → B", f"{o['accuracy']['a']:.4f} → {o['accuracy']['b']:.4f}"])
        outputs = f"<p>On {e(o['data'])}, {o['rows']} rows.</p>" + table(
            ["output", "max abs difference"], rows, numeric=(1,)
        )
    outputs = f'<section id="outputs"><h2>Outputs</h2>{outputs}</section>'
    body = summary + graph_section(svg, DIFF_LEGEND) + signature + structure + weights + outputs
    nav = [
        ("summary", "Summary"),
        ("graph", "Graph"),
        ("signature", "Signature"),
        ("structure", "Structure"),
        ("weights", "Weights"),
        ("outputs", "Outputs"),
    ]
    if loc:
        body += _localize_section(loc)
        nav.append(("localize", "Where they part"))
    title = f"{a['spec']} vs {b['spec']}"
    subtitle = e("; ".join(f"{k} {'differs' if v else 'same'}" for k, v in why.items()))
    return document(title, subtitle, nav, body, {"nodes": page_nodes(nodes, extra)})


def _localize_section(loc: dict) -> str:
    head = '<section id="localize"><h2>Where they part</h2>'
    if "skipped" in loc:
        return head + f"<p>Not run: {e(loc['skipped'])}.</p></section>"
    text = (
        f"<p>{loc['compared']} tensors both graphs compute (same name, dtype and shape) were "
        f"fetched on {loc['rows']} rows; {loc['differing']} differ beyond {loc['tolerance']:g}."
        "</p>"
    )
    if not loc["first"]:
        return head + text + '<p class="ok">No divergence.</p></section>'
    first = table(
        ["first differing node", "op", "max abs difference", "visible cause"],
        [
            [
                f["node"],
                f["op"],
                f"{f['distance']:.4g}",
                "; ".join(f["why"]) or "upstream of nothing compared (numerics)",
            ]
            for f in loc["first"]
        ],
        numeric=(2,),
    )
    path = table(
        ["path: input → first divergence → output", "op", "max abs difference"],
        [
            [
                p["node"],
                p["op"],
                "not compared" if p["distance"] is None else f"{p['distance']:.4g}",
            ]
            for p in loc["path"]
        ],
        numeric=(2,),
    )
    return head + text + first + path + "</section>"


def write_diff_page(report: dict, a, b, out, tolerance: float) -> None:
    """Describe both compared models (compare.Model) and write the diff page atomically."""
    from tfpersist.core import atomic
    from tfpersist.versions import compare
    from tfpersist.views import graphview

    def view(model):
        return graphview.describe(model.graph_def, model.outputs, None)

    why = compare.differences(report, tolerance)
    atomic.write_text(out, diff_page(report, view(a), view(b), why))
