"""Every form Keras 3 writes a model or its weights in, written by Keras itself, through
inspect, freeze, predict, compare and export: a .keras unzipped in a folder
(``model.save(DIR, zipped=False)``), sharded weights (``save_weights("w.weights.json",
max_shard_size=…)``) with their architecture, npz weights (Keras pickles them: refused in one
line; plain arrays load) — and the hostile ones refused in one line with nothing of them
loaded: a folder's weights a symbolic link, a shard index naming ``../``, an npz array of
pickled objects, an npz array declaring more bytes than it stores."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

from tfpersist import cli, formats
from tfpersist.core.errors import TfpersistError
from tfpersist.safety import keras_files

ROWS = 5


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # an object array pickled, as NumPy saves one
    return buffer.getvalue()


def _with_npz(source, target, npz: bytes) -> None:
    """``source`` (a .keras) with its HDF5 weights replaced by ``npz`` as model.weights.npz."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename != keras_files.WEIGHTS_H5:
                new.writestr(info, old.read(info))
        new.writestr(keras_files.WEIGHTS_NPZ, npz)


@pytest.fixture(scope="module")
def made(tf, tmp_path_factory):
    """One small Dense model in every form; its inputs and Keras's own predictions."""
    import keras
    from keras.src.saving import saving_lib  # model.save takes no weights_format

    root = tmp_path_factory.mktemp("variants")
    x = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    model = keras.Model(x, keras.layers.Dense(3, name="out")(hidden))
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    rows = rng.normal(size=(ROWS, 4)).astype(np.float32)
    np.save(root / "x.npy", rows)
    model.save(root / "m.keras")
    model.save(root / "folder", zipped=False)
    (root / "sharded").mkdir()
    model.save_weights(root / "sharded" / "w.weights.json", max_shard_size=2e-7)
    saving_lib.save_model(model, str(root / "pickled.keras"), weights_format="npz")
    saving_lib.save_model(model, str(root / "pickled"), weights_format="npz", zipped=False)
    plain = {}  # the same weights as plain arrays, named by Keras's own weight paths

    def dataset(name, obj):
        if isinstance(obj, h5py.Dataset):
            plain[name] = obj[()]

    with h5py.File(root / "folder" / keras_files.WEIGHTS_H5) as f:
        f.visititems(dataset)
    _with_npz(root / "m.keras", root / "plain.keras", _npz_bytes(plain))
    return root, model.predict(rows, verbose=0)


@pytest.fixture
def nothing_loaded(monkeypatch):
    """Every way Keras would open a model or weights, recorded (and refused)."""
    import keras

    calls = []

    def record(what):
        def opened(*args, **kwargs):
            calls.append(what)
            raise AssertionError(f"Keras opened {what}")

        return opened

    monkeypatch.setattr(keras.saving, "load_model", record("load_model"))
    monkeypatch.setattr(keras.Model, "load_weights", record("load_weights"))
    return calls


def one_line(capsys, path) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"tfpersist: error: {path}: "), err
    return err


def test_what_keras_writes(made):
    """What the checks below rely on, as Keras 3.15 writes it: a folder of the archive's
    members, shards named after the index, npz weights pickled (in a folder under the HDF5
    name: a Keras bug)."""
    root = made[0]
    written = set(os.listdir(root / "folder")) - {"assets"}  # an empty assets/ or none
    assert written == {"config.json", "metadata.json", "model.weights.h5"}
    assert sorted(os.listdir(root / "sharded")) == [
        "w.weights.json",
        "w_00000.weights.h5",
        "w_00001.weights.h5",
    ]
    assert keras_files.weights_of(root / "pickled.keras") == ("model.weights.npz", "npz")
    assert keras_files.weights_of(root / "pickled") == ("model.weights.h5", "npz")
    assert formats.detect(root / "folder") == formats.KERAS
    assert (
        formats.detect(root / "sharded" / "w.weights.json", weights=True) == formats.KERAS_WEIGHTS
    )
    with pytest.raises(TfpersistError, match=r"sharded .*--architecture MODEL\.keras"):
        formats.detect(root / "sharded" / "w.weights.json")


