"""Network bodies built from raw TF ops (graph mode), chosen by ``model.arch``.

To add an architecture, write one function ``body(x, layers) -> logits`` below and decorate
it with ``@register("name")``; its sizes live in params.yaml under ``model.<name>``.
``x`` is the normalised input, float32 [batch, features]; ``layers`` gives the building
blocks and the sizes, each validated with a one-line error naming its params key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline import portable
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()
v1 = tf.compat.v1


@dataclass
class Layers:
    """Building blocks for one tower. Variables are shared between towers by name."""

    arch: str
    config: Mapping[str, Any]  # model.<arch> from params.yaml
    num_classes: int
    training: bool  # True only in the training tower: dropout on
    dropout_seed: Any = None  # int64 [2] tensor (seed, 1024·step); + layer number per dropout
    # Portable bits (pipeline/portable.py): every contraction of a layer, its gradients'
    # included, over at most `bound` (None: plain MatMul/Conv2D); `rows` is the most rows
    # a training tower's input has (the weight gradients contract over them).
    bound: int | None = None
    rows: int | None = None
    _dropouts: int = 0
    _input_grad: bool = False  # True after the first layer: its output's gradient is taken

    # -- sizes from params.yaml -------------------------------------------------------------
    def ints(self, key: str, default: Any = ..., length: int | None = None) -> list[int]:
        value = self._value(key, default)
        ok = isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        )
        if not ok or (length is not None and len(value) != length):
            n = f"{length} " if length else ""
            raise TfpersistError(
                f"params.yaml: 'model.{self.arch}.{key}' must be a list of {n}positive "
                f"integers, got {value!r}"
            )
        return list(value)

    def int(self, key: str, default: Any = ...) -> int:
        value = self._value(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise TfpersistError(
                f"params.yaml: 'model.{self.arch}.{key}' must be a positive integer, got {value!r}"
            )
        return value

    def rate(self, key: str, default: Any = ...) -> float:
        value = self._value(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
            raise TfpersistError(
                f"params.yaml: 'model.{self.arch}.{key}' must be a number in [0, 1), got {value!r}"
            )
        return float(value)

    def _value(self, key: str, default: Any) -> Any:
        if key in self.config:
            return self.config[key]
        if default is ...:
            raise TfpersistError(f"params.yaml: 'model.{self.arch}.{key}' is missing")
        return default

    # -- layers -----------------------------------------------------------------------------
    def dense(self, x, units: int, name: str, activation: Callable | None = None):
        """``x · W + b``; glorot-uniform weights, zero bias (the seed's ``x*W + b``)."""
        with v1.variable_scope(name):
            w = v1.get_variable(
                "weights", [int(x.shape[-1]), units], initializer=v1.glorot_uniform_initializer()
            )
            b = v1.get_variable("bias", [units], initializer=v1.zeros_initializer())
            y = tf.nn.bias_add(self._contract(portable.matmul, tf.matmul, x, w), b)
        return activation(y) if activation else y

    def conv2d(self, x, filters: int, kernel: int, name: str):
        """2-D convolution, 'SAME' padding, stride 1, ReLU."""
        with v1.variable_scope(name):
            w = v1.get_variable(
                "kernel",
                [kernel, kernel, int(x.shape[-1]), filters],
                initializer=v1.glorot_uniform_initializer(),
            )
            b = v1.get_variable("bias", [filters], initializer=v1.zeros_initializer())
            plain = lambda x, w: tf.nn.conv2d(x, w, strides=1, padding="SAME")  # noqa: E731
            y = tf.nn.bias_add(self._contract(portable.conv2d, plain, x, w), b)
        return tf.nn.relu(y)

    def _contract(self, cut, plain, x, w):
        """``plain(x, w)``, or with contractions cut to ``bound`` when one is set."""
        if self.bound is None:
            y = plain(x, w)
        else:
            rows = self.rows if self.training else None
            y = cut(x, w, self.bound, rows, self._input_grad)
        self._input_grad = True
        return y

    def dropout(self, x, rate: float):
        """Inverted dropout in the training tower; identity in inference (no op at all).

        The mask is stateless, drawn from (seed, step, layer): a resumed run draws the same
        masks as an uninterrupted one.
        """
        self._dropouts += 1
        if not self.training or rate == 0:
            return x
        seed = self.dropout_seed + tf.constant([0, self._dropouts], tf.int64)
        keep = tf.random.stateless_uniform(tf.shape(x), seed=seed) >= rate
        return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))


Body = Callable[[Any, Layers], Any]
ARCHITECTURES: dict[str, Body] = {}


def register(name: str) -> Callable[[Body], Body]:
    def add(body: Body) -> Body:
        ARCHITECTURES[name] = body
        return body

    return add


def get(name: str) -> Body:
    """The body function for ``model.arch``, or a one-line error listing the known ones."""
    if name not in ARCHITECTURES:
        raise TfpersistError(
            f"params.yaml: model.arch '{name}' is not an architecture; "
            f"choose one of {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[name]


@register("linear")
def linear(x, layers: Layers):
    """Softmax regression: logits = x · W + b."""
    return layers.dense(x, layers.num_classes, "logits")


@register("mlp")
def mlp(x, layers: Layers):
    """Fully connected ReLU layers (``hidden``), each followed by dropout (``dropout``)."""
    rate = layers.rate("dropout", 0.0)
    for i, units in enumerate(layers.ints("hidden")):
        x = layers.dropout(layers.dense(x, units, f"hidden_{i}", tf.nn.relu), rate)
    return layers.dense(x, layers.num_classes, "logits")


@register("cnn")
def cnn(x, layers: Layers):
    """Conv(ReLU) + 2×2 max-pool blocks (``filters``), a dense layer (``dense``), dropout."""
    height, width, channels = layers.ints("image_shape", length=3)
    if height * width * channels != int(x.shape[-1]):
        raise TfpersistError(
            f"params.yaml: model.cnn.image_shape {[height, width, channels]} holds "
            f"{height * width * channels} values but the data has {int(x.shape[-1])} features"
        )
    x = tf.reshape(x, [-1, height, width, channels])
    kernel = layers.int("kernel_size", 3)
    for i, filters in enumerate(layers.ints("filters")):
        x = layers.conv2d(x, filters, kernel, f"conv_{i}")
        x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
    x = tf.reshape(x, [-1, int(x.shape[1]) * int(x.shape[2]) * int(x.shape[3])])
    x = layers.dense(x, layers.int("dense", 64), "dense", tf.nn.relu)
    x = layers.dropout(x, layers.rate("dropout", 0.0))
    return layers.dense(x, layers.num_classes, "logits")
