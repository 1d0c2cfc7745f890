"""Keras's own architectures and the shapes real models take, to run through every command.

- ``APPLICATIONS``: {name: (keras.applications constructor, smallest input side)} — every
  application family Keras 3.15 ships, built as its documentation shows with ``weights=None``,
  ``classes=10`` and ``classifier_activation=None`` (logits out).
- ``SHAPES``: {name: builder} — what models users bring look like beyond a classifier: text
  through TextVectorization → LSTM, StringLookup → GRU, IntegerLookup + Hashing, a dict of
  inputs to a dict of outputs, a nested backbone with batch norm, a registered custom layer, a
  registered subclassed model, a transformer block (MultiHeadAttention, exact gelu), grouped
  convolutions (Keras wraps them for XLA on CPU).
- ``build(name, keras)`` → (model, inputs): weights seeded (``keras.utils.set_random_seed``),
  batch-norm statistics set by one training-mode pass over the inputs at Keras's momentum (the
  weights themselves untouched); ``inputs``: {input name: array}.

This module registers its custom objects (package ``tfpersist_zoo``): pass it to the CLI as
``--keras-module keras_zoo``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

APPLICATIONS = {
    "ConvNeXtTiny": ("ConvNeXtTiny", 32),
    "DenseNet121": ("DenseNet121", 32),
    "EfficientNetB0": ("EfficientNetB0", 32),
    "EfficientNetV2B0": ("EfficientNetV2B0", 32),
    "InceptionResNetV2": ("InceptionResNetV2", 75),
    "InceptionV3": ("InceptionV3", 75),
    "MobileNet": ("MobileNet", 32),
    "MobileNetV2": ("MobileNetV2", 32),
    "MobileNetV3Large": ("MobileNetV3Large", 32),
    "MobileNetV3Small": ("MobileNetV3Small", 32),
    "NASNetMobile": ("NASNetMobile", 32),
    "ResNet101V2": ("ResNet101V2", 32),
    "ResNet50": ("ResNet50", 32),
    "ResNet50V2": ("ResNet50V2", 32),
    "VGG16": ("VGG16", 32),
    "VGG19": ("VGG19", 32),
    "Xception": ("Xception", 71),
}
WORDS = ["the cat sat", "a dog ran far", "cats and dogs", "the end", "far away dog", "sat"]


@keras.saving.register_keras_serializable(package="tfpersist_zoo")
class Scale(layers.Layer):
    """A user's own layer: multiplies by a constant from its config."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="tfpersist_zoo")
