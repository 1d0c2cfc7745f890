"""The HTML pages in a real browser (headless Chromium, networking off): every node drawn,
the script ran, no request left the page."""

from __future__ import annotations

import re

import pytest

from browser import load, screenshot
from tfpersist import cli
from tfpersist.freezing import freeze

from helpers import W2, X, conv_net, rows_csv
from helpers import two_layer as build


@pytest.fixture(scope="module")
def pages(tf, tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    freeze.write(conv_net(tf).as_graph_def(), root / "conv.pb", ["head/probabilities"])
    assert cli.main(["inspect", str(root / "conv.pb"), "--html", str(root / "model.html")]) == 0
    build(tf, root / "a.pb")
    w2 = W2.copy()
    w2[1, 2] -= 1.0
    build(tf, root / "b.pb", w2=w2)
    csv = rows_csv(root / "rows.csv", X)
    args = ["compare", str(root / "a.pb"), str(root / "b.pb"), "--data", str(csv), "--localize"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # no data/prepared schema here
        assert cli.main([*args, "--html", str(root / "diff.html")]) == 0
    return root


def external(dom: str) -> list[str]:
    """What the document links to outside itself (file loads do not reach the NetLog)."""
    return re.findall(r'\s(?:src|href)="(?!#)([^"]*)"', dom)


def drawn(dom: str) -> list[int]:
    return sorted(int(i) for i in re.findall(r'<g id="n(\d+)" class="node', dom))


def test_the_detector_sees_a_page_that_reaches_out(tmp_path):
    """Negative control: the request check can fail."""
    page = tmp_path / "leaky.html"
    (tmp_path / "local.js").write_text("document.body.dataset.ready = 'yes';")
    page.write_text(
        '<!DOCTYPE html><html><body><img src="https://cdn.example.org/x.png">'
        '<script src="local.js"></script></body></html>'
    )
    loaded = load(page, tmp_path)
    assert "https://cdn.example.org/x.png" in loaded.requests
    assert external(loaded.dom) == ["https://cdn.example.org/x.png", "local.js"]


def test_model_page_draws_every_node_offline(pages, tmp_path):
    from tfpersist.graph import graphdefs

    nodes = len(graphdefs.read_graph_def(pages / "conv.pb").node)
    loaded = load(pages / "model.html", tmp_path)
    assert loaded.requests == [] and external(loaded.dom) == []
    assert 'data-ready="yes"' in loaded.dom
    assert f'data-nodes-drawn="{nodes}"' in loaded.dom
    assert drawn(loaded.dom) == list(range(nodes))
    png = screenshot(pages / "model.html", tmp_path / "model.png", tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_scopes_collapse(pages, tmp_path):
    loaded = load(pages / "model.html", tmp_path, "#collapsed")
    hidden = re.findall(
        r'<g id="n\d+" class="node[^"]*in-s\d[^"]*" style="display: none;"', loaded.dom
    )
    collapsed = re.findall(r'class="cluster scope collapsed"', loaded.dom)
    assert len(collapsed) == 2 and len(hidden) >= 10  # block, head: their nodes hidden


def test_diff_page_draws_both_versions_and_where_they_part(pages, tmp_path):
    loaded = load(pages / "diff.html", tmp_path)
    assert loaded.requests == [] and external(loaded.dom) == []
    assert 'data-ready="yes"' in loaded.dom
    from tfpersist.graph import graphdefs

    count = len(graphdefs.read_graph_def(pages / "b.pb").node)  # no node added or removed
    assert f'data-nodes-drawn="{count}"' in loaded.dom
    assert drawn(loaded.dom) == list(range(count))
    assert re.search(r'id="localize".*dense_2/mm', loaded.dom, re.S)
    assert 'stroke="#7b2cbf"' in loaded.dom  # the first divergence, outlined
