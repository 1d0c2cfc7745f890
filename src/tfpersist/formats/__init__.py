"""What a model path holds: a SavedModel, a TF1 checkpoint, a frozen GraphDef — or a TFLite
flatbuffer or an ONNX model, which only predict and serve run.

One place decides, from names on disk and a file's first bytes (no TensorFlow import), so
that freeze, inspect, predict, compare and serve agree, and a path that is none of them gets
one line saying what to pass.

Imports: the core, safety and graph.
"""

from __future__ import annotations

from pathlib import Path

from tfpersist import layout
from tfpersist.errors import TfpersistError
from tfpersist.formats import checkpoints

SAVED_MODEL = "SavedModel"
CHECKPOINT = "TF1 checkpoint"
GRAPH_DEF = "frozen GraphDef"
TFLITE = "TFLite flatbuffer"
ONNX = "ONNX model"
# Recognised so that every command names them, and refused (for now) with what to pass.
KERAS = "Keras 3 model (.keras)"
KERAS_H5 = "Keras 2 HDF5 model (.h5)"
KERAS_WEIGHTS = "Keras weights file (weights only, no architecture)"
TF2_CHECKPOINT = "TF2 object-based checkpoint"
HDF5 = "HDF5 file"

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_EXPORT = "load it in Keras and export a SavedModel (model.export('DIR')), then pass DIR"

WHAT_TO_PASS = "pass a SavedModel directory, a checkpoint directory or prefix, or a frozen .pb"


def saved_model_file(directory: str | Path) -> Path | None:
    """The graph file of a SavedModel directory, or None."""
    for name in layout.SAVED_MODEL_FILES:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def detect(path: str | Path, runnable: bool = False, describable: bool = False) -> str:
    """SAVED_MODEL, CHECKPOINT or GRAPH_DEF for ``path``, or a one-line error; with
    ``runnable`` (predict, serve) also TFLITE or ONNX, which the TensorFlow-graph commands
    refuse by name. Keras files (.keras, Keras 2 .h5, weights-only .h5) and TF2 object-based
    checkpoints are named and refused with what to pass instead — but for ``describable``
    (inspect), which lists a TF2 checkpoint's objects: TF2_CHECKPOINT.

    A path that does not exist is taken as a checkpoint prefix when files start with it
    (``model.ckpt-1200`` for ``model.ckpt-1200.index``).
    """
    path = Path(path)
    kind = _detect(path, runnable)
    if kind == CHECKPOINT:
        prefix = checkpoints.prefix_of(path)
        if prefix is not None and checkpoints.object_based(prefix):
            if describable:
                return TF2_CHECKPOINT
            raise TfpersistError(
                f"{path}: a {TF2_CHECKPOINT} (tf.train.Checkpoint, CheckpointManager, Keras "
                "training): it holds variables but no graph, so there is nothing to freeze or "
                "run; save the model it belongs to as a SavedModel (model.export('DIR') or "
                "tf.saved_model.save) and pass DIR"
            )
    return kind


def keras_kind(path: Path, head: bytes) -> str | None:
    """KERAS, KERAS_H5, KERAS_WEIGHTS or HDF5 for a zip or HDF5 file, else None. A .keras is
    a zip holding config.json; an HDF5 file's root attributes say whether it carries a Keras 2
    model (``model_config``) or weights (``layer_names``; Keras 3 writes ``.weights.h5``).
    Reads the zip's directory and the HDF5 root attributes only (no link is followed)."""
    if head.startswith(ZIP_MAGIC):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return None
        return KERAS if "config.json" in names or path.suffix == ".keras" else None
    if not head.startswith(HDF5_MAGIC):
        return None
    if path.name.endswith(".weights.h5"):
        return KERAS_WEIGHTS
    try:
        import h5py

        with h5py.File(path, "r") as f:
            attrs = set(f.attrs)
    except (OSError, ImportError):
        return HDF5
    if "model_config" in attrs:
        return KERAS_H5
    return KERAS_WEIGHTS if "layer_names" in attrs else HDF5


def _h5_model_config(path: Path):
    """A Keras 2 .h5's ``model_config`` root attribute, parsed (None if unreadable)."""
    import json

    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (OSError, KeyError, ValueError):
        return None


def _refuse_keras(path: Path, kind: str) -> TfpersistError:
    if kind == KERAS_WEIGHTS:
        why = (
            "it holds weights but not the model; pass the model it belongs to (a .keras from "
            f"model.save, or a SavedModel: {KERAS_EXPORT})"
        )
    elif kind == HDF5:
        why = f"it holds no Keras model (no model_config or layer_names attribute); {WHAT_TO_PASS}"
    else:  # a hostile model is named for what it is, before anything else
        from tfpersist.safety import keras_files

        if kind == KERAS:
            keras_files.check_archive(path)
        else:
            keras_files.check_config(path, _h5_model_config(path), keras3=False)
        why = f"tfpersist does not read Keras files yet; {KERAS_EXPORT}"
    article = "an" if kind == HDF5 else "a"
    return TfpersistError(f"{path}: {article} {kind}: {why}")


def _detect(path: Path, runnable: bool) -> str:
    if path.is_dir():
        if saved_model_file(path):
            return SAVED_MODEL
        if (path / layout.CHECKPOINT_STATE).is_file():
            return CHECKPOINT
        raise TfpersistError(
            f"{path}: a directory with neither a SavedModel ({layout.SAVED_MODEL_FILES[0]}) nor a "
            f"checkpoint ('{layout.CHECKPOINT_STATE}' state file); {WHAT_TO_PASS}"
        )
    if path.is_file():
        if path.name in layout.SAVED_MODEL_FILES:
            raise TfpersistError(
                f"{path}: this is the graph file of a SavedModel; pass its directory "
                f"({path.parent}) instead"
            )
        if checkpoints.is_checkpoint_file(path) or checkpoints.is_v1_prefix(path):
            return CHECKPOINT
        with open(path, "rb") as f:
            head = f.read(8)
        keras = keras_kind(path, head)
        if keras:
            raise _refuse_keras(path, keras)
        foreign = TFLITE if head[4:8] == b"TFL3" else ONNX if path.suffix == ".onnx" else None
        if foreign and not runnable:
            raise TfpersistError(
                f"{path}: a {foreign}, not a TensorFlow graph; 'tfpersist predict' and "
                f"'tfpersist serve' run it, this command needs the model it came from"
            )
        return foreign or GRAPH_DEF
    if checkpoints.prefix_exists(path):
        return CHECKPOINT
    raise TfpersistError(f"{path}: no such file or directory; {WHAT_TO_PASS}")
