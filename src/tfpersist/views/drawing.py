"""A described graph (graphview.py) drawn as SVG by ``dot``.

The layout engine is graphviz-pure (a Rust port of Graphviz's ``dot`` installed from PyPI with
the other dependencies: no system package, the same bytes on every platform). Name scopes
become nested clusters (``id="s<i>"``, collapsible in the page), nodes ``id="n<i>"`` with
classes for their role, op and enclosing scopes; edges carry their tensor's dtype and shape.
No TensorFlow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tfpersist.core.errors import TfpersistError

ENGINE = "graphviz-pure"
TIMEOUT_S = 600

STYLE = {  # role → DOT node attributes
    "input": 'shape=ellipse, fillcolor="#cfe8ff"',
    "output": 'shape=box, peripheries=2, fillcolor="#d5f5d5"',
    "weight": 'shape=note, fillcolor="#fff3c4", fontsize=8',
    "const": 'shape=note, fillcolor="#f2f2f2", fontsize=8',
    "op": 'shape=box, fillcolor="#eeeeee"',
}
STATUS_FILL = {"added": "#b7f0b1", "removed": "#ffbcbc", "changed": "#ffd98a"}


def engine() -> str:
    """The ``graphviz-pure`` executable: beside this Python (the virtual environment), or
    on PATH."""
    here = Path(sys.executable).parent / ENGINE
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which(ENGINE)
    if found is None:
        raise TfpersistError(
            f"{ENGINE} not found: drawing a graph needs it (pip install graphviz-pure; "
            "'make setup' installs it)"
        )
    return found


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(node: dict) -> str:
    leaf = node["name"].rpartition("/")[2]
    if node["role"] in ("weight", "const") and node["outputs"]:
        shape = node["outputs"][0]["shape"]
        return f"{leaf}\n{shape_text(shape)}" if shape else leaf
    return node["op"] if leaf.lower() == node["op"].lower() else f"{leaf}\n{node['op']}"


def _tooltip(node: dict) -> str:
    parts = [f"{node['name']} ({node['op']})"]
    for out in node["outputs"][:4]:
        parts.append(tensor_text(out))
    if node.get("params"):
        parts.append(f"{node['params']} parameters")
    if node["flops"]:
        parts.append(f"{node['flops']} FLOPs at batch 1")
    if node.get("unsafe"):
        parts.append(f"UNSAFE: {node['unsafe']}")
    return "\n".join(parts)


def shape_text(shape) -> str:
    """``[None, 64]`` → ``[?,64]``; an unknown rank → ``[?]``."""
    if shape is None:
        return "[?]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def tensor_text(out: dict) -> str:
    """``float32 [?,64]``."""
    return f"{out['dtype']} {shape_text(out['shape'])}"


def ancestors(scope: str) -> list[str]:
    """``a/b/c`` → ``a``, ``a/b``, ``a/b/c``; the top level ``""`` → none."""
    parts = scope.split("/") if scope else []
    return ["/".join(parts[: d + 1]) for d in range(len(parts))]


def scope_ids(nodes: list[dict]) -> dict[str, int]:
    """The scopes drawn as clusters → their numbers, in name order: every scope holding two
    nodes or more (a scope around one node, like ``dense/MatMul/ReadVariableOp``'s, is not
    drawn)."""
    count: dict[str, int] = {}
    for n in nodes:
        for s in ancestors(n["scope"]):
            count[s] = count.get(s, 0) + 1
    return {s: i for i, s in enumerate(sorted(s for s, c in count.items() if c >= 2))}


def _drawn_in(scope: str, scopes: dict[str, int]) -> list[str]:
    """The clusters a node of ``scope`` is drawn in, outermost first."""
    return [s for s in ancestors(scope) if s in scopes]


def dot_source(
    nodes: list[dict], status: dict[str, str] | None = None, marked=(), differing=()
) -> str:
    """DOT for ``nodes`` (graphview.describe's). ``status``: node name → added / removed /
    changed (a diff); ``marked``: nodes drawn with a thick purple border (where two versions
    part), ``differing``: a thin one (values differ downstream)."""
    status = status or {}
    marked, differing = set(marked), set(differing)
    index = {n["name"]: i for i, n in enumerate(nodes)}
    scopes = scope_ids(nodes)
    members: dict[str, list[str]] = {}
    lines = []
    for i, n in enumerate(nodes):
        classes = ["role-" + n["role"], "op-" + re.sub(r"[^A-Za-z0-9_-]", "_", n["op"])]
        inside = _drawn_in(n["scope"], scopes)
        classes += [f"in-s{scopes[s]}" for s in inside]
        attrs = [STYLE[n["role"]], f"id=n{i}", f'class="{" ".join(classes)}"']
        attrs.append(f"label={quote(_label(n))}, tooltip={quote(_tooltip(n))}")
        if n["name"] in status and status[n["name"]] in STATUS_FILL:
            attrs.append(f'fillcolor="{STATUS_FILL[status[n["name"]]]}"')
        if n.get("unsafe"):
            attrs.append('color="#d00000", penwidth=2.5')
        if n["name"] in marked:
            attrs.append('color="#7b2cbf", penwidth=3.5')
        elif n["name"] in differing:
            attrs.append('color="#b185db", penwidth=2')
        members.setdefault(inside[-1] if inside else "", []).append(f"n{i} [{', '.join(attrs)}];")
    # Nested clusters, children inside their nearest drawn parent.
    children: dict[str, list[str]] = {}
    for s in scopes:
        parents = _drawn_in(s.rpartition("/")[0], scopes)
        children.setdefault(parents[-1] if parents else "", []).append(s)

    def cluster(scope: str, depth: int) -> None:
        pad = "  " * depth
        for child in sorted(children.get(scope, [])):
            number = scopes[child]
            lines.append(f"{pad}subgraph cluster_s{number} {{")
            outer = " ".join(f"in-s{scopes[s]}" for s in _drawn_in(child, scopes)[:-1])
            label = child[len(scope) + 1 :] if scope else child
            lines.append(
                f'{pad}  id=s{number}; class="{("scope " + outer).strip()}"; '
                f"label={quote(label)}; tooltip={quote(child)};"
            )
            cluster(child, depth + 1)
            lines.append(f"{pad}}}")
        lines.extend(pad + m for m in members.get(scope, []))

    cluster("", 1)
    edges = []
    for i, n in enumerate(nodes):
        for k, inp in enumerate(n["inputs"]):
            src = index.get(inp["node"])
            if src is None:
                continue
            scoped = {
                f"in-s{scopes[s]}"
                for s in _drawn_in(nodes[src]["scope"], scopes) + _drawn_in(n["scope"], scopes)
            }
            attrs = [f"id=e{i}_{k}", f'class="{" ".join(["edge", *sorted(scoped)])}"']
            if inp["control"]:
                attrs.append('style=dashed, color="#888888"')
            else:
                outs = nodes[src]["outputs"]
                if inp["port"] < len(outs):
                    attrs.append(f"label={quote(tensor_text(outs[inp['port']]))}")
            edges.append(f"  n{src} -> n{i} [{', '.join(attrs)}];")
    header = [
        "digraph model {",
        '  graph [rankdir=TB, fontname="Arimo", fontsize=11, nodesep=0.25, ranksep=0.35, '
        'bgcolor="transparent"];',
        '  node [style="rounded,filled", fontname="Arimo", fontsize=10, height=0.3, '
        'margin="0.1,0.04"];',
        '  edge [fontname="Arimo", fontsize=8, color="#555555", fontcolor="#555555", '
        "arrowsize=0.6];",
    ]
    return "\n".join(header + lines + edges + ["}", ""])


def render_svg(dot: str) -> str:
    """The SVG element for ``dot`` (no XML prolog or comments: ready to inline in HTML)."""
    try:
        done = subprocess.run(
            [engine(), "-Tsvg"],
            input=dot.encode(),
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TfpersistError(f"{ENGINE}: no layout after {TIMEOUT_S} s (graph too big?)") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise TfpersistError(f"{ENGINE} failed: {why[-1] if why else done.returncode}")
    svg = done.stdout.decode()
    svg = svg[svg.index("<svg") :]
    return re.sub(r"<!--.*?-->\n?", "", svg, flags=re.S)
