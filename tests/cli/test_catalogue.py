"""The catalogue of bad input: each case ends in one clear line, a non-zero exit, no
traceback, and nothing lost (no artifact overwritten, deleted or left half-written)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import TINY, copy_repo, deep_update, env, stage
from helpers import tree_digest

pytestmark = pytest.mark.slow

PREPARE = ("prepare", "data/raw/digits.csv", "data/prepared")
TRAIN = ("train", "data/prepared", "models/train")
CHECKPOINT = ("checkpoint", "models/train", "data/prepared", "models/checkpoint")
FREEZE = ("freeze", "models/checkpoint", "models/frozen/model.pb", "models/frozen/model.json")
EXPORT = ("export", "models/frozen/model.pb", "data/prepared", "models/export")
EVALUATE = (
    "evaluate",
    "models/frozen/model.pb",
    "models/checkpoint",
    "models/export",
    "data/prepared",
    "metrics/evaluate.json",
    "metrics/details.json",
    "metrics/confusion.csv",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A repository copy with every stage's artifact in place (tiny params)."""
    repo = copy_repo(tmp_path_factory.mktemp("built") / "repo", TINY)
    for args in (PREPARE, TRAIN, CHECKPOINT, FREEZE, EXPORT, EVALUATE):
        stage(repo, *args)
    return repo


@pytest.fixture
def repo(built, tmp_path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def artifacts(repo: Path) -> dict[str, str]:
    return {
        f"{d}/{k}": v
        for d in ("data/prepared", "models", "metrics")
        for k, v in tree_digest(repo / d).items()
    }


def set_params(repo: Path, change: dict | None = None, drop: str | None = None) -> None:
    path = repo / "params.yaml"
    params = deep_update(yaml.safe_load(path.read_text()), change or {})
    if drop:
        del params[drop]
    path.write_text(yaml.safe_dump(params))


def fails(repo: Path, args, pattern: str, **extra_env) -> None:
    """Run a stage; assert one line `<stage>: error: …` matching, exit 1, nothing lost."""
    before = artifacts(repo)
    result = stage(repo, *args, check=False, **extra_env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[0].startswith(f"{args[0]}: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert artifacts(repo) == before, "an artifact was changed, deleted or left half-written"


def cli(repo: Path, *args: str, check_code: int = 1) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [f"{sys.prefix}/bin/tfpersist", *args], cwd=repo, env=env(), capture_output=True, text=True
    )
    assert result.returncode == check_code, result.stderr[-3000:]
    if check_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tfpersist: error: "), result.stderr
    return result


# -- params -------------------------------------------------------------------------------


def test_unknown_architecture(repo):
    set_params(repo, {"model": {"arch": "resnet"}})
    fails(
        repo, TRAIN, r"model.arch 'resnet' is not an architecture; choose one of cnn, linear, mlp"
    )


def test_output_node_that_does_not_exist(repo):
    set_params(repo, {"model": {"output_nodes": {"probabilities": "probs"}}})
    fails(repo, FREEZE, r"output node 'probs' is not in the graph \(closest: probabilities")


def test_export_beyond_its_tolerance_fails_and_ships_nothing(repo):
    """A format whose outputs are farther from the frozen model's than export.tolerance: one
    line naming it, and models/export as it was."""
    set_params(repo, {"export": {"formats": ["tflite"], "tolerance": 1.0e-12, "rtol": 0}})
    fails(repo, EXPORT, r"tflite differs from the frozen graph: probabilities .*allowed 1e-12 \+ 0")


def test_input_node_that_does_not_exist(repo):
    set_params(repo, {"model": {"input_node": "inputs"}})
    fails(repo, EVALUATE, r"node 'inputs' is not in the graph \(closest: input_holder")


def test_string_where_a_number_is_expected(repo):
    set_params(repo, {"train": {"learning_rate": "fast"}})
    fails(repo, TRAIN, r"'train.learning_rate' must be a positive number, got str 'fast'")


def test_negative_batch_size(repo):
    set_params(repo, {"train": {"batch_size": -32}})
    fails(repo, TRAIN, r"'train.batch_size' must be a positive integer, got int -32")


def test_missing_section(repo):
    set_params(repo, drop="checkpoint")
    fails(repo, CHECKPOINT, r"params.yaml: section 'checkpoint' is missing")


def test_malformed_yaml(repo):
    (repo / "params.yaml").write_text("prepare:\n  label: [unclosed\n")
    fails(repo, PREPARE, r"params.yaml: malformed YAML at line 3")


# -- data ---------------------------------------------------------------------------------


def edit_raw(repo: Path, edit) -> None:
    raw = repo / "data/raw/digits.csv"
    lines = raw.read_text().splitlines()
    raw.write_text("\n".join(edit(lines)) + "\n")


def test_missing_csv(repo):
    (repo / "data/raw/digits.csv").unlink()
    fails(repo, PREPARE, r"data/raw/digits.csv: no such CSV file")


def test_label_column_absent(repo):
    edit_raw(repo, lambda lines: [lines[0].replace(",label", ",digit"), *lines[1:]])
    fails(repo, PREPARE, r"label column 'label' not found .* set prepare.label")


def test_nan_in_data(repo):
    def blank_second_pixel(lines):
        fields = lines[5].split(",")
        fields[1] = "nan"
        return [*lines[:5], ",".join(fields), *lines[6:]]

    edit_raw(repo, blank_second_pixel)
    fails(
        repo,
        PREPARE,
        r"column 'pixel_0_1' has 1 missing or infinite value\(s\) \(first on line 6\)",
    )


def test_non_numeric_values(repo):
    edit_raw(repo, lambda lines: [*lines[:3], "x" + lines[3][1:], *lines[4:]])
    fails(repo, PREPARE, r"column 'pixel_0_0' is not numeric \(line 4: 'x'\)")


def test_empty_file(repo):
    (repo / "data/raw/digits.csv").write_text("")
    fails(repo, PREPARE, r"the file is empty; expected a header row and data rows")


def test_label_outside_the_trained_classes_at_evaluate(repo):
    test = repo / "data/prepared/test.npy"
    rows = np.load(test)
    rows["y"][1] = 12
    np.save(test, rows)
    fails(repo, EVALUATE, r"test.npy: label 12 is outside the 10 classes \(0..9\)")


def test_feature_count_that_does_not_match_the_model(repo, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 10), np.float32))
    result = cli(repo, "predict", "models/frozen/model.pb", "--input", str(tmp_path / "x.npy"))
    assert "input 'input_holder' takes 64 features per row, the data has 10" in result.stderr


