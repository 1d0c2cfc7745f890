"""Keras's own architectures and real model shapes through every command, at default settings,
against Keras's own ``model.predict`` (tests/ported/keras_zoo.py builds them).

Each model is saved as Keras saves it, then: ``inspect`` (its parameter count is Keras's
``count_params()``), ``freeze``, ``predict`` on the .keras, ``compare`` .keras against its .pb
(equal), ``export`` to every format with the rows of the model's own kind, and ``predict`` on
each shipped file — every output within export's own default closeness (layout.EXPORT_ATOL +
EXPORT_RTOL·|Keras|) of Keras's answer. A format a runtime cannot hold is left out by export
with one line: which ones, per model, is part of what is tested (LEFT_OUT).

The suite runs one application and every shape; ``make zoo`` (marker ``zoo``) all 17
applications (10 minutes on 2 cores, InceptionResNetV2 the longest at 3).
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.core import layout

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "ported"))
import keras_zoo

IN_THE_SUITE = {"MobileNetV3Small"}
FORMATS = ("saved_model", "tflite", "onnx", "opencv")
# What each runtime cannot hold, as export says it (the rest must ship): TFLite has neither
# TextVectorization's string ops, an int64 table, nor a recurrent layer's TensorList of
# unknown batch without TensorFlow's Flex kernels; tf2onnx converts no lookup table nor
# string splitting; OpenCV's TensorFlow importer runs none of Keras's traced graphs (it
# crashes on most — a child process takes that — or misses their outputs).
LEFT_OUT = {
    "text_lstm": {"tflite", "onnx"},
    "lookup_gru": {"tflite", "onnx"},
    "int_lookup_hash": {"tflite", "onnx"},
}
MODELS = [
    pytest.param(name, marks=() if name in IN_THE_SUITE else pytest.mark.zoo)
    for name in keras_zoo.APPLICATIONS
] + list(keras_zoo.SHAPES)


def keras_outputs(tf, model, x) -> list[np.ndarray]:
    """Keras's predict, flattened as a traced call orders outputs (a dict's sorted keys)."""
    x = {k: tf.constant(v) if v.dtype.kind == "U" else v for k, v in x.items()}  # text
    got = model.predict(x if len(x) > 1 else next(iter(x.values())), verbose=0)
    if isinstance(got, dict):
        return [np.asarray(got[k]) for k in sorted(got)]
    return [np.asarray(g) for g in (got if isinstance(got, (list, tuple)) else [got])]


def close_to_keras(got: dict, names: list[str], want: list[np.ndarray], what: str) -> None:
    for name, expected in zip(names, want, strict=True):
        np.testing.assert_allclose(
            np.asarray(got[name], np.float64),
            np.asarray(expected, np.float64),
            rtol=layout.EXPORT_RTOL,
            atol=layout.EXPORT_ATOL,
            err_msg=f"{what}: {name}",
        )


@pytest.mark.parametrize("name", MODELS)
def test_a_keras_model_through_every_command(name, tf, tmp_path, capsys):
    model, x = keras_zoo.build(name)
    path = tmp_path / "model.keras"
    model.save(path)
    want = keras_outputs(tf, model, x)
    feeds = []
    for key, value in x.items():
        np.save(tmp_path / f"{key}.npy", value)
        feeds.append(f"--input={key}={tmp_path / f'{key}.npy'}")
    trust = ["--keras-module", "keras_zoo"]

    assert cli.main(["inspect", str(path), *trust]) == 0
    assert f"parameters: {model.count_params()} (" in capsys.readouterr().out

    pb = tmp_path / "model.pb"
    assert cli.main(["freeze", str(path), *trust, "--out", str(pb)]) == 0
    capsys.readouterr()
    card = json.loads(layout.card(pb).read_text())
    names = [o["name"] for o in card["signature"]["outputs"]]
    assert len(names) == len(want)

    out = tmp_path / "keras.npz"
    assert cli.main(["predict", str(path), *trust, *feeds, "--out", str(out)]) == 0
    close_to_keras(np.load(out, allow_pickle=False), names, want, "predict .keras")

    assert cli.main(["compare", str(path), str(pb), *trust, *feeds, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["differs"]["outputs"] is None and report["differs"]["weights"] is None

    shipped = tmp_path / "export"
    code = cli.main(
        ["export", str(path), *trust, "--to", ",".join(FORMATS), "--out", str(shipped), *feeds]
    )
    said = capsys.readouterr()
    left_out = set(re.findall(r"^tfpersist: error: (\w+) left out", said.err, re.M))
    assert left_out == {"opencv", *LEFT_OUT.get(name, ())}, said.err
    assert code == 1, said.err  # a format was left out
    for fmt in FORMATS:
        if fmt in left_out:
            assert not layout.exported(shipped, fmt).exists()
            continue
        got = tmp_path / f"{fmt}.npz"
        argv = ["predict", str(layout.exported(shipped, fmt)), *feeds, "--out", str(got)]
        assert cli.main(argv) == 0, capsys.readouterr().err
        close_to_keras(np.load(got, allow_pickle=False), names, want, f"predict {fmt}")

    # the other files Keras writes of the same model: weights with their architecture, Keras
    # 2's .h5 (where Keras itself can write and read it back), Keras's own SavedModel export
    model.save_weights(tmp_path / "model.weights.h5")
    others = {"weights": [str(tmp_path / "model.weights.h5"), "--architecture", str(path)]}
    h5 = tmp_path / "model.h5"
    if keras_reads_its_h5(tf, model, h5, x):
        others["h5"] = [str(h5)]
    elif h5.exists():  # Keras cannot run what it wrote: one line, no traceback
        assert cli.main(["predict", str(h5), *trust, *feeds]) == 1
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    model.export(tmp_path / "export()", verbose=False)
    others["export()"] = [str(tmp_path / "export()")]
    for what, source in others.items():
        got = tmp_path / f"{what}.npz"
        given = feeds
        if what == "export()" and len(x) == 1:  # a subclassed model's input is args_0 there
            given = ["--input", str(tmp_path / f"{next(iter(x))}.npy")]
        argv = ["predict", *source, *trust, *given, "--out", str(got)]
        assert cli.main(argv) == 0, f"{what}: {capsys.readouterr().err}"
        by_name = dict(np.load(got, allow_pickle=False))
        if what == "export()":  # the SavedModel's own output keys, in its order
            by_name = dict(zip(names, by_name.values(), strict=True))
        close_to_keras(by_name, names, want, f"predict {what}")


def keras_reads_its_h5(tf, model, h5, x) -> bool:
    """Whether Keras writes the model as Keras 2's .h5 and predicts from what it reads back
    (not for a subclassed model; a TextVectorization comes back without its table, some
    applications' layers do not come back at all)."""
    import keras

    try:
        model.save(h5)
        keras_outputs(tf, keras.saving.load_model(h5, compile=False), x)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name", ["text_lstm", "int_lookup_hash"])
def test_keras_own_export_of_a_model_with_lookup_tables_predicts(name, tf, tmp_path):
    """Keras's ``model.export()`` SavedModel captures its tables as resources: they are frozen
    with their contents, not left as an input no one can feed."""
    model, x = keras_zoo.build(name)
    model.export(tmp_path / "saved", verbose=False)
    ((_, value),) = x.items()
    np.save(tmp_path / "x.npy", value)
    out = tmp_path / "y.npz"
    argv = ["predict", str(tmp_path / "saved"), "--input", str(tmp_path / "x.npy")]
    assert cli.main([*argv, "--out", str(out)]) == 0
    (got,) = np.load(out, allow_pickle=False).values()
    close_to_keras({"y": got}, ["y"], keras_outputs(tf, model, x), f"{name} export()")
