"""Training on hosts that share only a network (tests/hosts.py: one network namespace per
host, its own copy of the repository): the chief alone holds ``models/train``; the others
receive its state over TensorFlow's collective runtime. Tiny params; ``make hosts`` runs the
same with the repository's params against dvc.lock."""

from __future__ import annotations

import shutil

import pytest

import hosts
from pipeline.test_pipeline import release

from conftest import TINY, copy_repo, deep_update, env, stage
from helpers import tree_digest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def network():
    why = hosts.unavailable()
    if why:
        pytest.skip(f"hosts: {why}")
    with hosts.Hosts(4) as made:
        yield made


def test_hosts_sharing_only_a_network_train_resume_and_stop_together(network, tmp_path):
    import copy

    params = deep_update(copy.deepcopy(TINY), {"train": {"collective_timeout": 20}})
    reference = copy_repo(tmp_path / "one", params)
    stage(reference, "prepare", "data/raw/digits.csv", "data/prepared")
    stage(reference, "train", "data/prepared", "models/train")
    one_process = release(reference)
    dirs = hosts.machines(tmp_path, 4, params)
    e = env()

    # two hosts from nothing: the one-process bytes; the non-chief says what it did
    fresh = hosts.train(network, dirs[:2], e, timeout=240)
    assert fresh.codes == [0, 0], fresh.err
    said = "train: worker 1 of 2 computed its part of steps 1–60, starting from the chief's state"
    assert fresh.last(1).startswith(f"{said} (10.231.0.1:2222)"), fresh.last(1)
    assert not (dirs[1] / "models/train").exists()  # nothing written on the non-chief
    finished = dirs[0] / "models/train"
    assert release(dirs[0]) == one_process

    # worker 1 killed at step 25: every host stops, within the bound, saying why
    shutil.move(finished, tmp_path / "finished")
    shutil.rmtree(dirs[0] / "models/checkpoint")
    killed = hosts.train(network, dirs[:2], e, timeout=120, TFPERSIST_KILL_AT="step:25@1")
    assert killed.codes == [1, -9] and killed.seconds < 60, (killed.codes, killed.err)
    assert "worker 0: lost the other workers at step" in killed.last(0)

    # resume on four hosts; only the chief holds models/train, host 2 a foreign finished one
    # (its own step 60 would disagree): ignored, the chief's step 20 state reaches everyone
    shutil.copytree(tmp_path / "finished", dirs[2] / "models/train")
    foreign = tree_digest(dirs[2] / "models/train")
    resumed = hosts.train(network, dirs, e, timeout=240)
    assert resumed.codes == [0] * 4, resumed.err
    assert "resuming from model.ckpt-20 (step 20 of 60)" in resumed.err[0]
    assert "computed its part of steps 21–60" in resumed.last(3)
    assert release(dirs[0]) == one_process
    assert tree_digest(dirs[2] / "models/train") == foreign  # read by no one, untouched
