"""The real pipeline (dvc repro) in temp copies of the repository, with tiny params."""

from __future__ import annotations

import signal
import sys

import pytest

from conftest import TINY, copy_repo, run, stage
from helpers import tree_digest

pytestmark = pytest.mark.slow


def dvc(repo, *args, check=True):
    return run([f"{sys.prefix}/bin/dvc", *args], repo, check=check)


def in_process(repo, name: str, *args: str) -> None:
    """Run a stage script's main() in this process (TensorFlow already loaded, the same CPU
    pin as the stages): the stage's code without the 2–3 s of a fresh import."""
    import os
    import runpy

    stages = str(repo / "stages")
    cwd = os.getcwd()
    sys.path.insert(0, stages)
    try:
        os.chdir(repo)
        runpy.run_path(f"{stages}/{name}.py", run_name="stage")["main"](list(args))
    finally:
        os.chdir(cwd)
        sys.path.remove(stages)


def release(repo) -> dict[str, str]:
    """Train-dir, release-checkpoint and frozen-model digests after the downstream stages."""
    in_process(repo, "checkpoint", "models/train", "data/prepared", "models/checkpoint")
    in_process(
        repo, "freeze", "models/checkpoint", "models/frozen/model.pb", "models/frozen/model.json"
    )
    return {
        **{f"train/{k}": v for k, v in tree_digest(repo / "models/train").items()},
        **{f"checkpoint/{k}": v for k, v in tree_digest(repo / "models/checkpoint").items()},
        **{f"frozen/{k}": v for k, v in tree_digest(repo / "models/frozen").items()},
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("ref") / "repo", TINY)
    stage(repo, "prepare", "data/raw/digits.csv", "data/prepared")
    stage(repo, "train", "data/prepared", "models/train")
    return release(repo)


@pytest.mark.parametrize(
    "kill_at", ["step:25", "best-before-meta:30", "before-meta:30", "before-state:40", "saved:50"]
)
def test_training_killed_with_sigkill_resumes_exactly(repo, uninterrupted, kill_at):
    stage(repo, "prepare", "data/raw/digits.csv", "data/prepared")
    killed = stage(
        repo, "train", "data/prepared", "models/train", check=False, TFPERSIST_KILL_AT=kill_at
    )
    assert killed.returncode == -signal.SIGKILL
    step = int(kill_at.split(":")[1])
    resumed = stage(repo, "train", "data/prepared", "models/train")
    last_complete = step if kill_at.startswith("saved") else (step - 1) // 10 * 10
    assert (
        f"resuming from model.ckpt-{last_complete} (step {last_complete} of 60)" in resumed.stderr
    )
    steps = [
        int(line.split("\t")[0])
        for line in (repo / "models/train/live/plots/metrics/val/accuracy.tsv")
        .read_text()
        .splitlines()[1:]
    ]
    assert steps == list(range(10, 61, 10))
    assert release(repo) == uninterrupted  # same bytes: training, release checkpoint, .pb


def test_queued_experiments_in_parallel_equal_their_serial_runs(repo):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: the two runs share the machine
    (fixed thread pools, the CPU pin) and each ends with the bytes the serial run gives."""
    import time

    import yaml

    names = ("first", "second")  # the same params: both must equal one serial run
    for name in names:
        dvc(repo, "exp", "run", "--queue", "-f", "-n", name, "-S", "train.seed=7")
    dvc(repo, "queue", "start", "-j", "2")
    try:
        deadline = time.monotonic() + 400
        while True:
            status = dvc(repo, "queue", "status").stdout
            if not any(word in status for word in ("Running", "Queued")):
                break
            assert time.monotonic() < deadline, status
            time.sleep(2)
        assert status.count("Success") == len(names), status
    finally:
        dvc(repo, "queue", "stop", "--kill", check=False)

    def outs(lock_text: str) -> dict:
        stages = yaml.safe_load(lock_text)["stages"]
        return {
            out["path"]: out["md5"]
            for name in ("train", "checkpoint", "freeze")
            for out in stages[name]["outs"]
        }

    refs = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], repo).stdout.split()
    queued = {
        ref.rsplit("/", 1)[-1]: outs(run(["git", "show", f"{ref}:dvc.lock"], repo).stdout)
        for ref in refs
    }
    dvc(repo, "exp", "run", "-f", "-S", "train.seed=7")
    serial = outs((repo / "dvc.lock").read_text())
    assert queued["first"] == serial and queued["second"] == serial