class TinyClassifier(keras.Model):
    """A user's own subclassed model (no functional graph: Keras rebuilds it by calling)."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(8, activation="relu")
        self.head = layers.Dense(units)

    def call(self, x):
        return self.head(self.hidden(x))

    def get_config(self):
        return {"units": self.units}


def text_lstm(rng):
    vectorize = layers.TextVectorization(max_tokens=40, output_sequence_length=6, name="vectorize")
    vectorize.adapt(WORDS)
    text = keras.Input((), dtype="string", name="text")
    x = layers.LSTM(8, name="lstm")(layers.Embedding(40, 8, name="embed")(vectorize(text)))
    model = keras.Model(text, layers.Dense(3, name="logits")(x))
    return model, {"text": np.array([*WORDS[:5], "unseen words here"])}


def lookup_gru(rng):
    lookup = layers.StringLookup(vocabulary=["a", "b", "c", "d"], name="lookup")
    tokens = keras.Input((5,), dtype="string", name="tokens")
    x = layers.GRU(4, name="gru")(layers.Embedding(6, 4, name="embed")(lookup(tokens)))
    model = keras.Model(tokens, layers.Dense(2, name="logits")(x))
    words = np.array(list("abcdz"))
    return model, {"tokens": words[rng.integers(0, 5, size=(6, 5))]}


def int_lookup_hash(rng):
    ids = keras.Input((4,), dtype="int64", name="ids")
    known = layers.Embedding(5, 3, name="known")(
        layers.IntegerLookup(vocabulary=[3, 7, 11, 19], name="lookup")(ids)
    )
    hashed = layers.Embedding(8, 3, name="hashed")(layers.Hashing(num_bins=8, name="hash")(ids))
    x = layers.Flatten(name="flat")(layers.Concatenate(name="join")([known, hashed]))
    model = keras.Model(ids, layers.Dense(2, name="logits")(x))
    return model, {"ids": rng.choice([3, 7, 11, 19, 1, 2, 40], size=(6, 4)).astype("int64")}


def dict_in_out(rng):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = layers.Concatenate(name="join")([layers.Dense(8, activation="relu", name="da")(a), b])
    outputs = {"score": layers.Dense(1, name="score")(h), "cls": layers.Dense(3, name="cls")(h)}
    model = keras.Model({"a": a, "b": b}, outputs)
    x = {"a": rng.normal(size=(6, 4)), "b": rng.normal(size=(6, 3))}
    return model, {k: v.astype("float32") for k, v in x.items()}


def nested_backbone(rng):
    inner = keras.Input((8, 8, 3), name="inner")
    y = layers.BatchNormalization(name="bn")(layers.Conv2D(4, 3, name="conv")(inner))
    backbone = keras.Model(inner, layers.ReLU(name="relu")(y), name="backbone")
    image = keras.Input((8, 8, 3), name="image")
    pooled = layers.GlobalAveragePooling2D(name="pool")(backbone(image))
    model = keras.Model(image, layers.Dense(4, name="logits")(pooled))
    return model, {"image": rng.normal(size=(6, 8, 8, 3)).astype("float32")}


def custom_layer(rng):
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(2, name="logits")(Scale(3.0, name="scale")(x)))
    return model, {"x": rng.normal(size=(6, 4)).astype("float32")}


def subclassed(rng):
    model = TinyClassifier(name="tiny")
    x = rng.normal(size=(6, 5)).astype("float32")
    model(x)
    return model, {"x": x}


def transformer(rng):
    seq = keras.Input((6, 8), name="seq")
    attended = layers.MultiHeadAttention(2, 4, name="attention")(seq, seq)
    x = layers.LayerNormalization(name="norm_1")(layers.Add(name="res_1")([seq, attended]))
    ff = layers.Dense(8, name="ff_2")(layers.Dense(16, activation="gelu", name="ff_1")(x))
    x = layers.LayerNormalization(name="norm_2")(layers.Add(name="res_2")([x, ff]))
    out = layers.Dense(3, name="logits")(layers.GlobalAveragePooling1D(name="pool")(x))
    return keras.Model(seq, out), {"seq": rng.normal(size=(6, 6, 8)).astype("float32")}


def grouped_conv(rng):
    image = keras.Input((8, 8, 6), name="image")
    depthwise = layers.Conv2D(6, 3, groups=6, padding="same", name="depthwise")(image)
    groups = layers.Conv2D(12, 3, groups=3, strides=2, name="groups")(depthwise)
    multiplier = layers.Conv2D(12, 1, groups=6, name="multiplier")(image)
    flat = [layers.Flatten(name=f"flat_{i}")(t) for i, t in enumerate((groups, multiplier))]
    model = keras.Model(image, layers.Dense(3, name="logits")(layers.Concatenate()(flat)))
    return model, {"image": rng.normal(size=(6, 8, 8, 6)).astype("float32")}


SHAPES = {
    f.__name__: f
    for f in (
        text_lstm,
        lookup_gru,
        int_lookup_hash,
        dict_in_out,
        nested_backbone,
        custom_layer,
        subclassed,
        transformer,
        grouped_conv,
    )
}


def build(name: str):
    """(model, {input name: array}) for an application or a shape, seeded."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if name in SHAPES:
        model, x = SHAPES[name](rng)
    else:
        constructor, side = APPLICATIONS[name]
        model = getattr(keras.applications, constructor)(
            weights=None, classes=10, classifier_activation=None, input_shape=(side, side, 3)
        )
        layer = model.inputs[0]._keras_history[0].name  # the InputLayer's name
        x = {layer: rng.uniform(0, 255, size=(4, side, side, 3)).astype("float32")}
    if any(isinstance(layer, layers.BatchNormalization) for layer in _layers(model)):
        model(x if len(x) > 1 else next(iter(x.values())), training=True)
    return model, x


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