VARIANTS = {  # name: (the model path, --architecture)
    "folder": ("folder", None),
    "sharded": ("sharded/w.weights.json", "m.keras"),
    "plain_npz": ("plain.keras", None),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_through_every_command(made, variant, tmp_path, capsys):
    root, want = made
    name, architecture = VARIANTS[variant]
    path = str(root / name)
    arch = ["--architecture", str(root / architecture)] if architecture else []

    assert cli.main(["inspect", path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in info["weights"]] == [
        "layers/dense/vars/0",
        "layers/dense/vars/1",
        "layers/dense_1/vars/0",
        "layers/dense_1/vars/1",
    ]
    assert [w["shape"] for w in info["weights"]] == [[4, 8], [8], [8, 3], [3]]
    assert info["parameters"] == 4 * 8 + 8 + 8 * 3 + 3
    if architecture is None:
        assert [o["name"] for o in info["outputs"]] == ["out"]

    pb = tmp_path / "m.pb"
    assert cli.main(["freeze", path, *arch, "--out", str(pb)]) == 0
    assert "outputs out" in capsys.readouterr().out

    out = tmp_path / "y.npz"
    assert (
        cli.main(["predict", path, *arch, "--input", str(root / "x.npy"), "--out", str(out)]) == 0
    )
    np.testing.assert_allclose(np.load(out)["out"], want, rtol=1e-5, atol=1e-6)
    capsys.readouterr()

    feeds = [f"--input=x={root / 'x.npy'}"]
    argv = ["compare", path, str(root / "m.keras"), *arch, "--format", "json", *feeds]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["differs"] == dict.fromkeys(("outputs", "signature", "structure", "weights"))
    assert report["outputs"]["equal_predictions"] == 1.0

    if variant == "folder":  # Keras will not save a folder named .keras, but loads one
        from tfpersist.freezing import freeze

        shutil.copytree(path, tmp_path / "renamed.keras")
        assert freeze.freeze(tmp_path / "renamed.keras")[1] == ["out"]

    exported = tmp_path / "export"
    argv = ["export", path, *arch, "--to", "saved_model", "--out", str(exported)]
    assert cli.main(argv) == 0
    assert (exported / "saved_model" / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("name", ["pickled.keras", "pickled"])
def test_keras_own_npz_is_refused_in_one_line(made, name, tmp_path, capsys, nothing_loaded):
    """Keras 3.15 pickles every npz array it writes (and cannot read them back): inspect and
    freeze say so by the member, in one line, and nothing is loaded."""
    path = made[0] / name
    for argv in (["inspect", str(path)], ["freeze", str(path), "--out", str(tmp_path / "m.pb")]):
        assert cli.main(argv) == 1
        err = one_line(capsys, path)
        assert (
            "array '__root__' holds pickled Python objects, which would run code when read" in err
        )
        assert "HDF5 weights" in err
    assert not (tmp_path / "m.pb").exists() and nothing_loaded == []


def test_hostile_folder_symlinked_weights(made, tmp_path, capsys, nothing_loaded):
    root = made[0]
    folder = tmp_path / "linked"
    shutil.copytree(root / "folder", folder)
    (folder / keras_files.WEIGHTS_H5).unlink()
    (folder / keras_files.WEIGHTS_H5).symlink_to(root / "folder" / keras_files.WEIGHTS_H5)
    for argv in (
        ["inspect", str(folder)],
        ["freeze", str(folder), "--out", str(tmp_path / "m.pb")],
    ):
        assert cli.main(argv) == 1
        err = one_line(capsys, folder)
        assert "'model.weights.h5' is a symbolic link" in err
    (folder / "extra.py").write_text("print('hi')\n")  # nothing else in a model folder
    (folder / keras_files.WEIGHTS_H5).unlink()
    shutil.copyfile(root / "folder" / keras_files.WEIGHTS_H5, folder / keras_files.WEIGHTS_H5)
    assert cli.main(["inspect", str(folder)]) == 1
    assert "'extra.py' is none of config.json" in one_line(capsys, folder)
    assert nothing_loaded == []


def test_hostile_shard_index_outside_its_folder(made, tmp_path, capsys, nothing_loaded):
    root = made[0]
    shards = tmp_path / "shards"
    shutil.copytree(root / "sharded", shards)
    shutil.copyfile(shards / "w_00001.weights.h5", tmp_path / "x.weights.h5")
    index = json.loads((shards / "w.weights.json").read_text())
    index["weight_map"]["/layers/dense_1/vars"] = ["../x.weights.h5"]
    (shards / "w.weights.json").write_text(json.dumps(index))
    arch = ["--architecture", str(root / "m.keras")]
    for argv in (
        ["inspect", str(shards / "w.weights.json")],
        ["freeze", str(shards / "w.weights.json"), *arch, "--out", str(tmp_path / "m.pb")],
    ):
        assert cli.main(argv) == 1
        err = one_line(capsys, shards / "w.weights.json")
        assert "names the shard '../x.weights.h5'" in err and "outside its folder" in err
    assert nothing_loaded == []  # not even the architecture
    assert not (tmp_path / "m.pb").exists()


def test_hostile_npz_arrays(made, tmp_path, capsys, nothing_loaded):
    """An object array among plain ones is refused by name; so is an array whose header
    declares far more than its bytes (np.load would allocate it)."""
    root = made[0]
    hostile = tmp_path / "object.keras"
    arrays = {"layers/dense/vars/0": np.ones((4, 8), np.float32)}
    arrays["layers/dense/vars/1"] = np.array([{"a": 1}], dtype=object)
    _with_npz(root / "m.keras", hostile, _npz_bytes(arrays))
    assert cli.main(["freeze", str(hostile), "--out", str(tmp_path / "m.pb")]) == 1
    err = one_line(capsys, hostile)
    assert "array 'layers/dense/vars/1' holds pickled Python objects" in err

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)}
    )
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w") as npz:
        npz.writestr("layers/dense/vars/0.npy", header.getvalue() + b"\0" * 16)
    declared = tmp_path / "bomb.keras"
    _with_npz(root / "m.keras", declared, bomb.getvalue())
    assert cli.main(["inspect", str(declared)]) == 1
    err = one_line(capsys, declared)
    assert "declares [100000, 100000] float32 (40000000000 bytes) but stores 16 bytes" in err
    assert nothing_loaded == [] and not (tmp_path / "m.pb").exists()
