from __future__ import annotations

import numpy as np
import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline import architectures
from tfpersist.pipeline import model as model_lib
from tfpersist.pipeline.params import ModelParams
from tfpersist.tables.records import Split


def params(arch: str, **config) -> ModelParams:
    return ModelParams(arch, "input_holder", "predictions", "probabilities", config)


@pytest.mark.parametrize(
    ("arch", "config"),
    [
        ("linear", {}),
        ("mlp", {"hidden": [8, 4], "dropout": 0.5}),
        ("cnn", {"image_shape": [8, 8, 1], "filters": [2, 3], "kernel_size": 3, "dense": 5}),
    ],
)
def test_each_architecture_gives_named_outputs(tf, arch, config):
    graph, x, out = model_lib.inference_graph(params(arch, **config), 64, 10)
    batch = np.random.default_rng(0).uniform(0, 16, (7, 64)).astype(np.float32)
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        pred, prob = sess.run([out.predictions, out.probabilities], {x: batch})
    assert x.op.name == "input_holder"
    assert out.predictions.op.name == "predictions" and pred.dtype == np.int64
    assert out.probabilities.op.name == "probabilities" and prob.shape == (7, 10)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(pred, prob.argmax(axis=1))
    ops = {op.type for op in graph.get_operations()}
    assert not [op for op in ops if op.startswith("StatelessRandom")], "inference: no dropout"


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(TfpersistError, match=r"model.arch 'resnet' .* cnn, linear, mlp"):
        architectures.get("resnet")


def test_cnn_image_shape_must_match_features(tf):
    with pytest.raises(TfpersistError, match=r"image_shape \[4, 4, 1\] holds 16 values .* 64"):
        model_lib.inference_graph(params("cnn", image_shape=[4, 4, 1], filters=[2]), 64, 10)


def test_bad_sizes_name_their_key(tf):
    with pytest.raises(TfpersistError, match=r"'model.mlp.hidden' must be a list of positive"):
        model_lib.inference_graph(params("mlp", hidden=[8, -1]), 64, 10)
    with pytest.raises(TfpersistError, match=r"'model.mlp.dropout' must be a number in \[0, 1\)"):
        model_lib.inference_graph(params("mlp", hidden=[8], dropout=1.0), 64, 10)


def test_an_architecture_is_one_registered_function(tf):
    @architectures.register("tiny_test_arch")
    def tiny(x, layers):
        return layers.dense(x, layers.num_classes, "logits")

    try:
        _, _, out = model_lib.inference_graph(params("tiny_test_arch"), 3, 2)
        assert out.probabilities.shape.as_list() == [None, 2]
    finally:
        del architectures.ARCHITECTURES["tiny_test_arch"]


def test_normalization_stats_handle_constant_features():
    x = np.array([[0, 1], [0, 3]], np.float32)
    mean, scale = model_lib.normalization_stats(Split(x, None))
    np.testing.assert_array_equal(mean, [0, 2])
    np.testing.assert_array_equal(scale, [1, 1])
