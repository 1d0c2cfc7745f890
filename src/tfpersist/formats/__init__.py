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

WHAT_TO_PASS = "pass a SavedModel directory, a checkpoint directory or prefix, or a frozen .pb"


def saved_model_file(directory: str | Path) -> Path | None:
    """The graph file of a SavedModel directory, or None."""
    for name in layout.SAVED_MODEL_FILES:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def detect(path: str | Path, runnable: bool = False) -> str:
    """SAVED_MODEL, CHECKPOINT or GRAPH_DEF for ``path``, or a one-line error; with
    ``runnable`` (predict, serve) also TFLITE or ONNX, which the TensorFlow-graph commands
    refuse by name.

    A path that does not exist is taken as a checkpoint prefix when files start with it
    (``model.ckpt-1200`` for ``model.ckpt-1200.index``).
    """
    path = Path(path)
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
