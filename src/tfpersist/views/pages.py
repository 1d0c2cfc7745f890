"""Self-contained HTML pages: one model (``inspect --html``, the report stage); the compare
page (diff_page.py) is built from the same parts.

One file each, no network: the graph is an inline SVG (drawing.py), the tables are HTML, the
script and styles are inline, and a Content-Security-Policy forbids the page any request.
The same model gives the same bytes (no dates, no absolute paths), so a page can be a DVC
output. No TensorFlow here; describing the graph (graphview.py) needs it.
"""

from __future__ import annotations

import html
import json

from tfpersist.views import drawing
from tfpersist.views.drawing import shape_text

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Arimo,sans-serif;margin:0;color:#222}
header{padding:12px 20px;background:#24323f;color:#fff}
header h1{font-size:18px;margin:0 0 4px}
header p{margin:0;color:#cfd8e0;font-size:13px}
nav{padding:6px 20px;background:#eef2f5;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#24527a;text-decoration:none}
section{padding:10px 20px}
h2{font-size:16px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f7f9}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px}
.toolbar{margin:4px 0 8px}
.toolbar button,.toolbar input{font-size:13px;margin-right:6px}
#graph-wrap{display:flex;gap:12px;align-items:flex-start}
#canvas{overflow:auto;border:1px solid #ddd;max-height:85vh;flex:1;background:#fcfcfc}
#canvas svg{display:block;height:auto}
#details{width:320px;font-size:12px;border:1px solid #ddd;padding:8px;min-height:60px;
  overflow-wrap:anywhere;max-height:85vh;overflow:auto}
#details h3{font-size:13px;margin:0 0 6px}
g.cluster{cursor:pointer}
g.cluster.collapsed>polygon,g.cluster.collapsed>path{fill:#dde3ea}
g.node{cursor:pointer}
g.node.found>path,g.node.found>polygon,g.node.found>ellipse{stroke:#ff6a00;stroke-width:4}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #999;
  border-radius:3px;font-size:12px}
.bad{color:#b00000;font-weight:600}
.ok{color:#1d7a1d;font-weight:600}
.bar{display:inline-block;height:10px;background:#6b8fb5;vertical-align:middle}
"""

SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('page-data').textContent);
  const svg = document.querySelector('#canvas svg');
  const collapsed = new Set();
  const natural = svg ? svg.viewBox.baseVal.width : 0;
  function scopesOf(el) {
    return [...el.classList].filter(c => c.startsWith('in-s')).map(c => c.slice(3));
  }
  function refresh() {
    svg.querySelectorAll('g.node, g.edge, g.cluster').forEach(el => {
      el.style.display = scopesOf(el).some(s => collapsed.has(s)) ? 'none' : '';
    });
    svg.querySelectorAll('g.cluster').forEach(el => {
      el.classList.toggle('collapsed', collapsed.has(el.id));
    });
  }
  function toggle(id, on) {
    if (on === undefined) on = !collapsed.has(id);
    if (on) collapsed.add(id); else collapsed.delete(id);
    refresh();
  }
  function show(i) {
    const n = data.nodes[i];
    const out = document.getElementById('details');
    const rows = [['op', n.op], ['scope', n.scope || '(top)'], ['role', n.role]];
    if (n.status) rows.push(['in the diff', n.status]);
    (n.outputs || []).forEach((o, k) => rows.push(['output ' + k, o.dtype + ' ' +
      (o.shape === null ? '[?]' : '[' + o.shape.map(d => d === null ? '?' : d).join(',') + ']')]));
    (n.inputs || []).forEach(x => rows.push([x.control ? 'after' : 'input',
      x.node + (x.port ? ':' + x.port : '')]));
    if (n.params) rows.push(['parameters', n.params]);
    rows.push(['FLOPs (batch 1)', n.flops === null ? 'unknown' : n.flops]);
    if (n.unsafe) rows.push(['UNSAFE', n.unsafe]);
    if (n.distance !== undefined) rows.push(['A vs B max abs', n.distance]);
    out.textContent = '';
    const h = document.createElement('h3'); h.textContent = n.name; out.appendChild(h);
    const t = document.createElement('table');
    rows.forEach(([k, v]) => {
      const tr = t.insertRow(); tr.insertCell().textContent = k;
      tr.insertCell().textContent = String(v);
    });
    out.appendChild(t);
  }
  if (svg) {
    svg.querySelectorAll('g.cluster').forEach(el => el.addEventListener('click', e => {
      e.stopPropagation(); toggle(el.id);
    }));
    svg.querySelectorAll('g.node').forEach(el => el.addEventListener('click', e => {
      e.stopPropagation(); e.preventDefault(); show(Number(el.id.slice(1)));
    }));
    const zoom = f => { svg.style.width = f === 0 ? '100%' : (natural * f) + 'px'; };
    document.getElementById('fit').onclick = () => zoom(0);
    document.getElementById('actual').onclick = () => zoom(1.33);
    const collapseAll = () => {
      svg.querySelectorAll('g.cluster').forEach(el => {
        if (!scopesOf(el).length) collapsed.add(el.id);
      });
      refresh();
    };
    document.getElementById('collapse').onclick = collapseAll;
    if (location.hash === '#collapsed') collapseAll();
    document.getElementById('expand').onclick = () => { collapsed.clear(); refresh(); };
    document.getElementById('find').addEventListener('change', e => {
      const q = e.target.value.trim();
      svg.querySelectorAll('g.node.found').forEach(el => el.classList.remove('found'));
      if (!q) return;
      const i = data.nodes.findIndex(n => n.name.includes(q));
      if (i < 0) return;
      const el = document.getElementById('n' + i);
      scopesOf(el).forEach(s => collapsed.delete(s)); refresh();
      el.classList.add('found'); el.scrollIntoView({block: 'center', inline: 'center'});
      show(i);
    });
    zoom(natural > 1400 ? 1 : 0);
  }
  document.body.dataset.nodesDrawn = svg ? svg.querySelectorAll('g.node').length : 0;
  document.body.dataset.ready = 'yes';
})();
"""


def e(value) -> str:
    return html.escape(str(value), quote=True)


def human(n: float | int | None, unit: str = "") -> str:
    """12345678 → '12.3 M'."""
    if n is None:
        return "unknown"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}{unit}"
    return f"{n:g} {unit}".strip() if isinstance(n, float) else f"{n} {unit}".strip()


def table(head: list[str], rows: list[list], numeric=()) -> str:
    """An HTML table; cells are escaped unless given as ``("html", markup)``."""

    def cell(i: int, v) -> str:
        cls = ' class="n"' if i in numeric else ""
        text = v[1] if isinstance(v, tuple) and v[0] == "html" else e(v)
        return f"<td{cls}>{text}</td>"

    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def histogram_svg(counts: list[int], width: int = 120, height: int = 22) -> str:
    top = max(counts) or 1
    bar = width / len(counts)
    rects = "".join(
        f'<rect x="{i * bar:.2f}" y="{height - height * c / top:.2f}" '
        f'width="{bar * 0.9:.2f}" height="{height * c / top:.2f}"/>'
        for i, c in enumerate(counts)
        if c
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'fill="#6b8fb5" role="img"><title>{e(counts)}</title>{rects}</svg>'
    )


def _bar(value: int, top: int) -> tuple[str, str]:
    return ("html", f'<span class="bar" style="width:{120 * value / (top or 1):.1f}px"></span>')


def graph_section(svg: str, legend: str) -> str:
    return (
        '<section id="graph"><h2>Graph</h2>'
        '<div class="toolbar"><button id="fit">Fit</button><button id="actual">100%</button>'
        '<button id="collapse">Collapse scopes</button><button id="expand">Expand all</button>'
        '<input id="find" placeholder="find a node (Enter)" size="28"> '
        f'<span class="legend">{legend}</span></div>'
        '<div id="graph-wrap"><div id="canvas">'
        + svg
        + '</div><aside id="details">Click a node for its details; click a scope\'s box to '
        "collapse or expand it.</aside></div></section>"
    )


ROLE_LEGEND = (
    '<span style="background:#cfe8ff">input</span><span style="background:#d5f5d5">output'
    '</span><span style="background:#fff3c4">weight</span><span style="background:#eee">op'
    '</span><span style="border-color:#d00000;border-width:2px">unsafe op</span>'
)


def document(title: str, subtitle: str, nav: list[tuple[str, str]], body: str, data) -> str:
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    links = "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p>{subtitle}</p></header><nav>{links}</nav>"
        f"{body}"
        f'<script type="application/json" id="page-data">{payload}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def signature_section(sig: dict) -> str:
    rows = [["input", t["name"], t["dtype"], shape_text(t["shape"])] for t in sig["inputs"]]
    rows += [["output", t["name"], t["dtype"], shape_text(t["shape"])] for t in sig["outputs"]]
    extra = ""
    if sig.get("features"):
        extra = (
            f"<p>Feature columns ({len(sig['features'])}, in input order): "
            + ", ".join(f"<code>{e(f)}</code>" for f in sig["features"])
            + "</p>"
        )
    if "label" in sig:
        extra += f"<p>Label column <code>{e(sig['label'])}</code>"
        extra += f", {e(sig['num_classes'])} classes</p>" if "num_classes" in sig else "</p>"
    return (
        '<section id="signature"><h2>Signature</h2>'
        + table(["", "node", "dtype", "shape"], rows)
        + extra
        + "</section>"
    )


def _tables(view: dict) -> str:
    t = view["totals"]
    top_op = max((c for _, c in view["ops"]), default=1)
    ops = table(
        ["op", "count", ""], [[op, c, _bar(c, top_op)] for op, c in view["ops"]], numeric=(1,)
    )
    scopes = table(
        ["scope", "nodes", "parameters", "bytes", "FLOPs (batch 1)", "FLOPs unknown for"],
        [
            [
                s["scope"] or "(whole graph)",
                s["nodes"],
                s["params"],
                s["bytes"],
                s["flops"],
                f"{s['unknown']} nodes" if s["unknown"] else "",
            ]
            for s in view["scopes"]
        ],
        numeric=(1, 2, 3, 4),
    )
    weights = table(
        [
            "weight",
            "dtype",
            "shape",
            "parameters",
            "min",
            "max",
            "mean",
            "std",
            "zeros",
            "histogram (min → max)",
        ],
        [
            [
                w["name"],
                w["dtype"],
                shape_text(w["shape"]),
                w["params"],
                w.get("min", ""),
                w.get("max", ""),
                w.get("mean", ""),
                w.get("std", ""),
                w.get("zeros", ""),
                ("html", histogram_svg(w["histogram"]))
                if "histogram" in w
                else f"{w['nonfinite']} non-finite",
            ]
            for w in view["weights"]
        ],
        numeric=(3, 4, 5, 6, 7, 8),
    )
    costly = sorted(
        (n for n in view["nodes"] if n["flops"]), key=lambda n: (-n["flops"], n["name"])
    )
    flops = table(
        ["node", "op", "output", "FLOPs (batch 1)", "share"],
        [
            [
                n["name"],
                n["op"],
                shape_text(n["outputs"][0]["shape"]) if n["outputs"] else "",
                n["flops"],
                f"{n['flops'] / t['flops']:.1%}",
            ]
            for n in costly
        ],
        numeric=(3, 4),
    )
    unknown = ""
    if t["flops_unknown"]:
        listed = [u for u in t["flops_unknown"] if not u["why"].startswith("no FLOP rule")]
        ruleless = sorted({u["op"] for u in t["flops_unknown"]} - {u["op"] for u in listed})
        unknown = (
            "<p>Not counted: "
            + e(
                "; ".join(f"{u['node']} ({u['why']})" for u in listed[:50])
                + ("; " if listed and ruleless else "")
                + (f"ops without a rule: {', '.join(ruleless)}" if ruleless else "")
            )
            + "</p>"
        )
    rules = table(["ops", "FLOPs counted"], [[k, v] for k, v in view["flop_rules"].items()])
    unsafe = (
        table(["op", "what it can do"], [[op, why] for op, why in view["unsafe_ops"].items()])
        if view["unsafe_ops"]
        else '<p class="ok">Every op is on the inference allowlist.</p>'
    )
    return (
        f'<section id="ops"><h2>Ops ({len(view["ops"])} kinds)</h2>{ops}</section>'
        f'<section id="scopes"><h2>Parameters and FLOPs per scope</h2>{scopes}</section>'
        f'<section id="weights"><h2>Weights ({len(view["weights"])})</h2>{weights}</section>'
        f'<section id="flops"><h2>Estimated FLOPs at batch size 1: {human(t["flops"])}</h2>'
        f"{flops}{unknown}<details><summary>How FLOPs are counted</summary>{rules}</details>"
        "</section>"
        f'<section id="unsafe"><h2>Ops outside the inference allowlist</h2>{unsafe}</section>'
    )


def page_nodes(nodes: list[dict], extra: dict | None = None) -> list[dict]:
    """What the page's script needs of each node (``extra``: more per node name)."""
    keep = ("name", "op", "scope", "role", "inputs", "outputs", "params", "flops", "unsafe")
    page = []
    for n in nodes:
        item = {k: n[k] for k in keep if k in n}
        item.update((extra or {}).get(n["name"], {}))
        page.append(item)
    return page


def model_page(view: dict, title: str, facts: dict) -> str:
    """The page for one model: ``view`` from graphview.describe, ``facts`` (format, sha256,
    bytes) shown under the title."""
    t = view["totals"]
    subtitle = e(
        " · ".join(
            [f"{k} {v}" for k, v in facts.items()]
            + [
                f"{t['nodes']} nodes",
                f"{human(t['parameters'])} parameters ({human(t['parameter_bytes'], 'B')})",
                f"~{human(t['flops'])} FLOPs per row",
            ]
        )
    )
    svg = drawing.render_svg(drawing.dot_source(view["nodes"]))
    nav = [
        ("graph", "Graph"),
        ("signature", "Signature"),
        ("ops", "Ops"),
        ("scopes", "Scopes"),
        ("weights", "Weights"),
        ("flops", "FLOPs"),
        ("unsafe", "Safety"),
    ]
    body = graph_section(svg, ROLE_LEGEND) + signature_section(view["signature"]) + _tables(view)
    return document(title, subtitle, nav, body, {"nodes": page_nodes(view["nodes"])})


def write_model_page(source, out, output_nodes=None, trust=None, title: str | None = None) -> dict:
    """Describe ``source`` and write its page to ``out`` atomically; returns the description."""
    from tfpersist import safety
    from tfpersist.core import atomic
    from tfpersist.views import graphview

    view, facts = graphview.describe_model(source, output_nodes, trust or safety.TRUST_NOTHING)
    atomic.write_text(out, model_page(view, title or str(source), facts))
    return view
