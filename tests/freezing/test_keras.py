"""Keras models through every command, against Keras's own answers: the model builders of
Keras's saving tests (tests/ported/keras_cases.py) saved as Keras saves them, frozen, run, and
compared with ``model.predict``; weights with their architecture; the user's own registered
objects by --keras-module; and the upstream models with custom code refused."""

from __future__ import annotations

import json
import sys
import urllib.request

import numpy as np
import pytest

from tfpersist import cli, formats, safety
from tfpersist.core.errors import TfpersistError

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "ported"))
import keras_cases

LEGACY = [name for name in keras_cases.CASES if name.startswith("lh_")]


def flat(outputs) -> list[np.ndarray]:
    """Keras's outputs in the order a traced call flattens them (a dict's sorted keys)."""
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


@pytest.fixture(scope="module")
def saved(tf, tmp_path_factory):
    """Every ported case as a .keras (the legacy-h5 cases also as .h5), with its inputs and
    what Keras's own predict gives on the reloaded model."""
    import keras

    root = tmp_path_factory.mktemp("keras_cases")
    found = {}
    for name, (_, build) in keras_cases.CASES.items():
        model = build(keras)
        files = [root / f"{name}.keras"] + ([root / f"{name}.h5"] if name in LEGACY else [])
        for path in files:
            model.save(path)
        x = keras_cases.inputs_for(model)
        feed = x if len(x) > 1 else next(iter(x.values()))
        found[name] = (files, x, flat(model.predict(feed, verbose=0)))
    return found


@pytest.mark.parametrize("name", sorted(keras_cases.CASES))
def test_each_ported_model_freezes_to_keras_own_outputs(saved, name):
    from tfpersist.freezing import freeze
    from tfpersist.graph import signature
    from tfpersist.running.runner import Runner

    files, x, want = saved[name]
    for path in files:
        graph_def, outputs = freeze.freeze(path)
        assert sorted(signature.placeholders(graph_def)) == sorted(x), path
        assert not any(o.startswith("Identity") for o in outputs), outputs
        with Runner.from_graph_def(graph_def, str(path)) as runner:
            got = runner.run(x, None, outputs)
        assert len(got) == len(want)
        for out, expected in zip(outputs, want, strict=True):
            # another code path than Keras's predict: equal to float rounding, not bit for bit
            tolerance = 1e-2 if expected.dtype.itemsize < 4 else 1e-5
            np.testing.assert_allclose(
                np.asarray(got[out], np.float64),
                np.asarray(expected, np.float64),
                rtol=tolerance,
                atol=tolerance,
                err_msg=f"{path}: {out}",
            )


@pytest.mark.parametrize("name", sorted(keras_cases.REFUSED))
def test_each_upstream_model_with_custom_code_is_refused(tf, tmp_path, name):
    import keras

    _, build, said = keras_cases.REFUSED[name]
    build(keras).save(tmp_path / "m.keras")
    with pytest.raises(TfpersistError, match="refusing this Keras file") as refused:
        from tfpersist.freezing import freeze

        freeze.freeze(tmp_path / "m.keras")
    assert said in str(refused.value)


