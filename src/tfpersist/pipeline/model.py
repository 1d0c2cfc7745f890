"""The model graph: named input → normalisation → architecture body → named outputs.

One function builds both the training tower and the clean inference graph, so the
variables a training checkpoint holds are exactly the ones the inference graph restores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfpersist.pipeline import architectures
from tfpersist.pipeline.params import ModelParams
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()
v1 = tf.compat.v1

SCOPE = "model"


@dataclass
class Outputs:
    predictions: object  # int64 [batch]: the class id
    probabilities: object  # float32 [batch, classes]: softmax


def input_placeholder(params: ModelParams, num_features: int):
    return v1.placeholder(tf.float32, [None, num_features], name=params.input_node)


def logits(
    x,
    params: ModelParams,
    num_classes: int,
    training: bool = False,
    dropout_seed=None,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    bound: int | None = None,
    rows: int | None = None,
):
    """Build (or reuse) the model's variables and return the logits for input ``x``.

    ``mean``/``scale`` initialise the normalisation variables (from the training split);
    when omitted they start at 0/1 and are expected to be restored from a checkpoint.
    Normalisation lives in the graph so that a frozen model takes raw features.
    ``bound``/``rows``: contractions cut for portable bits (architectures.Layers).
    """
    body = architectures.get(params.arch)
    num_features = int(x.shape[-1])
    with v1.variable_scope(SCOPE, reuse=v1.AUTO_REUSE):
        with v1.variable_scope("normalization"):
            m = v1.get_variable(
                "mean",
                initializer=np.zeros(num_features, np.float32) if mean is None else mean,
                trainable=False,
            )
            s = v1.get_variable(
                "scale",
                initializer=np.ones(num_features, np.float32) if scale is None else scale,
                trainable=False,
            )
        layers = architectures.Layers(
            arch=params.arch,
            config=params.config,
            num_classes=num_classes,
            training=training,
            dropout_seed=dropout_seed,
            bound=bound,
            rows=rows,
        )
        return body((x - m) * s, layers)


def outputs(logits_, params: ModelParams) -> Outputs:
    """Name the outputs as params.yaml says: class ids and softmax probabilities."""
    return Outputs(
        predictions=tf.argmax(logits_, axis=1, output_type=tf.int64, name=params.predictions_node),
        probabilities=tf.nn.softmax(logits_, name=params.probabilities_node),
    )


def normalization_stats(split) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and 1/std (1 where a feature is constant) from training data: a
    split read in chunks (tables.records.Split in memory, Records from a file) — two passes
    of float64 sums in a fixed chunk order, the same bits either way."""
    total, n = 0.0, 0
    for x_i, _ in split.chunks():
        total = total + x_i.sum(axis=0, dtype=np.float64)
        n += len(x_i)
    mean = total / n
    squares = 0.0
    for x_i, _ in split.chunks():
        squares = squares + np.square(x_i - mean).sum(axis=0)
    std = np.sqrt(squares / n)
    scale = np.where(std > 1e-8, 1.0 / np.where(std > 1e-8, std, 1.0), 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def inference_graph(params: ModelParams, num_features: int, num_classes: int):
    """A fresh graph holding only the inference model: (graph, input, Outputs)."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(
            0
        )  # initial values are overwritten by a restore; seeded for op determinism
        x = input_placeholder(params, num_features)
        out = outputs(logits(x, params, num_classes, training=False), params)
    return graph, x, out