# -- checkpoints and models ---------------------------------------------------------------


def test_state_file_pointing_at_missing_files(repo):
    best = repo / "models/train/best"
    for f in best.glob("model.ckpt-*"):
        f.unlink()
    fails(
        repo,
        CHECKPOINT,
        r"models/train/best/checkpoint: points at model.ckpt-\d+, which is incomplete",
    )


def test_missing_meta(repo):
    (repo / "models/checkpoint/model.ckpt.meta").unlink()
    fails(repo, FREEZE, r"points at model.ckpt, which is incomplete \(missing model.ckpt.meta\)")


def test_truncated_data(repo):
    data = repo / "models/checkpoint/model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    fails(
        repo,
        FREEZE,
        r"models/checkpoint/model.ckpt: cannot restore the checkpoint .* truncated, corrupted",
    )


def test_garbage_index(repo):
    (repo / "models/checkpoint/model.ckpt.index").write_bytes(os.urandom(300))
    fails(repo, FREEZE, r"cannot restore the checkpoint")


def test_truncated_pb(repo):
    pb = repo / "models/frozen/model.pb"
    pb.write_bytes(pb.read_bytes()[:5000])
    fails(repo, EVALUATE, r"models/frozen/model.pb: (not a GraphDef|the graph does not import)")


def test_random_bytes_pb(repo, tmp_path):
    (tmp_path / "random.pb").write_bytes(os.urandom(4096))
    result = cli(repo, "inspect", str(tmp_path / "random.pb"))
    assert re.search(r"random.pb: (not a GraphDef|holds no graph nodes)", result.stderr)


