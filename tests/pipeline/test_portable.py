"""Layers whose every contraction — forward, input and weight gradients — stays within one
Eigen K-block on every CPU (pipeline/portable.py), the static check that lists contractions
with their K (graph/contractions.py), and the training stage refusing a graph past it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.graph import contractions
from tfpersist.pipeline import architectures, portable, training
from tfpersist.pipeline.params import ModelParams, TrainParams
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()
v1 = tf.compat.v1
BOUND = contractions.BOUND


@pytest.mark.parametrize("n", [1, 7, 64, 255, 256, 257, 300, 784, 1024, 2048, 4099])
@pytest.mark.parametrize("bound", [1, 28, 256])
def test_spans_cover_the_range_with_the_fewest_pieces_within_the_bound(n, bound):
    pieces = portable.spans(n, bound)
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a < b and b - a <= bound for a, b in pieces)
    assert all(p[1] == q[0] for p, q in itertools.pairwise(pieces))
    assert len(pieces) == math.ceil(n / bound)


def _graph_of(build, feeds):
    """Build ``build(*placeholders)`` (the first one's rows open) and the gradients of its
    square's sum with respect to every input: the graph a training step runs."""
    graph = tf.Graph()
    with graph.as_default():
        holders = [
            v1.placeholder(tf.float32, [None, *shape[1:]] if i == 0 else shape)
            for i, shape in enumerate(feeds)
        ]
        out = build(*holders)
        grads = tf.gradients(tf.reduce_sum(out * out), holders)
    return graph, holders, out, grads


def _run(graph, holders, fetches, values):
    with v1.Session(graph=graph) as sess:
        return sess.run(fetches, dict(zip(holders, values, strict=True)))


def _contractions(graph, fetches, rows):
    names = [t.name.split(":")[0] for t in fetches]
    graph_def = v1.graph_util.extract_sub_graph(graph.as_graph_def(), names)
    return contractions.find(graph_def, rows=rows)


CASES = {
    # name: (x shape, w shape, op); rows = x's first dimension
    "wide dense": ((40, 784), (784, 1024), "matmul"),
    "many rows": ((600, 64), (64, 32), "matmul"),
    "deep conv": ((8, 8, 8, 64), (3, 3, 64, 48), "conv"),
    "large image": ((3, 28, 28, 2), (3, 3, 2, 4), "conv"),
    "wide image": ((2, 5, 300, 1), (3, 3, 1, 2), "conv"),
    "5x5 kernel": ((4, 12, 12, 16), (5, 5, 16, 20), "conv"),
}


@pytest.mark.parametrize("case", CASES)
def test_cut_layers_compute_the_plain_ones_values_and_gradients_within_the_bound(case):
    x_shape, w_shape, op = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.normal(size=x_shape).astype(np.float32)
    w = (rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[:-1]))).astype(np.float32)
    rows = x_shape[0]
    cut = {"matmul": portable.matmul, "conv": portable.conv2d}[op]

    def plain(a, b):
        return tf.matmul(a, b) if op == "matmul" else tf.nn.conv2d(a, b, 1, "SAME")

    ref = _graph_of(plain, [x_shape, w_shape])
    new = _graph_of(lambda a, b: cut(a, b, BOUND, rows=rows), [x_shape, w_shape])
    want = _run(ref[0], ref[1], [ref[2], *ref[3]], [x, w])
    got = _run(new[0], new[1], [new[2], *new[3]], [x, w])
    for g, r in zip(got, want, strict=True):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-5 * float(np.abs(r).max()))
    # the plain graph is past the bound somewhere; every contraction of the cut one is within
    assert contractions.beyond(_contractions(ref[0], [ref[2], *ref[3]], rows))
    found = _contractions(new[0], [new[2], *new[3]], rows)
    assert found and not contractions.beyond(found), contractions.explain(found)


