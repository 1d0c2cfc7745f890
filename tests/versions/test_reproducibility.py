"""`tfpersist check-repro` (make check-repro) on a clean repo, a changed weight, a stale lock."""

from __future__ import annotations

import sys

import pytest
import yaml

from tfpersist.versions.reproducibility import compare_locks

from conftest import run

pytestmark = pytest.mark.slow


def lock(**stages):
    return {
        "stages": {
            name: {
                "cmd": f"run {name}",
                "deps": [{"path": p, "md5": h} for p, h in spec.get("deps", {}).items()],
                "outs": [{"path": p, "md5": h} for p, h in spec.get("outs", {}).items()],
            }
            for name, spec in stages.items()
        }
    }


def test_compare_locks_tells_same_differs_and_stale():
    committed = lock(
        a={"deps": {"a.py": "1"}, "outs": {"out/a": "x"}},
        b={"deps": {"b.py": "2", "out/a": "x"}, "outs": {"b.pb": "y"}},
        c={"deps": {"c.py": "3"}, "outs": {"c.json": "z"}},
    )
    rebuilt = lock(
        a={"deps": {"a.py": "1"}, "outs": {"out/a": "X"}},
        b={"deps": {"b.py": "2", "out/a": "X"}, "outs": {"b.pb": "y"}},
        c={"deps": {"c.py": "33"}, "outs": {"c.json": "z"}},
    )
    checks = {c.stage: c for c in compare_locks(committed, rebuilt)}
    assert checks["a"].status == "differs" and checks["a"].outputs == ["out/a"]
    assert checks["b"].status == "same"  # its input changed upstream, its output did not
    assert checks["c"].status == "stale" and "c.py" in checks["c"].detail


def tfpersist(repo, *args, check=False):
    return run([f"{sys.prefix}/bin/tfpersist", *args], repo, check=check)


def dvc(repo, *args):
    return run([f"{sys.prefix}/bin/dvc", *args], repo)


def commit(repo, message):
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


def test_check_repro_passes_then_catches_a_changed_weight_and_a_stale_lock(repo, tf):
    dvc(repo, "repro")
    commit(repo, "pipeline")
    ok = tfpersist(repo, "check-repro")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    stages = len(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    assert stages == 7  # prepare, train, checkpoint, freeze, export, evaluate, report
    assert ok.stdout.count(" same") == stages and f"OK: all {stages} stages" in ok.stdout

    # Inject a changed weight into the committed release checkpoint (as a non-deterministic
    # export would), keep everything downstream consistent with it, and commit.
    v1 = tf.compat.v1
    prefix = str(repo / "models/checkpoint/model.ckpt")
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.train.import_meta_graph(f"{prefix}.meta").restore(sess, prefix)
        bias = next(v for v in v1.global_variables() if v.op.name == "model/logits/bias")
        sess.run(bias.assign_add(tf.fill(bias.shape, 0.001)))
        v1.train.Saver(save_relative_paths=True).save(sess, prefix, write_meta_graph=False)
    dvc(repo, "commit", "-f", "checkpoint")
    dvc(repo, "repro")
    # And code changed without dvc.lock regenerated: that stage's lock entry is stale. (One
    # rebuild checks both: each stage is judged on its own.)
    stage = repo / "stages/evaluate.py"
    stage.write_text(stage.read_text() + "\n# changed\n")
    commit(repo, "perturbed, and a stale lock")
    bad = tfpersist(repo, "check-repro")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = {line.split()[0]: line for line in bad.stdout.splitlines() if line.startswith("  ")}
    assert lines["train"].split()[1] == "same"
    assert "checkpoint  differs: models/checkpoint" in lines["checkpoint"]
    assert "max abs weight difference 0.001 (model/logits/bias)" in lines["checkpoint"]
    assert "max abs output difference" in lines["freeze"]
    assert "FAILED" in bad.stdout
    assert "evaluate    stale: dvc.lock is stale: stages/evaluate.py changed" in bad.stdout
