"""compare --localize: where two versions of a model part."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.versions import localize

from helpers import W1, W2, X, rows_csv
from helpers import two_layer as build


def test_a_changed_weight_is_found_where_it_is_read(tf, tmp_path):
    a = build(tf, tmp_path / "a.pb")
    w2 = W2.copy()
    w2[2, 1] += 0.5
    b = build(tf, tmp_path / "b.pb", w2=w2)
    loc = localize.localize(a, b, X, "x")
    assert [f["node"] for f in loc["first"]] == ["dense_2/mm"]
    assert loc["first"][0]["why"] == ["weight dense_2/w changed"]
    path = [p["node"] for p in loc["path"]]
    assert path[0] == "x" and path[-1] == "probabilities" and "dense_2/mm" in path
    assert loc["distances"]["dense_1/mm"] == 0 and loc["distances"]["dense_1/act"] == 0
    assert "dense_2/mm" in loc["differs"] and "dense_1/act" not in loc["differs"]
    assert loc["rows"] == len(X) and loc["compared"] == 5  # 2 matmuls, act, softmax, argmax


def test_a_changed_op_is_named_and_nothing_upstream_blamed(tf, tmp_path):
    a = build(tf, tmp_path / "a.pb")
    b = build(tf, tmp_path / "b.pb", activation="Elu")
    loc = localize.localize(a, b, X, "x")
    assert [f["node"] for f in loc["first"]] == ["dense_1/act"]
    assert loc["first"][0]["why"] == ["op Relu → Elu"]


def test_same_model_and_tolerance(tf, tmp_path):
    a = build(tf, tmp_path / "a.pb")
    assert localize.localize(a, a, X, "x")["first"] == []
    w1 = W1 + np.float32(1e-6)
    b = build(tf, tmp_path / "b.pb", w1=w1)
    assert localize.localize(a, b, X, "x", tolerance=1e-3)["first"] == []
    strict = localize.localize(a, b, X, "x", tolerance=0.0)
    assert [f["node"] for f in strict["first"]] == ["dense_1/mm"]


def test_topological_order_whatever_the_graphdef_order(tf):
    graph_def = tf.compat.v1.GraphDef()
    for name, inputs in (("c", ["b", "^a"]), ("b", ["a"]), ("a", []), ("d", ["a"])):
        node = graph_def.node.add(name=name, op="Identity")
        node.input.extend(inputs)
    assert localize.topological(graph_def) == ["a", "b", "c", "d"]


@pytest.fixture
def release(tf, tmp_path):
    """A checkpoint of a small variable model, its frozen .pb and its --optimize form, and
    a CSV of rows to run them on."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        w = v1.get_variable("dense/w", initializer=W1)
        b = v1.get_variable("dense/b", initializer=np.linspace(0, 1, 6, dtype=np.float32))
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w), b), name="hidden")
        scale = tf.constant(2.0) * tf.constant(0.5)  # folded by --optimize
        tf.nn.softmax(h * scale, name="probabilities")
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(tmp_path / "ckpt" / "model"))
    for name, extra in (("model.pb", []), ("optimized.pb", ["--optimize"])):
        args = ["freeze", tmp_path / "ckpt", "--out", tmp_path / name]
        assert cli.main([*map(str, args), "--output-nodes", "probabilities", *extra]) == 0
    rows_csv(tmp_path / "rows.csv", X)
    return tmp_path


def test_cli_localizes_a_pb_against_its_checkpoint_and_its_optimized_form(
    release, capsys, monkeypatch
):
    r = release
    monkeypatch.chdir(r)  # no data/prepared here: the columns come from the CSV
    base = ["compare", "--data", str(r / "rows.csv"), "--localize", "--format", "json"]
    assert cli.main([*base, str(r / "ckpt"), str(r / "model.pb")]) == 0
    loc = json.loads(capsys.readouterr().out)["localize"]
    assert loc["first"] == [] and loc["compared"] >= 4 and loc["differing"] == 0
    code = cli.main([*base, str(r / "model.pb"), str(r / "optimized.pb"), "--tolerance", "1e-5"])
    report = json.loads(capsys.readouterr().out)
    assert report["localize"]["first"] == [] and report["localize"]["compared"] >= 1
    assert report["structure"]["nodes_removed"]  # the optimizer folded nodes away
    assert code == 0
    assert cli.main(["compare", "--localize", str(r / "model.pb"), str(r / "model.pb")]) == 2
    err = capsys.readouterr().err
    assert "--localize runs both models: give --data" in err and "Traceback" not in err


def test_text_and_markdown_show_the_first_divergence(tf, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build(tf, tmp_path / "a.pb")
    w2 = W2.copy()
    w2[0, 0] = 5.0
    build(tf, tmp_path / "b.pb", w2=w2)
    csv = rows_csv(tmp_path / "rows.csv", X)
    base = ["compare", str(tmp_path / "a.pb"), str(tmp_path / "b.pb"), "--data", str(csv)]
    html = tmp_path / "diff.html"
    assert cli.main([*base, "--localize", "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "first differs at dense_2/mm (MatMul)" in out and "weight dense_2/w changed" in out
    assert "path: x → dense_1/mm (0) → dense_1/act (0) → dense_2/mm" in out
    page = html.read_text()
    assert 'id="localize"' in page and "dense_2/mm" in page and 'stroke="#7b2cbf"' in page
    assert cli.main([*base, "--localize", "--format", "md"]) == 0
    assert "| first divergence | | | `dense_2/mm` (MatMul," in capsys.readouterr().out.replace(
        "|  |  |", "| | |"
    )
