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
    (fixed thread pools, the CPU pin) and each ends with the bytes the serial run gives — the
    second trained by two worker processes (`-S train.workers=2`). Up to the freeze stage:
    the stages whose bytes are compared."""
    import time

    import yaml

    names = ("first", "second")  # the same params: both must equal one serial run
    for name, workers in zip(names, (1, 2), strict=True):
        dvc(
            repo,
            "exp",
            "run",
            "--queue",
            "-f",
            "-n",
            name,
            "-S",
            "train.seed=7",
            "-S",
            f"train.workers={workers}",
            "freeze",
        )
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
    dvc(repo, "exp", "run", "-f", "-S", "train.seed=7", "freeze")
    serial = outs((repo / "dvc.lock").read_text())
    assert queued["first"] == serial and queued["second"] == serial


# -- several workers ---------------------------------------------------------------------


def set_params(repo, **train) -> None:
    import yaml

    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["train"].update(train)
    path.write_text(yaml.safe_dump(params))


def test_workers_killed_resume_on_another_count_to_the_same_bytes(repo, uninterrupted):
    """Two workers, worker 1 SIGKILLed at step 25: the stage fails naming it, in bounded
    time; one worker resumes to the bytes of the one-process run. Then the reverse: one
    process killed at step 35, two workers resume (the chief writing .meta, best/, dvclive)."""
    import time

    stage(repo, "prepare", "data/raw/digits.csv", "data/prepared")
    set_params(repo, workers=2)
    started = time.monotonic()
    killed = stage(
        repo, "train", "data/prepared", "models/train", check=False, TFPERSIST_KILL_AT="step:25@1"
    )
    assert killed.returncode == 1 and time.monotonic() - started < 120
    assert "train: error: train: worker 1 was killed (SIGKILL); every worker was stopped" in (
        killed.stderr
    )
    set_params(repo, workers=1)
    resumed = stage(repo, "train", "data/prepared", "models/train")
    assert "resuming from model.ckpt-20 (step 20 of 60)" in resumed.stderr
    assert release(repo) == uninterrupted

    import shutil

    for out in ("models/train", "models/checkpoint"):
        shutil.rmtree(repo / out)
    killed = stage(
        repo, "train", "data/prepared", "models/train", check=False, TFPERSIST_KILL_AT="step:35"
    )
    assert killed.returncode == -signal.SIGKILL
    set_params(repo, workers=2)
    resumed = stage(repo, "train", "data/prepared", "models/train")
    assert "resuming from model.ckpt-30 (step 30 of 60)" in resumed.stderr
    assert release(repo) == uninterrupted


def _processes_marked(mark: str) -> list[int]:
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_stopped_worker_is_a_timeout_not_a_hang(repo):
    """SIGSTOP on worker 1: worker 0 times out at the collective (train.collective_timeout),
    the launcher stops the stopped one, the stage fails in one line; no process is left."""
    import time
    import uuid

    stage(repo, "prepare", "data/raw/digits.csv", "data/prepared")
    set_params(repo, workers=2, collective_timeout=3)
    mark = f"tfpersist-test-{uuid.uuid4().hex}"
    started = time.monotonic()
    stopped = stage(
        repo,
        "train",
        "data/prepared",
        "models/train",
        check=False,
        TFPERSIST_STOP_AT="step:5@1",
        TFPERSIST_TEST_MARK=mark,
    )
    assert stopped.returncode == 1 and time.monotonic() - started < 90
    line = stopped.stderr.strip().splitlines()[-1]
    assert line.startswith("train: error: train: worker 0: timed out after 3 s waiting for"), line
    assert "worker 1 was still running and was stopped" in line
    assert _processes_marked(mark) == []


def test_workers_with_other_params_refuse_each_other(tmp_path):
    """Two machines' worst case, from TF_CONFIG: the workers see other params (a learning
    rate) and refuse to train together before step 0 — each saying so, none hanging."""
    import json
    import subprocess
    import time

    from tfpersist.pipeline.workers import free_ports

    from conftest import env

    addresses = [f"127.0.0.1:{p}" for p in free_ports(2)]
    repos = []
    for task, rate in enumerate((0.01, 0.02)):
        repo = copy_repo(tmp_path / f"machine{task}", TINY)
        set_params(repo, learning_rate=rate, collective_timeout=20)
        stage(repo, "prepare", "data/raw/digits.csv", "data/prepared")
        repos.append(repo)
    processes = []
    for task, repo in enumerate(repos):
        e = env()
        e["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": task}}
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, "stages/train.py", "data/prepared", "models/train"],
                cwd=repo,
                env=e,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    started = time.monotonic()
    try:
        errors = [p.communicate(timeout=120)[1] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert time.monotonic() - started < 120
    for p, err in zip(processes, errors, strict=True):
        assert p.returncode == 1, err
        assert "the workers disagree before step 0" in err and "worker 1 has fingerprint" in err
    assert not list((repos[1] / "models/train").glob("model.ckpt-*"))  # worker 1 writes nothing
