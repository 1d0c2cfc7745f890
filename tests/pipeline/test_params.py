from __future__ import annotations

import copy

import pytest
import yaml

from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline.params import (
    CheckpointParams,
    ExportParams,
    ModelParams,
    PrepareParams,
    TrainParams,
)

from conftest import ROOT

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(path: str, value, params=PARAMS) -> dict:
    changed = copy.deepcopy(params)
    *parents, key = path.split(".")
    node = changed
    for name in parents:
        node = node[name]
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return changed


def test_repository_params_are_valid():
    assert PrepareParams.from_params(PARAMS).label == "label"
    model = ModelParams.from_params(PARAMS)
    assert model.output_nodes == ["predictions", "probabilities"]
    assert model.config == PARAMS["model"][model.arch]
    assert TrainParams.from_params(PARAMS).batch_size > 0
    assert CheckpointParams.from_params(PARAMS).select in ("best", "latest")
    assert ExportParams.from_params(PARAMS).formats == ("saved_model", "tflite", "onnx", "opencv")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("train.batch_size", -8, r"'train.batch_size' must be a positive integer, got int -8"),
        ("train.batch_size", "32", r"'train.batch_size' must be a positive integer, got str '32'"),
        ("train.learning_rate", "fast", r"'train.learning_rate' must be a positive number"),
        ("train.epochs", True, r"'train.epochs' must be a positive integer"),
        ("train.optimizer", "rmsprop", r"'train.optimizer' must be one of adam, sgd, momentum"),
        ("train.seed", ..., r"'train.seed' is missing"),
        ("prepare.val_fraction", 1.5, r"'prepare.val_fraction' must be a number in \(0, 1\)"),
        ("prepare.test_fraction", 0.9, r"val_fraction \+ prepare.test_fraction must be below 1"),
        ("checkpoint.select", "first", r"'checkpoint.select' must be 'best'"),
        ("model.output_nodes", ..., r"'model.output_nodes' is missing"),
        ("model.output_nodes.probabilities", ..., r"'model.output_nodes.probabilities' is missing"),
        ("model.output_nodes.predictions", "", r"must be a graph node name"),
        ("model.input_node", "input:0", r"'model.input_node' must be a graph node name"),
        ("model.input_node", "predictions", r"three different names"),
        ("export.formats", ["onnx", "coreml"], r"'export.formats' must be a list of saved_model"),
        ("export.formats", "onnx", r"'export.formats' must be a list of .* got str 'onnx'"),
        ("export.formats", ["onnx", "onnx"], r"'export.formats' lists a format twice"),
        ("export.tflite_quantize", "int8", r"'export.tflite_quantize' must be none or dynamic"),
        # YAML 1.1 reads 1e-5 (no dot) as a string: say what to write instead
        ("export.tolerance", "1e-5", r"'export.tolerance' must be a positive number .*1.0e-5"),
    ],
)
def test_bad_values_give_one_line_errors(path, value, message):
    params = with_change(path, value)
    section = path.split(".")[0]
    parse = {
        "train": TrainParams,
        "prepare": PrepareParams,
        "checkpoint": CheckpointParams,
        "model": ModelParams,
        "export": ExportParams,
    }[section].from_params
    with pytest.raises(TfpersistError, match=message) as err:
        parse(params)
    assert "\n" not in str(err.value)


def test_missing_section():
    params = {k: v for k, v in PARAMS.items() if k != "train"}
    with pytest.raises(TfpersistError, match=r"section 'train' is missing"):
        TrainParams.from_params(params)


def test_section_of_wrong_type():
    with pytest.raises(TfpersistError, match=r"'model' must be a mapping, got str"):
        ModelParams.from_params({**PARAMS, "model": "mlp"})
