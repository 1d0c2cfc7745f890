"""graphview (shapes, FLOPs, weight statistics), drawing (dot) and pages (the HTML files)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.freezing import freeze
from tfpersist.views import drawing, graphview, pages

from helpers import conv_net


def test_flops_agree_with_tensorflows_profiler(tf):
    """TF's own profiler (RegisterStatistics 'flops') is the peer, on a batch-1 copy."""
    v1 = tf.compat.v1
    view = graphview.describe(conv_net(tf).as_graph_def(), ["head/probabilities"])
    ours = {n["name"]: n["flops"] for n in view["nodes"]}
    batch1 = tf.Graph()
    graph_def = conv_net(tf).as_graph_def()
    graph_def.node[0].attr["shape"].shape.dim[0].size = 1
    with batch1.as_default():
        tf.import_graph_def(graph_def, name="")
    options = v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    tree = v1.profiler.profile(batch1, options=options, cmd="scope")
    theirs = {}
    stack = list(tree.children)
    while stack:
        node = stack.pop()
        theirs[node.name] = node.float_ops - sum(c.total_float_ops for c in node.children)
        stack.extend(node.children)
    counted = {n: f for n, f in theirs.items() if f}
    assert set(counted) >= {"block/conv", "block/bias", "block/pool", "head/mm", "head/add"}
    for name, flops in counted.items():
        assert ours[name] == flops, name
    assert ours["block/conv"] == 2 * 8 * 8 * 4 * 27 and ours["head/mm"] == 2 * 64 * 5
    assert ours["block/relu"] == 256 and ours["head/flat"] == 0
    unknown = view["totals"]["flops_unknown"]
    assert [u["node"] for u in unknown] == ["cumulative"] and "no FLOP rule" in unknown[0]["why"]
    assert view["totals"]["flops"] == sum(f for f in ours.values() if f)


def test_shapes_parameters_scopes_and_weight_statistics(tf):
    view = graphview.describe(
        conv_net(tf).as_graph_def(), ["head/probabilities"], {"features": ["a"]}
    )
    by_name = {n["name"]: n for n in view["nodes"]}
    assert by_name["block/conv"]["outputs"] == [{"dtype": "float32", "shape": [None, 8, 8, 4]}]
    assert by_name["x"]["role"] == "input" and by_name["head/probabilities"]["role"] == "output"
    assert by_name["head/w"]["role"] == "weight" and by_name["head/flat/shape"]["role"] == "const"
    t = view["totals"]
    assert t["parameters"] == 108 + 4 + 320 + 1 and t["parameter_bytes"] == 4 * t["parameters"]
    scopes = {s["scope"]: s for s in view["scopes"]}
    assert scopes["head"]["params"] == 321 and scopes["block"]["params"] == 112
    assert scopes[""]["nodes"] == len(view["nodes"])
    w = next(x for x in view["weights"] if x["name"] == "head/w")
    values = np.linspace(-1, 1, 320, dtype=np.float32)
    assert (w["min"], w["max"], w["shape"]) == (-1.0, 1.0, [64, 5])
    assert w["std"] == pytest.approx(float(values.astype(np.float64).std()), rel=1e-5)
    assert sum(w["histogram"]) == 320 and len(w["histogram"]) == graphview.HISTOGRAM_BINS
    assert view["signature"]["inputs"] == [
        {"name": "x", "dtype": "float32", "shape": [None, 8, 8, 3]}
    ]
    assert view["signature"]["features"] == ["a"] and view["unsafe_ops"] == {}


def test_dot_draws_every_node_in_its_scope_and_labels_edges(tf):
    view = graphview.describe(conv_net(tf).as_graph_def(), ["head/probabilities"])
    dot = drawing.dot_source(view["nodes"])
    svg = drawing.render_svg(dot)
    assert svg.startswith("<svg") and "<!--" not in svg
    drawn = re.findall(r'<g id="n(\d+)" class="node', svg)
    assert sorted(map(int, drawn)) == list(range(len(view["nodes"])))
    assert len(re.findall(r'class="cluster', svg)) == 2  # block, head (flat/shape: one node)
    assert "float32 [?,8,8,4]" in svg and "float32 [?,64]" in svg
    assert drawing.render_svg(dot) == svg  # the layout is deterministic


def test_unsafe_ops_are_drawn_marked(tf, tmp_path):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.string, [], name="path")
        tf.io.read_file(x, name="read")
    pb = tmp_path / "hostile.pb"
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    out = tmp_path / "hostile.html"
    assert cli.main(["inspect", str(pb), "--html", str(out), "--output-nodes", "read"]) == 0
    page = out.read_text()
    assert "ReadFile" in page and 'color="#d00000"' not in page  # DOT attrs become SVG
    assert re.search(r'<g id="n1" class="node[^"]*op(-|&#45;)ReadFile', page)
    assert 'stroke="#d00000"' in page and "reads files" in page


def test_model_page_is_self_contained_and_deterministic(tf, tmp_path, monkeypatch):
    graph = conv_net(tf)
    monkeypatch.chdir(tmp_path)
    freeze.write(graph.as_graph_def(), "model.pb", ["head/probabilities"])
    assert cli.main(["inspect", "model.pb", "--html", "a.html"]) == 0
    assert cli.main(["inspect", "model.pb", "--html", "b.html"]) == 0
    page = (tmp_path / "a.html").read_bytes()
    assert page == (tmp_path / "b.html").read_bytes()
    text = page.decode()
    assert str(tmp_path) not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing fetched
    for section in ("graph", "signature", "ops", "scopes", "weights", "flops", "unsafe"):
        assert f'<section id="{section}">' in text


def test_html_needs_trust_for_a_checkpoint_it_must_freeze(tf, tmp_path, capsys):
    """A checkpoint is frozen in memory before it is drawn: hostile ones are refused."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        v = v1.get_variable("v", initializer=np.ones((2, 2), np.float32))
        y = tf.matmul(x, v, name="y")
        tf.identity(tf.strings.length(tf.io.read_file("/etc/hostname")), name="leak")
        del y
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / "ckpt" / "model"))
    out = tmp_path / "page.html"
    args = ["inspect", str(tmp_path / "ckpt"), "--html", str(out), "--output-nodes", "y,leak"]
    assert cli.main(args) == 1
    assert "ReadFile" in capsys.readouterr().err and not out.exists()
    assert cli.main([*args[:-1], "y"]) == 0
    assert out.is_file()


def test_human_numbers():
    assert pages.human(1234567) == "1.23 M" and pages.human(999) == "999"
    assert pages.human(None) == "unknown" and pages.human(2.5e9, "B") == "2.5 GB"
