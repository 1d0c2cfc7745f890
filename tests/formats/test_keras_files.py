"""Keras 3 and TF2 files, as Keras and TensorFlow write them, are named by every command —
not called a corrupt GraphDef or an incomplete checkpoint — with what to pass instead."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli, formats
from tfpersist.errors import TfpersistError


@pytest.fixture(scope="module")
def keras_files(tf, tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("keras")
    model = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(3, name="d")])
    model.save(root / "m.keras")
    model.save_weights(root / "m.weights.h5")
    model.save(root / "m.h5")  # Keras 3 still writes Keras 2's legacy HDF5 model
    checkpoint = tf.train.Checkpoint(model=model)
    tf.train.CheckpointManager(checkpoint, root / "ckpts", max_to_keep=2).save()
    model.export(root / "exported", verbose=False)  # what the messages point to
    return root


CASES = [
    ("m.keras", "a Keras 3 model (.keras): tfpersist does not read Keras files yet"),
    ("m.h5", "a Keras 2 HDF5 model (.h5)"),
    ("m.weights.h5", "a Keras weights file (weights only, no architecture): it holds weights"),
    ("ckpts", "a TF2 object-based checkpoint"),
    ("ckpts/ckpt-1", "a TF2 object-based checkpoint"),
    ("ckpts/ckpt-1.index", "a TF2 object-based checkpoint"),
]


@pytest.mark.parametrize(("name", "said"), CASES)
def test_each_file_is_named_by_the_detector(keras_files, name, said):
    with pytest.raises(TfpersistError, match="SavedModel") as refused:
        formats.detect(keras_files / name)
    assert said in str(refused.value)
    assert "GraphDef" not in str(refused.value) and "incomplete" not in str(refused.value)


@pytest.mark.parametrize("command", ["inspect", "freeze", "predict", "compare", "export", "serve"])
def test_every_command_says_what_the_file_is_in_one_line(keras_files, command, capsys):
    np.save(keras_files / "x.npy", np.ones((2, 4), np.float32))
    args = {
        "inspect": [],
        "freeze": ["--output-nodes", "y", "--out", str(keras_files / "out.pb")],
        "predict": ["--input", str(keras_files / "x.npy")],
        "compare": [str(keras_files / "m.keras")],
        "export": ["--out", str(keras_files / "export")],
        "serve": ["--port", "0"],  # refused before the port opens
    }[command]
    # inspect describes a TF2 checkpoint (its object graph: the next test); the rest refuse it
    for name, said in CASES[:3] if command == "inspect" else CASES[:4]:
        assert cli.main([command, str(keras_files / name), *args]) == 1, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and said in err, err
    assert not (keras_files / "out.pb").exists() and not (keras_files / "export").exists()


def test_what_the_messages_point_to_works(keras_files, capsys):
    """model.export(DIR) — the SavedModel the messages ask for — is read by every command."""
    assert formats.detect(keras_files / "exported") == formats.SAVED_MODEL
    assert cli.main(["inspect", str(keras_files / "exported")]) == 0
    assert "SavedModel" in capsys.readouterr().out


def test_an_hdf5_file_that_is_no_keras_model_and_a_plain_zip(tmp_path):
    import h5py

    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["table"] = np.arange(3)
    with pytest.raises(TfpersistError, match="an HDF5 file: it holds no Keras model"):
        formats.detect(tmp_path / "data.h5")
    import zipfile

    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as z:
        z.writestr("notes.txt", "hello")
    assert formats.detect(tmp_path / "notes.zip") == formats.GRAPH_DEF  # then: not a GraphDef


def test_inspect_lists_a_tf2_checkpoints_object_graph(tf, tmp_path, capsys):
    """What CheckpointManager wrote after Keras training: each variable under the model's
    path (the optimizer's alias beside it), the optimizer's state, the save counter, the
    history; a v1 optimizer's slots; a variable reached through two attributes."""
    import json

    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 3)), verbose=0, epochs=1)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, tmp_path / "run", max_to_keep=2)
    manager.save()
    manager.save()
    assert cli.main(["inspect", str(tmp_path / "run"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == formats.TF2_CHECKPOINT and info["graph"] is None
    assert info["save_counter"] == 2 and info["history"] == ["ckpt-1", "ckpt-2"]
    by_name = {v["name"]: v for v in info["variables"]}
    kernels = [v for v in info["variables"] if v["shape"] == [4, 3]]
    model_kernel = next(v for v in kernels if v["name"].startswith("model/"))
    assert any(a.startswith("optimizer/") for a in model_kernel["aliases"])
    assert len(kernels) == 3  # the kernel and Adam's two moments
    assert info["parameters"] == sum(int(np.prod(v["shape"])) for v in by_name.values())

    class Net(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones([2, 2]))
            self.same_w = self.w

    v = tf.Variable([1.0, 2.0])
    optimizer = tf.compat.v1.train.AdamOptimizer(0.1)
    optimizer.minimize(lambda: tf.reduce_sum(v * v), var_list=[v])
    tf.train.Checkpoint(net=Net(), v=v, opt=optimizer).write(str(tmp_path / "mod" / "ck"))
    assert cli.main(["inspect", str(tmp_path / "mod" / "ck")]) == 0
    text = capsys.readouterr().out
    assert "net/w: float32 [2, 2] (also net/same_w)" in text
    assert "optimizer slots (2):" in text and "  v: m (" in text and "  v: v (" in text
    assert "no graph:" in text and "model.export(DIR)" in text


def rewritten(source, out, config=None, extra=(), drop=()):
    """``source`` (a real .keras) with its config replaced and members added or left out."""
    import json
    import zipfile

    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            zout.writestr(info, data)
        for item in extra:
            zout.writestr(*item)
    return out


def layer(cls, module="keras.layers", **config):
    return {"module": module, "class_name": cls, "config": {"name": "evil", **config}}


def with_layer(obj):
    def edit(config):
        config["config"]["layers"].append(obj)
        return config

    return edit


def symlink(name):
    import zipfile

    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    return info, "/etc/passwd"


HOSTILE = {  # each a vector of Keras's 2024–2026 advisories, what the refusal must say
    "lambda": (dict(config=with_layer(layer("Lambda", function="gAAAAA"))), "Lambda layer"),
    "os_system": (
        dict(
            config=with_layer(
                layer(
                    "Dense",
                    activation={"module": "os", "class_name": "function", "config": "system"},
                )
            )
        ),
        "references the function os.system",
    ),
    "get_file": (
        dict(
            config=with_layer(
                {"module": "keras.utils", "class_name": "function", "config": "get_file"}
            )
        ),
        "references the function keras.utils.get_file",
    ),
    "module": (dict(config=with_layer(layer("Popen", module="subprocess"))), "module 'subprocess'"),
    "custom": (
        dict(config=with_layer({**layer("Mine", module=None), "registered_name": "pkg>Mine"})),
        "custom object 'pkg>Mine'",
    ),
    "tfsm": (dict(config=with_layer(layer("TFSMLayer", filepath="/tmp/sm"))), "TFSMLayer"),
    "torch": (dict(config=with_layer(layer("TorchModuleWrapper"))), "TorchModuleWrapper"),
    "vocab_path": (
        dict(config=with_layer(layer("StringLookup", vocabulary="/etc/passwd"))),
        "reads its vocabulary from '/etc/passwd'",
    ),
    "traversal": (dict(extra=[("../evil.py", "x")]), "member '../evil.py' points outside"),
    "absolute": (dict(extra=[("/tmp/evil", "x")]), "points outside the archive"),
    "link": (dict(extra=[symlink("assets/passwd")]), "is a symbolic link"),
    "unknown_member": (dict(extra=[("payload.pkl", "x")]), "member 'payload.pkl' is none of"),
    "literal": (
        dict(config=with_layer(layer("Dense", units=1, note="x" * (2**20 + 1)))),
        "a string of 1048577 characters",
    ),
}


@pytest.mark.parametrize("vector", sorted(HOSTILE))
def test_a_hostile_keras_file_is_refused_for_what_it_is(keras_files, tmp_path, vector, capsys):
    how, said = HOSTILE[vector]
    path = rewritten(keras_files / "m.keras", tmp_path / f"{vector}.keras", **how)
    assert cli.main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing this Keras file" in err and said in err, err


def test_a_zip_bomb_config_is_refused_unread(keras_files, tmp_path):
    """Keras 3.15 in safe mode loads a config.json inflating to 1 GiB (its check starts at
    4 GiB); the archive's own sizes refuse it before a byte is inflated."""
    import zipfile

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(keras_files / "m.keras") as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            if info.filename != "config.json":
                zout.writestr(info, zin.read(info))
        zout.writestr("config.json", b" " * (64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(TfpersistError, match=r"member 'config.json' inflates \d+× .*zip bomb"):
        formats.detect(path)


def test_real_keras_models_pass_the_checks(tf, tmp_path):
    """Built-in layers, a functional model with two inputs and named outputs, recurrent and
    convolution layers, function activations, a list vocabulary: nothing refused."""
    import keras

    from tfpersist.safety import keras_files

    x, t = keras.Input((8,), name="x"), keras.Input((5,), dtype="int32", name="t")
    h = keras.layers.Dense(16, activation="relu", kernel_regularizer="l2")(x)
    h = keras.layers.Dropout(0.2)(keras.layers.BatchNormalization()(h))
    e = keras.layers.LSTM(6)(keras.layers.Embedding(50, 4)(t))
    i = keras.layers.Reshape((4, 4, 1))(h)
    i = keras.layers.Conv2D(2, 3, padding="same", activation=keras.activations.gelu)(i)
    i = keras.layers.GlobalAveragePooling2D()(i)
    o = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([h, e, i]))
    keras.Model([x, t], {"probs": o}).save(tmp_path / "f.keras")
    lookup = keras.layers.StringLookup(vocabulary=["a", "b"])
    keras.Sequential([keras.Input((1,), dtype="string"), lookup]).save(tmp_path / "s.keras")
    for name in ("f.keras", "s.keras"):
        assert keras_files.check_archive(tmp_path / name)["class_name"]
        with pytest.raises(TfpersistError, match="does not read Keras files yet"):
            formats.detect(tmp_path / name)
