"""The Keras-fit variant of the pipeline (examples/keras-fit): its dvc.yaml run by DVC in a
copy of the repository, killed mid-training and resumed to the same bytes."""

from __future__ import annotations

import re
import shutil
import signal
import sys

import pytest
import yaml

from test_dvc_deps import closure, covered

from conftest import ROOT, TINY, copy_repo, deep_update, run, stage
from helpers import tree_digest

pytestmark = pytest.mark.slow
EXAMPLE = ROOT / "examples" / "keras-fit"


def example_stages() -> dict:
    return yaml.safe_load((EXAMPLE / "dvc.yaml").read_text())["stages"]


def test_the_variant_shares_the_main_pipelines_stages_and_lists_what_it_runs(tmp_path):
    main = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stages = example_stages()
    assert set(stages) == set(main) - {"checkpoint"}
    for name in ("prepare", "export", "report"):
        assert stages[name] == main[name], name
    for name in ("freeze", "evaluate"):  # the main stage, reading the .keras
        swapped = yaml.safe_dump(main[name]).replace("models/checkpoint", "models/keras")
        assert yaml.safe_load(swapped)["deps"] == stages[name]["deps"], name
    script = ROOT / "stages" / "train_keras.py"
    shutil.copy(EXAMPLE / "train_keras.py", script)  # where a user puts it
    try:
        ran = closure(script)
    finally:
        script.unlink()
    deps = set(stages["train"]["deps"])
    assert sorted(p for p in ran if not covered(p, deps)) == []
    assert [d for d in deps if d.startswith("src/") and not any(covered(p, {d}) for p in ran)] == []


def test_the_keras_fit_variant_runs_under_dvc_and_resumes_to_the_same_bytes(tmp_path):
    params = deep_update(
        {k: dict(v) for k, v in TINY.items()}, {"export": {"formats": ["onnx", "opencv"]}}
    )
    repo = copy_repo(tmp_path / "repo", params)
    shutil.copy(EXAMPLE / "train_keras.py", repo / "stages")
    shutil.copy(EXAMPLE / "dvc.yaml", repo / "dvc.yaml")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "keras fit"], repo)
    dvc = f"{sys.prefix}/bin/dvc"
    done = run([dvc, "repro"], repo)
    out = done.stdout
    assert "train: 3 epochs with Keras fit" in out
    # quiet: no TensorFlow C++ log line (Keras's tf.data adapter logged an E0000 one)
    assert not re.search(r"^[EWI]\d{4} ", done.stdout + done.stderr, re.M), done.stderr
    assert "export: opencv: left out: OpenCV's TensorFlow importer cannot run" in out
    metrics = yaml.safe_load((repo / "metrics/evaluate.json").read_text())
    details = yaml.safe_load((repo / "metrics/details.json").read_text())
    # evaluate ran the frozen .pb and Keras's own predict of the .keras on the test split
    assert metrics["accuracy"] > 0.5 and details["checkpoint_max_abs_diff"] < 1e-5
    assert set(details["export"]) == {"onnx"}
    card = yaml.safe_load((repo / "models/frozen/model.json").read_text())
    assert [i["name"] for i in card["signature"]["inputs"]] == ["input_holder"]
    assert [o["name"] for o in card["signature"]["outputs"]] == ["predictions", "probabilities"]
    assert len(card["signature"]["features"]) == 64
    steps = [
        int(row.split("\t")[0])
        for row in (repo / "models/train/live/plots/metrics/val/accuracy.tsv")
        .read_text()
        .splitlines()[1:]
    ]
    assert steps == [20, 40, 60]
    done = {**tree_digest(repo / "models/train"), **tree_digest(repo / "models/keras")}

    # killed at the end of epoch 2: its best weights noted, the epoch not yet backed up
    shutil.rmtree(repo / "models/train")
    shutil.rmtree(repo / "models/keras")
    args = ("train_keras", "data/prepared", "models/train", "models/keras")
    killed = stage(repo, *args, check=False, TFPERSIST_KILL_AT="epoch-end:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = stage(repo, *args)
    assert "resuming from epoch 1 of 3" in resumed.stderr
    assert {**tree_digest(repo / "models/train"), **tree_digest(repo / "models/keras")} == done
    assert "up to date" in run([dvc, "status"], repo).stdout.lower()