def test_a_short_last_batch_is_computed_whole():
    """Row blocks are cut for the most rows a micro-batch has; fewer rows (the end of an
    epoch) leave blocks empty, more would still be computed (past the bound, not wrong)."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 20])
        w = tf.constant(np.eye(20, 3, dtype=np.float32))
        y = portable.matmul(x, w, 8, rows=16)
    rng = np.random.default_rng(1)
    for n in (0, 3, 9, 16, 21):
        xs = rng.normal(size=(n, 20)).astype(np.float32)
        with v1.Session(graph=graph) as sess:
            np.testing.assert_allclose(sess.run(y, {x: xs}), xs[:, :3], rtol=1e-6)


def test_a_layer_within_the_bound_is_the_one_plain_op():
    for op, x_shape, w_shape in (
        ("MatMul", (None, 128), (128, 64)),
        ("Conv2D", (None, 8, 8, 16), (3, 3, 16, 28)),
    ):
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, x_shape)
            w = tf.zeros(w_shape)
            cut = portable.matmul if op == "MatMul" else portable.conv2d
            cut(x, w, BOUND, rows=4)
        ops = [n.op for n in graph.as_graph_def().node]
        assert ops.count(op) == 1 and "ConcatV2" not in ops and "Split" not in ops


def _tiny_split(features: int, rows: int = 48) -> training.Split:
    rng = np.random.default_rng(3)
    return training.Split(
        rng.normal(size=(rows, features)).astype(np.float32), rng.integers(0, 3, rows)
    )


TRAIN = TrainParams(
    seed=1,
    epochs=1,
    batch_size=32,
    optimizer="adam",
    learning_rate=0.01,
    checkpoint_every=100,
    max_to_keep=1,
    threads=1,
    micro_batches=4,
)


@pytest.mark.parametrize(
    ("arch", "config", "features"),
    [
        ("mlp", {"hidden": [128, 64], "dropout": 0.2}, 64),  # the default pipeline's
        ("mlp", {"hidden": [1024, 1024], "dropout": 0.2}, 64),  # the wide experiment
        ("mlp", {"hidden": [512, 512]}, 784),  # MNIST-shaped
        ("cnn", {"image_shape": [8, 8, 1], "filters": [16, 32], "dense": 64}, 64),
        ("cnn", {"image_shape": [12, 12, 3], "filters": [40], "kernel_size": 5}, 432),
    ],
)
def test_the_training_graph_has_no_contraction_past_the_bound(arch, config, features):
    model = ModelParams(arch, "input_holder", "predictions", "probabilities", config)
    g = training._Graph(model, TRAIN, _tiny_split(features), 3)
    found = training.check_contractions(g)
    assert found and not contractions.beyond(found)
    ks = [c.k for c in found]
    if arch == "mlp" and config["hidden"] == [128, 64]:  # nothing to cut: today's graph
        assert max(ks) == 128 and not any(n.op == "Split" for n in g.graph.as_graph_def().node)
    else:
        assert max(ks) == BOUND or max(ks) > 128  # cut, not merely small


def test_training_refuses_a_graph_past_the_bound_naming_the_layer(monkeypatch):
    def raw(x, layers):  # a body that skips Layers.dense: one MatMul over K = 300
        w = v1.get_variable("w", [int(x.shape[-1]), 3])
        return tf.matmul(x, w)

    monkeypatch.setitem(architectures.ARCHITECTURES, "raw", raw)
    model = ModelParams("raw", "input_holder", "predictions", "probabilities", {})
    g = training._Graph(model, TRAIN, _tiny_split(300), 3)
    with pytest.raises(TfpersistError) as e:
        training.check_contractions(g)
    message = str(e.value)
    assert "\n" not in message and "K = 300" in message and "model/MatMul" in message
    assert "runtime.cpu_isa: native" in message


def test_find_reads_k_of_each_contraction_kind_and_leaves_an_open_batch_unknown():
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 6, 6, 5], name="x")
        f = tf.ones([3, 3, 5, 7])
        y = tf.nn.conv2d(x, f, 1, "SAME", name="conv")
        flat = tf.reshape(y, [-1, 6 * 6 * 7])
        m = tf.matmul(flat, tf.ones([252, 4]), name="dense")
        b = tf.linalg.matmul(tf.ones([2, 3, 9]), tf.ones([2, 9, 4]), name="batched")
        tf.gradients(tf.reduce_sum(m) + tf.reduce_sum(b), [x, f])
    found = {c.node: c for c in contractions.find(graph.as_graph_def())}
    assert found["conv"].k == 45 and found["dense"].k == 252 and found["batched"].k == 9
    backprop = {c.op: c for c in found.values() if "Backprop" in c.op}
    assert backprop["Conv2DBackpropInput"].k == 63  # kernel taps × output channels
    assert backprop["Conv2DBackpropFilter"].k is None  # rows × 36: the batch is open
    bound = {c.node: c for c in contractions.find(graph.as_graph_def(), rows=10)}
    filter_grad = next(c for c in bound.values() if c.op == "Conv2DBackpropFilter")
    assert filter_grad.k == 360
    assert "K = 360" in contractions.explain(list(bound.values()))


def test_keras_fit_names_the_layers_of_keras_own_architectures_past_the_bound():
    import keras

    from tfpersist.pipeline.keras_fit import past_the_bound

    net = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10)
    wide = past_the_bound(net, rows=8)
    # 1×1 expansions over 96+ channels, the 1280-wide head, the classifier over 1280 inputs
    assert any(w.startswith("Conv_1 ") for w in wide) and any("predictions" in w for w in wide)
    small = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128), keras.layers.Dense(10)])
    assert past_the_bound(small, rows=8) == []
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same")])
    found = past_the_bound(conv, rows=8)
    assert len(found) == 1 and found[0].endswith("(K = 512)")  # rows × 64 output pixels


@pytest.mark.parametrize("max_k", [0, BOUND])
def test_check_repro_warns_when_the_trained_graph_sums_past_the_bound(tmp_path, max_k):
    import dataclasses

    from tfpersist.versions import reproducibility

    model = ModelParams("mlp", "input_holder", "predictions", "probabilities", {"hidden": [8]})
    split = _tiny_split(300)
    train = dataclasses.replace(TRAIN, max_k=max_k, checkpoint_every=1)
    training.train(
        tmp_path / "models" / "train",
        {"train": split, "val": split},
        3,
        model,
        train,
        "test",
        log=lambda m: None,
        progress=False,
    )
    lock = {"stages": {"train": {"outs": [{"path": "models/train"}]}}}
    note = reproducibility.contraction_note(tmp_path, lock)
    if max_k:
        assert note == ""
    else:  # hidden_0: K = 300 features, uncut
        assert "K = 300" in note and "hidden_0" in note and "train.max_k: 256" in note
