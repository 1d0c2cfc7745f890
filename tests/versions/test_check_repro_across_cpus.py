"""check-repro across CPUs: a lock built under another instruction set is measured, and
--tolerance tells float noise from a change. A module of its own: the two full rebuilds run
beside the other check-repro test under pytest-xdist."""

from __future__ import annotations

import sys

import pytest

from conftest import run

pytestmark = pytest.mark.slow


def commit(repo, message):
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


def test_check_repro_tolerance_tells_float_noise_from_change_on_another_cpu(repo):
    """The lock built on a CPU topping out at AVX (simulated with ONEDNN_MAX_CPU_ISA=AVX under
    the 'native' pin), checked on this machine's best instruction set: the bits differ, the
    distance is measured, and --tolerance decides."""
    import json
    import os
    import subprocess

    import yaml

    from conftest import env

    params = repo / "params.yaml"
    params.write_text(
        yaml.safe_dump({**yaml.safe_load(params.read_text()), "runtime": {"cpu_isa": "native"}})
    )
    other_cpu = {**env(), "ONEDNN_MAX_CPU_ISA": "AVX"}
    other_cpu.pop("TF_ENABLE_ONEDNN_OPTS", None)
    dvc_bin = f"{sys.prefix}/bin/dvc"
    subprocess.run([dvc_bin, "repro", "-q"], cwd=repo, env=other_cpu, check=True)
    commit(repo, "built on an AVX machine")
    this_cpu = {k: v for k, v in env().items() if not k.startswith(("ONEDNN", "TF_ENABLE"))}

    def check(*args):
        cmd = [f"{sys.prefix}/bin/tfpersist", "check-repro", *args]
        return subprocess.run(cmd, cwd=repo, env=this_cpu, capture_output=True, text=True)

    loose = check("--tolerance", "0.05", "--report", str(repo / "report.json"))
    assert loose.returncode == 0, loose.stdout + loose.stderr
    assert "equivalent: within 0.05" in loose.stdout and "OK:" in loose.stdout
    report = json.loads((repo / "report.json").read_text())
    assert report["ok"] and report["tolerance"] == 0.05
    assert report["environment"]["cpu"] and "ONEDNN_MAX_CPU_ISA" in report["environment"]
    distances = [s["distance"] for s in report["stages"] if s["status"] == "equivalent"]
    # The model page names the rebuilt model's sha256 (a digest, not a distance): it can be
    # equivalent at distance 0 when its 6-digit statistics agree.
    assert distances and all(0 <= d <= 0.05 for d in distances) and max(distances) > 0
    assert not os.path.exists(repo / "dvc.lock.tmp")

    tight = check("--tolerance", "1e-12")  # as strict as none: the bits differ
    assert tight.returncode == 1 and "FAILED" in tight.stdout, tight.stdout + tight.stderr
    train = next(line for line in tight.stdout.splitlines() if line.startswith("  train"))
    assert "differs" in train and "max abs weight difference" in train, tight.stdout
    assert tight.stdout.startswith("check-repro: rebuilding HEAD")
