"""Keras 3 and TF2 files, as Keras and TensorFlow write them, are named by every command —
not called a corrupt GraphDef or an incomplete checkpoint — with what to pass instead."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli, formats
from tfpersist.core.errors import TfpersistError
from tfpersist.safety import keras_files as keras_checks


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


CASES = [  # the file, what the detector names it (weights only: what to pass as well)
    ("m.keras", formats.KERAS),
    ("m.h5", formats.KERAS_H5),
    ("m.weights.h5", formats.KERAS_WEIGHTS),
    ("ckpts", formats.TF2_CHECKPOINT),
    ("ckpts/ckpt-1", formats.TF2_CHECKPOINT),
    ("ckpts/ckpt-1.index", formats.TF2_CHECKPOINT),
]
WEIGHTS_ONLY = [
    name for name, kind in CASES if kind in (formats.KERAS_WEIGHTS, formats.TF2_CHECKPOINT)
]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_each_file_is_named_by_the_detector(keras_files, name, kind):
    if name not in WEIGHTS_ONLY:
        assert formats.detect(keras_files / name) == kind
        return
    with pytest.raises(TfpersistError, match=r"--architecture MODEL\.keras") as refused:
        formats.detect(keras_files / name)
    said = str(refused.value)
    assert kind in said and "GraphDef" not in said and "incomplete" not in said
    assert formats.detect(keras_files / name, weights=True) == kind
    assert formats.detect(keras_files / name, describable=True) == kind


@pytest.mark.parametrize("command", ["freeze", "predict", "compare", "export", "serve"])
def test_weights_alone_are_refused_in_one_line_by_every_command(keras_files, command, capsys):
    """Weights without the model: what they are and what to pass; nothing written, no port
    opened (inspect lists them: the tests below)."""
    np.save(keras_files / "x.npy", np.ones((2, 4), np.float32))
    args = {
        "freeze": ["--out", str(keras_files / "out.pb")],
        "predict": ["--input", str(keras_files / "x.npy")],
        "compare": [str(keras_files / "m.keras")],
        "export": ["--out", str(keras_files / "export")],
        "serve": ["--port", "0"],
    }[command]
    for name in ("m.weights.h5", "ckpts"):
        assert cli.main([command, str(keras_files / name), *args]) == 1, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--architecture" in err, err
    assert not (keras_files / "out.pb").exists() and not (keras_files / "export").exists()


def test_weights_with_their_architecture_compare_equal_to_the_model(keras_files, capsys):
    """compare and export take --architecture as freeze and predict do: the weights file and
    the TF2 checkpoint, restored into the model, are the model."""
    import json

    model = str(keras_files / "m.keras")
    np.save(keras_files / "x.npy", np.ones((2, 4), np.float32))
    for name in ("m.weights.h5", "ckpts"):
        weights = str(keras_files / name)
        args = ["compare", weights, model, "--architecture", model, "--format", "json"]
        assert cli.main([*args, "--input", f"x={keras_files / 'x.npy'}"]) == 0, name
        report = json.loads(capsys.readouterr().out)
        assert report["weights"]["changed"] == [] and report["outputs"]["max_abs"] == {"d": 0.0}, (
            report
        )


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


def rewritten(source, out, config=None, extra=(), drop=(), weights=None):
    """``source`` (a real .keras) with its config replaced, its weights file edited in
    place by ``weights(h5py.File)``, members added or left out."""
    import json
    import zipfile

    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info)
            if info.filename == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                data = edited_h5(data, out.with_suffix(".h5"), weights)
            zout.writestr(info, data)
        for item in extra:
            zout.writestr(*item)
    return out


def edited_h5(data: bytes, scratch, edit) -> bytes:
    import h5py

    scratch.write_bytes(data)
    with h5py.File(scratch, "a") as f:
        edit(f)
    return scratch.read_bytes()


def the_kernel(f):
    """The path of the Dense kernel (4×3) in an h5py file."""
    import h5py

    found = []
    f.visititems(
        lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.shape == (4, 3) else None
    )
    return found[0]


def external_storage(f):  # CVE-2026-1669: the kernel's bytes read from any file
    k = the_kernel(f)
    del f[k]
    f.create_dataset(k, shape=(4, 3), dtype="float32", external=[("/etc/hostname", 0, 48)])


def external_link(f):
    import h5py

    k = the_kernel(f)
    del f[k]
    f[k] = h5py.ExternalLink("/tmp/elsewhere.h5", "k")


def soft_link(f):
    import h5py

    k = the_kernel(f)
    f["stash"] = np.full((4, 3), 9, np.float32)
    del f[k]
    f[k] = h5py.SoftLink("/stash")


def virtual(f):
    import h5py

    k = the_kernel(f)
    del f[k]
    layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
    layout[:] = h5py.VirtualSource("/tmp/elsewhere.h5", "k", shape=(4, 3))
    f.create_virtual_dataset(k, layout)


def declared_bomb(f):  # CVE-2026-0897: 256 MiB declared, nothing stored
    f.create_dataset("vars/huge", shape=(64 * 2**20,), dtype="float32", chunks=(2**16,))


H5_VECTORS = {  # an edit of the weights file, what the refusal says
    "external_storage": (external_storage, "keeps its data in an external file"),
    "external_link": (external_link, "is an external link to /tmp/elsewhere.h5"),
    "soft_link": (soft_link, "is a soft link to /stash"),
    "virtual": (virtual, "is a virtual dataset"),
    "declared_bomb": (declared_bomb, "declares 268435456 bytes but stores 0"),
}


def layer(cls, module="keras.layers", **config):
    return {"module": module, "class_name": cls, "config": {"name": "evil", **config}}


def keras_function(module, name):
    return {"module": module, "class_name": "function", "config": name}


def renamed(name):
    def edit(config):
        config["config"]["name"] = name
        return config

    return edit


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
    "literal": (dict(config=renamed("x" * (2**20 + 1))), "a string of 1048577 characters"),
    "unknown_class": (dict(config=with_layer(layer("Evil"))), "not one of Keras's built-in"),
    "bare_layer": (dict(config=with_layer(layer("Layer"))), "not one of Keras's built-in"),
    "utils_function": (
        dict(config=with_layer(keras_function("keras.utils", "normalize"))),
        "references the function keras.utils.normalize",
    ),
    "unsafe_switch": (  # CVE-2025-9906
        dict(config=with_layer(keras_function("keras.config", "enable_unsafe_deserialization"))),
        "references the function keras.config.enable_unsafe_deserialization",
    ),
    **{name: (dict(weights=edit), said) for name, (edit, said) in H5_VECTORS.items()},
}


@pytest.mark.parametrize("vector", sorted(HOSTILE))
def test_a_hostile_keras_file_is_refused_for_what_it_is(keras_files, tmp_path, vector, capsys):
    how, said = HOSTILE[vector]
    path = rewritten(keras_files / "m.keras", tmp_path / f"{vector}.keras", **how)
    assert cli.main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing this Keras file" in err and said in err, err


@pytest.mark.parametrize("vector", sorted(H5_VECTORS))
def test_a_hostile_keras_2_h5_is_refused_for_what_it_is(keras_files, tmp_path, vector, capsys):
    """The same HDF5 vectors in a legacy .h5 model (CVE-2025-9905: Keras read them ignoring
    safe_mode), and the Keras 2 code layers in its model_config."""
    import shutil

    edit, said = H5_VECTORS[vector]
    path = shutil.copy(keras_files / "m.h5", tmp_path / f"{vector}.h5")
    edited_h5(path.read_bytes(), path, edit)
    assert cli.main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing this Keras file" in err and said in err, err


def test_keras_2_code_layers_in_an_h5_are_refused(keras_files, tmp_path, capsys):
    import json
    import shutil

    import h5py

    for cls, said in [("TFOpLambda", "TFOpLambda"), ("Lambda", "Lambda layer"), ("Evil", "Evil")]:
        path = shutil.copy(keras_files / "m.h5", tmp_path / f"{cls}.h5")
        with h5py.File(path, "a") as f:
            config = json.loads(f.attrs["model_config"])
            config["config"]["layers"].append(
                {"class_name": cls, "config": {"name": "evil", "function": "tf.math.add"}}
            )
            f.attrs["model_config"] = json.dumps(config)
        assert cli.main(["freeze", str(path), "--out", str(tmp_path / "o.pb")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "refusing this Keras file" in err and said in err, err
    assert not (tmp_path / "o.pb").exists()


# What Keras 3.15 itself does with each vector (load_model, safe_mode on, compile off): the
# docs/keras.md's table. "loads" is where our check is the only guard.
KERAS_ITSELF = {
    "absolute": "loads",
    "bare_layer": "loads",
    "custom": "refuses",
    "declared_bomb": "refuses",
    "external_link": "refuses",
    "external_storage": "refuses",
    "get_file": "refuses",
    "lambda": "refuses",
    "link": "loads",  # a symlink member: skipped
    "literal": "loads",  # a megabyte-long model name
    "module": "refuses",
    "os_system": "refuses",
    "soft_link": "refuses",
    "tfsm": "refuses",
    "torch": "refuses",  # here because torch is not installed
    "traversal": "loads",  # skips the member with a warning
    "unknown_class": "refuses",
    "unknown_member": "loads",
    "unsafe_switch": "refuses",
    "utils_function": "refuses",
    "virtual": "refuses",
    "vocab_path": "refuses",
}


@pytest.mark.parametrize("vector", sorted(KERAS_ITSELF))
def test_what_keras_itself_does_with_each_vector(keras_files, tmp_path, vector):
    import warnings

    import keras

    how, _ = HOSTILE[vector]
    path = rewritten(keras_files / "m.keras", tmp_path / f"{vector}.keras", **how)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keras.saving.load_model(path, safe_mode=True, compile=False)
        verdict = "loads"
    except Exception:
        verdict = "refuses"
    assert verdict == KERAS_ITSELF[vector]
    with pytest.raises(TfpersistError, match="refusing this Keras file"):
        keras_checks.check_file(path)


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
        keras_checks.check_file(path)


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
        assert formats.detect(tmp_path / name) == formats.KERAS


def test_a_member_reads_at_any_offset_without_inflating_from_its_start(tmp_path):
    """h5py reads a .keras's weights at random offsets: through zipfile's own stream every
    backwards seek re-reads the member from its start (an InceptionResNetV2 took 28 s to
    inspect). A stored member is a window on the archive, a deflated one inflated once:
    both give zipfile's bytes at any offset."""
    import random
    import zipfile

    from tfpersist.safety import zipped

    data = bytes(random.Random(0).randrange(256) for _ in range(200_000))
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo("stored"), data, compress_type=zipfile.ZIP_STORED)
        z.writestr(zipfile.ZipInfo("deflated"), data, compress_type=zipfile.ZIP_DEFLATED)
    rng = random.Random(1)
    with zipfile.ZipFile(archive) as z:
        for name in ("stored", "deflated"):
            with zipped.member_file(archive, z.getinfo(name)) as f:
                assert isinstance(f, zipped._Window) == (name == "stored")
                for _ in range(50):
                    at, size = rng.randrange(len(data)), rng.randrange(1, 5000)
                    f.seek(at)
                    assert f.read(size) == data[at : at + size], (name, at, size)
                    assert f.tell() == min(at + size, len(data))
                f.seek(-10, 2)
                assert f.read() == data[-10:]
