"""Export of a model with several inputs: every format takes each input by its name and,
loaded back by its own runtime, gives Keras's own outputs; the parity check feeds every
input (seeded rows, or the user's by name); OpenCV, which takes one, is left out."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.core import layout

ROWS = 5


@pytest.fixture(scope="module")
def two_inputs(tf, tmp_path_factory):
    """A Keras model of two named inputs and two named outputs (dicts both ways), its rows
    for each input, Keras's own predictions on them, and its export to every format."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("two_inputs")
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = layers.Concatenate()([layers.Dense(8, activation="relu")(a), b])
    outputs = {"score": layers.Dense(1, name="score")(h), "cls": layers.Dense(3, name="cls")(h)}
    model = keras.Model({"a": a, "b": b}, outputs)
    model.save(root / "m.keras")
    rng = np.random.default_rng(1)
    x = {
        "a": rng.standard_normal((ROWS, 4), np.float32),
        "b": rng.standard_normal((ROWS, 3), np.float32),
    }
    for name, rows in x.items():
        np.save(root / f"{name}.npy", rows)
    want = model.predict(x, verbose=0)
    args = ["export", str(root / "m.keras"), "--to", "saved_model,tflite,onnx,opencv"]
    assert cli.main([*args, "--out", str(root / "out")]) == 1  # OpenCV left out
    return root, x, want


def close(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(np.asarray(got[name]), value, rtol=1e-5, atol=1e-6)


def test_every_format_takes_each_input_by_name_and_gives_kerass_outputs(tf, two_inputs):
    import onnxruntime

    root, x, want = two_inputs
    out = root / "out"
    fn = tf.saved_model.load(str(layout.exported(out, "saved_model"))).signatures["serving_default"]
    close({k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in x.items()}).items()}, want)

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (LiteRT)
        warnings.simplefilter("ignore", UserWarning)
        lite = tf.lite.Interpreter(model_path=str(layout.exported(out, "tflite")))
    runner = lite.get_signature_runner("serving_default")
    assert sorted(runner.get_input_details()) == ["a", "b"]
    close(runner(b=x["b"], a=x["a"]), want)  # by name: the order given is not the model's

    session = onnxruntime.InferenceSession(str(layout.exported(out, "onnx")))
    assert sorted(i.name for i in session.get_inputs()) == ["a", "b"]
    names = [o.name for o in session.get_outputs()]
    close(dict(zip(names, session.run(names, {"b": x["b"], "a": x["a"]}), strict=True)), want)


def test_the_card_lists_every_input_and_says_why_opencv_is_left_out(two_inputs):
    root, _, _ = two_inputs
    card = json.loads((root / "out" / layout.EXPORT_CARD).read_text())
    inputs = {t["name"]: t["shape"] for t in card["signature"]["inputs"]}
    assert inputs == {"a": [None, 4], "b": [None, 3]}
    assert sorted(card["formats"]) == ["onnx", "saved_model", "tflite"]
    assert card["left_out"]["opencv"].startswith("the OpenCV export takes one input and this")
    assert not (root / "out" / layout.OPENCV_FILE).exists()


def test_the_check_runs_on_the_users_rows_for_each_input(two_inputs, capsys):
    root, _, _ = two_inputs
    args = ["export", str(root / "m.keras"), "--to", "saved_model,tflite,onnx"]
    feed = ["--input", f"a={root / 'a.npy'}", "--input", f"b={root / 'b.npy'}"]
    assert cli.main([*args, "--out", str(root / "users"), *feed]) == 0
    said = capsys.readouterr().out
    assert said.count(f"({ROWS} rows)") == 3, said


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_wrong_or_missing_input_is_one_line(two_inputs, tmp_path, capsys):
    root = two_inputs[0]
    out = tmp_path / "out"
    args = ["export", str(root / "m.keras"), "--to", "onnx", "--out", str(out)]
    np.save(tmp_path / "wide.npy", np.zeros((ROWS, 7), np.float32))
    wrong = ["--input", f"a={root / 'a.npy'}", "--input", f"b={tmp_path / 'wide.npy'}"]
    assert cli.main([*args, *wrong]) == 1
    assert "input 'b' takes 3 features per row, the data has 7" in one_line(capsys)
    assert cli.main([*args, "--input", f"a={root / 'a.npy'}"]) == 1
    assert "input 'b' not fed; its inputs are a, b" in one_line(capsys)
    assert (
        cli.main([*args, "--input", f"c={root / 'a.npy'}", "--input", f"b={root / 'b.npy'}"]) == 1
    )
    assert "no input 'c'; its inputs are a, b" in one_line(capsys)
    assert cli.main([*args, "--input", str(root / "a.npy")]) == 1  # unnamed: which input?
    assert "the model has 2 inputs (a, b)" in one_line(capsys)
    assert cli.main([*args, "--to", "opencv"]) == 1  # nothing else asked: nothing written
    assert "the OpenCV export takes one input" in one_line(capsys)
    assert not out.exists()
