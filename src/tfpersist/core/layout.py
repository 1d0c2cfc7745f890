"""Where things are: the name of every file and directory the pipeline and the tools share.

dvc.yaml spells the pipeline's paths out; every module and stage script takes the names from
here, so a reader and a writer of an artifact cannot disagree. No TensorFlow import.
"""

from __future__ import annotations

from pathlib import Path

# -- the repository --------------------------------------------------------------------------

PARAMS = "params.yaml"  # every knob of the pipeline
DVC_LOCK = "dvc.lock"  # the hashes a revision's pipeline produced

# -- prepared data (the prepare stage) --------------------------------------------------------

PREPARED_DIR = Path("data", "prepared")  # relative to the repository root
SCHEMA = "schema.json"  # what the splits look like, beside them


TEST_CSV = "test.csv"  # the test split's rows as CSV, as in the raw file: what predict takes


def split_file(split: str) -> str:
    """The record file of one split in the prepared directory (tables/records.py):
    ``train`` → ``train.npy``."""
    return f"{split}.npy"


# -- checkpoints (the train and checkpoint stages) --------------------------------------------

CHECKPOINT_PREFIX = "model.ckpt"  # model.ckpt-<step> while training, model.ckpt released
CHECKPOINT_STATE = "checkpoint"  # TF's state file listing a directory's checkpoints
BEST_DIR = "best"  # in the training directory: the best-so-far checkpoint
LIVE_DIR = "live"  # in the training directory: dvclive's metrics and plots
FINGERPRINT = "fingerprint.json"  # in the training directory: what its checkpoints belong to

# -- models and their cards -------------------------------------------------------------------

SIGNATURE = "signature.json"  # in a release checkpoint directory: its signature and data
FROZEN_MODEL = "model.pb"  # a frozen GraphDef's default name
CARD_SUFFIX = ".json"  # a model file's card: model.pb → model.json


def card(model: str | Path) -> Path:
    """The card written beside a model: ``signature.json`` inside a (release checkpoint)
    directory, else the model file's name with ``.json`` (``model.pb`` → ``model.json``)."""
    model = Path(model)
    return model / SIGNATURE if model.is_dir() else model.with_suffix(CARD_SUFFIX)


# TF writes saved_model.pb, or saved_model.pbtxt with ``as_text=True``; the loader reads both.
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SAVED_MODEL_VARIABLES = Path("variables", "variables")  # a SavedModel's checkpoint prefix

# -- shipped formats (the export stage and tfpersist export) ----------------------------------

EXPORT_FORMATS = ("saved_model", "tflite", "onnx", "opencv")
# what tfpersist export writes unless told: opencv is asked for by name (it refuses some
# models OpenCV's importer cannot run, which the other three ship fine; see opencv.py)
EXPORT_DEFAULT = ("saved_model", "tflite", "onnx")
TFLITE_QUANTIZE = ("none", "dynamic")  # dynamic: int8 weights, float activations
# how close each format must stay to the frozen graph, as np.allclose judges closeness:
# |format − frozen| <= EXPORT_ATOL + EXPORT_RTOL·|frozen|, element by element
EXPORT_ATOL, EXPORT_RTOL = 1e-5, 1e-3
SAVED_MODEL_DIR = "saved_model"
SAVED_MODEL_VERSION = "1"  # TF Serving's numbered version directory
TFLITE_FILE = "model.tflite"
ONNX_FILE = "model.onnx"
OPENCV_FILE = "opencv.pb"  # a frozen GraphDef rewritten for cv2.dnn.readNetFromTensorflow
EXPORT_CARD = "export.json"  # in an export directory: the signature, each format's file


def exported(out_dir: str | Path, fmt: str) -> Path:
    """Where format ``fmt`` is written under an export directory."""
    out_dir = Path(out_dir)
    return {
        "saved_model": out_dir / SAVED_MODEL_DIR / SAVED_MODEL_VERSION,
        "tflite": out_dir / TFLITE_FILE,
        "onnx": out_dir / ONNX_FILE,
        "opencv": out_dir / OPENCV_FILE,
    }[fmt]