def test_commands_on_a_keras_file(saved, tmp_path, capsys):
    """freeze names the outputs as the model does; predict takes the named inputs of a
    two-input model; the .keras and its .pb compare the same; export ships it; serve answers
    Keras's numbers over TF Serving's REST API."""
    from tfpersist import serving
    from tfpersist.running import loaders

    files, x, want = saved["sr_dict_inputs_outputs"]
    keras_file = files[0]
    for key, value in x.items():
        np.save(tmp_path / f"{key}.npy", value)
    pb = tmp_path / "m.pb"
    assert cli.main(["freeze", str(keras_file), "--out", str(pb)]) == 0
    assert "outputs bar_output, foo_output" in capsys.readouterr().out  # named like the inputs
    inputs = [f"--input={k}={tmp_path / f'{k}.npy'}" for k in x]
    assert cli.main(["predict", str(keras_file), *inputs, "--out", str(tmp_path / "y.npz")]) == 0
    got = np.load(tmp_path / "y.npz")
    np.testing.assert_allclose(got["bar_output"], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["foo_output"], want[1], rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    feeds = [f"--input={k}={tmp_path / f'{k}.npy'}" for k in x]
    assert cli.main(["compare", str(keras_file), str(pb), "--format", "json", *feeds]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["differs"] == dict.fromkeys(("outputs", "signature", "structure", "weights"))
    assert report["outputs"]["equal_predictions"] == 1.0
    page = tmp_path / "m.html"  # inspect --html draws the graph the model freezes to
    assert cli.main(["inspect", str(keras_file), "--html", str(page)]) == 0
    assert "foo_output" in page.read_text() and "Keras 3 model" in capsys.readouterr().out

    files, x, want = saved["x_embedding_gru"]  # integer inputs, a recurrent layer
    out = tmp_path / "export"
    assert cli.main(["export", str(files[0]), "--to", "onnx,saved_model", "--out", str(out)]) == 0
    assert (out / "model.onnx").is_file() and (out / "saved_model" / "1").is_dir()
    model = loaders.open_model(files[0])
    server = serving.serve_model(model, "gru")
    port = server.port
    try:
        body = json.dumps({"instances": x["ids"].tolist()}).encode()
        url = f"http://127.0.0.1:{port}/v1/models/gru:predict"
        with urllib.request.urlopen(urllib.request.Request(url, body)) as answer:
            predictions = json.loads(answer.read())["predictions"]
    finally:
        server.stop()
    np.testing.assert_allclose(np.array(predictions), want[0], rtol=1e-5, atol=1e-6)


def test_two_versions_of_a_keras_model_show_what_changed(tf, tmp_path, capsys, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)  # not the repository's data/prepared: the models take 4 features
    _, build = keras_cases.CASES["sl_basic_functional"]
    model = build(keras)
    model.save(tmp_path / "v1.keras")
    layer = model.get_layer("second_dense")
    layer.set_weights([w + 1 for w in layer.get_weights()])
    model.save(tmp_path / "v2.keras")
    argv = ["compare", str(tmp_path / "v1.keras"), str(tmp_path / "v2.keras"), "--format", "json"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["differs"]["signature"] is None and report["differs"]["structure"] is None
    assert report["differs"]["weights"], report["differs"]
    changed = {c["name"] for c in report["weights"]["changed"]}  # named as Keras names them
    assert changed == {"second_dense/kernel", "second_dense/bias"}, report["weights"]


def test_weights_freeze_with_their_architecture(tf, tmp_path, capsys):
    """A .weights.h5 and a CheckpointManager directory (any attribute name for the model)
    freeze with --architecture to the outputs of the model that wrote them; another
    architecture is refused in one line; without one they say what to pass."""
    import keras

    from tfpersist.freezing import freeze
    from tfpersist.running.runner import Runner

    _, build = keras_cases.CASES["x_embedding_gru"]
    model = build(keras)
    model.save(tmp_path / "arch.keras")
    x = keras_cases.inputs_for(model)
    optimizer = keras.optimizers.Adam(0.1)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x["ids"], np.ones((len(x["ids"]), 2)), epochs=2, verbose=0, shuffle=False)
    want = model.predict(x["ids"], verbose=0)
    model.save_weights(tmp_path / "trained.weights.h5")
    checkpoint = tf.train.Checkpoint(network=model, optimizer=optimizer)
    tf.train.CheckpointManager(checkpoint, tmp_path / "run", max_to_keep=1).save()
    for weights in (tmp_path / "trained.weights.h5", tmp_path / "run"):
        with pytest.raises(TfpersistError, match=r"--architecture MODEL.keras"):
            freeze.freeze(weights)
        graph_def, outputs = freeze.freeze(weights, architecture=tmp_path / "arch.keras")
        with Runner.from_graph_def(graph_def, str(weights)) as runner:
            got = runner.run(x, None, outputs)[outputs[0]]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    other = keras_cases.CASES["sl_basic_functional"][1](keras)
    other.save(tmp_path / "other.keras")
    argv = ["freeze", str(tmp_path / "run"), "--architecture", str(tmp_path / "other.keras")]
    assert cli.main([*argv, "--out", str(tmp_path / "x.pb")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not hold this architecture's variables" in err
    assert not (tmp_path / "x.pb").exists()


def test_a_users_own_registered_layer_is_let_in_by_keras_module(tf, tmp_path, monkeypatch):
    import keras

    from tfpersist.freezing import freeze

    (tmp_path / "mylayers.py").write_text(
        "import keras\n\n\n"
        "@keras.saving.register_keras_serializable(package='mylayers')\n"
        "class Twice(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import mylayers

    x = keras.Input((3,), name="x")
    y = mylayers.Twice(name="twice")(keras.layers.Dense(2, name="d")(x))
    model = keras.Model(x, y)
    model.save(tmp_path / "custom.keras")
    model.save(tmp_path / "custom.h5")  # Keras 2's format names the class "mylayers>Twice"
    from tfpersist.running.runner import Runner

    rows = np.ones((2, 3), np.float32)
    for path in (tmp_path / "custom.keras", tmp_path / "custom.h5"):
        with pytest.raises(TfpersistError, match=r"custom object .*mylayers>Twice.*--keras-mod"):
            freeze.freeze(path)
        trust = safety.Trust.of(keras_modules=["mylayers"])
        graph_def, outputs = freeze.freeze(path, trust=trust)
        assert outputs == ["twice"]
        with Runner.from_graph_def(graph_def, "custom") as runner:
            got = runner.run({"x": rows}, None, outputs)["twice"]
        np.testing.assert_allclose(got, model.predict(rows, verbose=0), rtol=1e-6)


def test_inspect_reads_a_keras_file_without_tensorflow(saved, tmp_path):
    """In a fresh process: layers, named inputs and outputs with shapes, weight statistics
    — and neither TensorFlow nor Keras imported."""
    import subprocess

    files = saved["x_embedding_gru"][0]
    code = (
        "import sys, json\n"
        "from tfpersist import cli\n"
        f"assert cli.main(['inspect', {str(files[0])!r}, '--json']) == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["format"] == formats.KERAS
    assert info["inputs"] == [{"name": "ids", "dtype": "int32", "shape": [None, 5]}]
    assert info["outputs"][0]["name"] == "dense" and info["outputs"][0]["shape"] == [None, 2]
    assert [la["class"] for la in info["layers"]] == ["Embedding", "GRU", "Dense"]
    assert info["parameters"] == sum(w["size"] for w in info["weights"]) > 0
    assert all("mean" in w and "std" in w for w in info["weights"])