def test_pb_whose_input_shape_differs_from_the_data(repo, tf):
    from tfpersist.freezing import freeze

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 10], name="input_holder")
        logits = tf.matmul(x, tf.ones([10, 10]))
        tf.argmax(logits, 1, name="predictions")
        tf.nn.softmax(logits, name="probabilities")
    freeze.write(
        graph.as_graph_def(), repo / "models/frozen/model.pb", ["predictions", "probabilities"]
    )
    fails(repo, EVALUATE, r"input 'input_holder' takes 10 features per row, the data has 64")


def test_saved_model_without_a_serving_signature(repo, tf, tmp_path):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "nosig"))
    result = cli(repo, "freeze", str(tmp_path / "nosig"), "--out", str(tmp_path / "m.pb"))
    assert "no 'serving_default' signature (signatures: none)" in result.stderr
    assert not (tmp_path / "m.pb").exists()


# -- interruptions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "artifact"),
    [(FREEZE, "models/frozen/model.json"), (EVALUATE, "metrics/evaluate.json")],
)
def test_killed_mid_write_leaves_the_previous_artifact(repo, args, artifact):
    before = (repo / artifact).read_bytes()
    # Change what the stage will write, so that a half-done write would show.
    if args is FREEZE:
        (repo / "models/checkpoint/signature.json").write_text(
            (repo / "models/checkpoint/signature.json")
            .read_text()
            .replace('"label": "label"', '"label": "target"')
        )
    else:
        test = repo / "data/prepared/test.npy"
        np.save(test, np.load(test)[:-20])
    result = stage(repo, *args, check=False, TFPERSIST_KILL_AT=f"rename-{Path(artifact).name}:0")
    assert result.returncode == -signal.SIGKILL
    assert (repo / artifact).read_bytes() == before
    stage(repo, *args)  # the next run completes and clears the temp file
    assert (repo / artifact).read_bytes() != before
    assert not list((repo / artifact).parent.glob(".*.tmp"))


# -- untrusted models ---------------------------------------------------------------------


def test_graphs_that_write_files_are_refused(repo, tf, tmp_path):
    from tfpersist.freezing import freeze

    target = tmp_path / "written-by-the-model"
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 64], name="input_holder")
        write = tf.io.write_file(str(target), tf.strings.as_string(tf.reduce_sum(x)))
        with tf.control_dependencies([write]):
            logits = tf.matmul(x, tf.ones([64, 10]))
        tf.argmax(logits, 1, name="predictions")
        tf.nn.softmax(logits, name="probabilities")
    evil = tmp_path / "evil.pb"
    freeze.write(graph.as_graph_def(), evil, ["predictions", "probabilities"])
    np.save(tmp_path / "x.npy", np.ones((2, 64), np.float32))

    result = cli(repo, "predict", str(evil), "--input", str(tmp_path / "x.npy"))
    assert (
        "refusing to run a graph with ops outside the inference allowlist: WriteFile (writes files)"
        in result.stderr
    )
    result = cli(repo, "compare", str(evil), "models/frozen/model.pb")
    assert "refusing to run" in result.stderr
    shutil.copy(evil, repo / "models/frozen/model.pb")
    fails(repo, EVALUATE, r"refusing to run a graph with ops outside .*WriteFile \(writes files\)")
    assert not target.exists()
    inspected = cli(repo, "inspect", str(evil), check_code=0).stdout
    assert "WARNING: ops outside the inference allowlist (refused unless allowed): WriteFile" in (
        inspected
    )
    # The test graph really does write: allowed explicitly, the file appears.
    cli(
        repo,
        "predict",
        str(evil),
        "--input",
        str(tmp_path / "x.npy"),
        "--allow-unsafe-ops",
        check_code=0,
    )
    assert target.exists()


def test_debug_shows_the_traceback(repo):
    set_params(repo, {"model": {"arch": "resnet"}})
    result = stage(repo, *TRAIN, check=False, TFPERSIST_DEBUG="1")
    assert (
        result.returncode == 1
        and "Traceback" in result.stderr
        and "TfpersistError" in result.stderr
    )
