"""Export's closeness, judged as np.allclose judges it: a correct conversion of a deep
network (outputs in the hundreds) ships at the defaults where an absolute tolerance alone
refused it, and a wrong one (one weight tensor 1 % off) is refused at the same defaults."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli, layout, shipping
from tfpersist.distances import excess


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
    sig = shipping.Signature(frozen.input_node, frozen.outputs)
    x = shipping.sample_rows(frozen.graph_def, sig.input_node)
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
