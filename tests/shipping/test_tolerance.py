"""Export's closeness, judged as np.allclose judges it: a correct conversion of a deep
network (outputs in the hundreds) ships at the defaults where an absolute tolerance alone
refused it, and a wrong one (one weight tensor 1 % off) is refused at the same defaults."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli, shipping
from tfpersist.core import layout
from tfpersist.numerics.distances import excess


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """Twelve 3×3 convolutions (no normalization, weights 1.7× He's) and a dense head: logits
    of a few hundred on standard-normal rows, as an untrained ResNet's reach thousands."""
    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("deep")
    h = inp = keras.Input((16, 16, 3), name="image")
    for i in range(12):
        init = keras.initializers.HeNormal(seed=i)
        h = keras.layers.Conv2D(24, 3, padding="same", activation="relu", kernel_initializer=init)(
            h
        )
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(10, name="logits")(h))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            w, b = layer.get_weights()
            layer.set_weights([w * 1.7, b])
    model.save(root / "deep.keras")
    return root


def test_a_deep_networks_correct_export_ships_at_the_defaults(deep, capsys):
    args = ["export", str(deep / "deep.keras"), "--to", "onnx,tflite"]
    assert cli.main([*args, "--out", str(deep / "absolute"), "--rtol", "0"]) == 1
    err = capsys.readouterr().err
    # float32 kernels' last bits on outputs of hundreds: beyond 1e-5 absolute, 1e-6 relative
    assert "differs from the frozen graph: logits" in err and "relative" in err
    assert not (deep / "absolute" / "model.onnx").exists()
    assert cli.main([*args, "--out", str(deep / "out")]) == 0
    said = capsys.readouterr().out
    assert "model.onnx: onnx" in said and "model.tflite: tflite" in said


def test_a_wrong_conversion_is_refused_at_the_defaults(deep):
    """The shipped ONNX with its first convolution's weights 1 % off (what a mistranslated
    layout or a lost constant looks like, only milder): parity fails, saying how far."""
    import onnx
    from onnx import numpy_helper

    from tfpersist import versions

    path = deep / "out" / layout.ONNX_FILE
    model = onnx.load(str(path))
    conv = next(t for t in model.graph.initializer if numpy_helper.to_array(t).ndim == 4)
    conv.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(conv) * 1.01, conv.name))
    onnx.save(model, str(deep / "wrong.onnx"))
    (deep / "wrong").mkdir()
    (deep / "wrong.onnx").rename(deep / "wrong" / layout.ONNX_FILE)
    frozen = versions.load(str(deep / "deep.keras"), None, deep)  # what export held them to
    sig = shipping.Signature(frozen.input_nodes, frozen.outputs)
    x = shipping.sample_rows(frozen.graph_def, sig.input_nodes)
    want = shipping.frozen_outputs(frozen.graph_def, sig, x)
    right = shipping.parity(deep / "out", sig, ["onnx", "tflite"], x, want)
    assert right.failures(layout.EXPORT_ATOL) == []
    wrong = shipping.parity(deep / "wrong", sig, ["onnx"], x, want)
    (line,) = wrong.failures(layout.EXPORT_ATOL)
    assert line.startswith("onnx differs from the frozen graph: logits")
    relative = float(line.split("(relative ")[1].split(";")[0])
    assert relative > 1e-3  # the error: ~1e-2 of each logit


def test_closeness_is_relative_and_absolute_together():
    want = np.array([1000.0, 0.0, 1e-3], np.float32)
    assert excess(want, want, 1e-3)[:2] == (0.0, 0.0)  # equal: nothing beyond
    assert excess(want, want + np.float32([0.5, 0, 0]), 1e-3)[0] <= 1e-5  # 5e-4 relative
    over, diff, value = excess(want, want + np.float32([1.5, 0, 0]), 1e-3)  # 1.5e-3: not
    assert over > 1e-5 and np.isclose(diff, 1.5) and value == 1000.0
    over, diff, value = excess(want, np.array([1000.0, 2e-5, 1e-3], np.float32), 1e-3)
    assert over > 1e-5 and value == 0.0  # near zero only the absolute part allows
    assert excess(want, np.array([np.nan, 0, 1e-3]), 1e-3)[0] == np.inf  # NaN is far
    assert excess(np.array([np.inf]), np.array([np.inf]), 1e-3)[0] == 0.0


def test_each_format_is_judged_on_its_own(deep, capsys):
    """--to saved_model,tflite with no tolerance at all: the SavedModel (TensorFlow's own
    kernels: exactly the frozen graph's outputs) ships, the TFLite is left out with one line,
    and the status says not everything asked for was shipped."""
    out = deep / "each"
    args = ["export", str(deep / "deep.keras"), "--out", str(out), "--to", "saved_model,tflite"]
    assert cli.main([*args, "--tolerance", "0", "--rtol", "0"]) == 1
    captured = capsys.readouterr()
    assert "saved_model/1: saved_model" in captured.out
    assert "tfpersist: error: tflite left out: differs from the frozen graph: logits" in (
        captured.err
    )
    card = (out / layout.EXPORT_CARD).read_text()
    assert '"left_out"' in card and not (out / layout.TFLITE_FILE).exists()


def test_a_format_its_runtime_cannot_load_is_left_out_and_the_rest_ships(tmp_path, capsys):
    """Keras's Discretization is TensorFlow's Bucketize, which tf2onnx leaves unconverted in
    an ONNX file onnxruntime refuses (INVALID_GRAPH): ONNX is left out naming the op, the
    TFLite and the SavedModel ship; the card says why, with no path of this machine."""
    import keras

    inp = keras.Input((4,), name="x")
    binned = keras.layers.Discretization(bin_boundaries=[-1.0, 0.0, 1.0])(inp)
    model = keras.Model(
        inp, keras.layers.Dense(3, name="scores")(keras.ops.cast(binned, "float32"))
    )
    model.save(tmp_path / "binned.keras")
    out = tmp_path / "out"
    args = ["export", str(tmp_path / "binned.keras"), "--out", str(out)]
    assert cli.main([*args, "--to", "onnx,tflite,saved_model"]) == 1
    captured = capsys.readouterr()
    line = "onnx left out: its runtime cannot load the file written for it: tf2onnx left "
    assert f"tfpersist: error: {line}TensorFlow's Bucketize unconverted" in captured.err
    assert "ERROR:tf2onnx" not in captured.err  # its log lines: said once, by that line
    assert (out / layout.TFLITE_FILE).exists() and not (out / layout.ONNX_FILE).exists()
    card = (out / layout.EXPORT_CARD).read_text()
    assert "Bucketize" in card and str(tmp_path) not in card
    assert cli.main([*args, "--to", "onnx"]) == 1  # all refused: nothing shipped, one line
    assert "nothing written to" in capsys.readouterr().err


def test_the_check_runs_on_the_users_rows(deep, tmp_path, capsys):
    """--input: the parity check on rows of the model's own kind instead of 64 seeded
    standard-normal ones; rows of another shape are one line."""
    np.save(tmp_path / "images.npy", np.full((5, 16, 16, 3), 0.5, np.float32))
    args = ["export", str(deep / "deep.keras"), "--to", "onnx", "--out", str(tmp_path / "out")]
    assert cli.main([*args, "--input", str(tmp_path / "images.npy")]) == 0
    assert "(5 rows)" in capsys.readouterr().out
    np.save(tmp_path / "flat.npy", np.zeros((5, 7), np.float32))
    assert cli.main([*args, "--input", str(tmp_path / "flat.npy")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
