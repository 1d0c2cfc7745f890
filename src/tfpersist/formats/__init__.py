"""What a model path holds: a SavedModel, a TF1 checkpoint, a frozen GraphDef, a Keras model
(.keras, Keras 2 .h5), weights without an architecture (.weights.h5, a TF2 object-based
checkpoint) — or a TFLite flatbuffer or an ONNX model, which only predict and serve run.

Every form Keras 3 writes has the kind of the file it stands for: a ``.keras`` unzipped into
a folder (``model.save(DIR, zipped=False)``) is KERAS, a sharded weights index
(``save_weights("w.weights.json", max_shard_size=…)``, its shards beside it) is
KERAS_WEIGHTS; safety.keras_files and freezing.keras tell them apart by the path.

One place decides, from names on disk and a file's first bytes (no TensorFlow import), so
that freeze, inspect, predict, compare and serve agree, and a path that is none of them gets
one line saying what to pass.

Imports: core, tfapi, safety, graph.
"""

from __future__ import annotations

import os
from pathlib import Path

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import checkpoints

SAVED_MODEL = "SavedModel"
CHECKPOINT = "TF1 checkpoint"
GRAPH_DEF = "frozen GraphDef"
TFLITE = "TFLite flatbuffer"
ONNX = "ONNX model"
KERAS = "Keras 3 model (.keras)"
KERAS_H5 = "Keras 2 HDF5 model (.h5)"
KERAS_WEIGHTS = "Keras weights file (weights only, no architecture)"
TF2_CHECKPOINT = "TF2 object-based checkpoint"
HDF5 = "HDF5 file"
# what freezing.keras reads (weights with an architecture)
KERAS_SOURCES = (KERAS, KERAS_H5, KERAS_WEIGHTS, TF2_CHECKPOINT)

KERAS_CONFIG = "config.json"  # in a Keras model folder, as in the .keras archive
SHARDED_WEIGHTS = ".weights.json"  # how Keras names a sharded weights index

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ARCHITECTURE = (
    "pass the model's architecture too (--architecture MODEL.keras, or its config JSON), or "
    "the model itself (a .keras from model.save, or a SavedModel from model.export('DIR'))"
)

WHAT_TO_PASS = (
    "pass a SavedModel directory, a checkpoint directory or prefix, a frozen .pb, or a Keras "
    "model (.keras, .h5)"
)


def saved_model_file(directory: str | Path) -> Path | None:
    """The graph file of a SavedModel directory, or None."""
    for name in layout.SAVED_MODEL_FILES:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def detect(
    path: str | Path, runnable: bool = False, describable: bool = False, weights: bool = False
) -> str:
    """SAVED_MODEL, CHECKPOINT, GRAPH_DEF, KERAS or KERAS_H5 for ``path``, or a one-line
    error; with ``runnable`` (predict, serve) also TFLITE or ONNX, which the TensorFlow-graph
    commands refuse by name. Weights without an architecture (KERAS_WEIGHTS, TF2_CHECKPOINT)
    are named and refused with what to pass instead — but with ``weights`` (an architecture
    was given) or ``describable`` (inspect lists them).

    A path that does not exist is taken as a checkpoint prefix when files start with it
    (``model.ckpt-1200`` for ``model.ckpt-1200.index``).
    """
    path = Path(path)
    kind = _detect(path, runnable)
    if kind == CHECKPOINT:
        prefix = checkpoints.prefix_of(path)
        if prefix is not None and checkpoints.object_based(prefix):
            kind = TF2_CHECKPOINT
    if kind in (KERAS_WEIGHTS, TF2_CHECKPOINT) and not (weights or describable):
        if kind == TF2_CHECKPOINT:
            what = " (tf.train.Checkpoint, CheckpointManager): it holds variables but no graph"
        elif is_sharded(path):
            what = (
                ", sharded (an index of the .weights.h5 shards beside it): it holds weights but "
                "not the model"
            )
        else:
            what = ": it holds weights but not the model"
        raise TfpersistError(f"{path}: a {kind}{what}; {ARCHITECTURE}")
    return kind


def is_keras_folder(path: str | Path) -> bool:
    """A folder holding a Keras model's config (an unzipped .keras) — a link there too, for
    the check to refuse by name."""
    return Path(path).is_dir() and os.path.lexists(Path(path) / KERAS_CONFIG)


def is_sharded(path: str | Path) -> bool:
    """A sharded Keras weights index (Keras reads it as one by this name)."""
    return Path(path).name.endswith(SHARDED_WEIGHTS)


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


def _refuse_hdf5(path: Path) -> TfpersistError:
    return TfpersistError(
        f"{path}: an {HDF5}: it holds no Keras model (no model_config or layer_names "
        f"attribute); {WHAT_TO_PASS}"
    )


def _detect(path: Path, runnable: bool) -> str:
    if path.is_dir():
        if saved_model_file(path):
            return SAVED_MODEL
        if (path / layout.CHECKPOINT_STATE).is_file():
            return CHECKPOINT
        if is_keras_folder(path):
            return KERAS
        raise TfpersistError(
            f"{path}: a directory with neither a SavedModel ({layout.SAVED_MODEL_FILES[0]}) nor a "
            f"checkpoint ('{layout.CHECKPOINT_STATE}' state file), nor a Keras model's "
            f"{KERAS_CONFIG} (model.save(DIR, zipped=False)); {WHAT_TO_PASS}"
        )
    if path.is_file():
        if is_sharded(path):
            return KERAS_WEIGHTS
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
        if keras == HDF5:
            raise _refuse_hdf5(path)
        if keras:
            return keras
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
