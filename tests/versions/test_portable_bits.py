"""The claim that bits do not follow the CPU's caches, checked on whatever CPU runs the tests:
the wide probe (pipeline/probe.py: contractions up to K = 1024, cut to 256) trained by
``tfpersist check-repro --probe`` — this CPU as it is, and (another process) Eigen inside
TensorFlow told the L1D of real CPUs in turn (32 KiB: AMD Zen 2–4, Intel Skylake; 48 KiB:
Intel Ice Lake+, AMD Zen 5; 64 KiB) — gives the bytes bench/ledger.csv commits. Each simulated
run also hashes two uncut matmuls (K = 784, 1024): they differ between the three sizes, so
each simulation took hold and the equal probe bytes are the cut's doing."""

from __future__ import annotations

import re
import subprocess

import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.versions import ledger

from conftest import BIN, ROOT, env


def _probe(*args: str) -> subprocess.Popen:
    cmd = [str(BIN / "tfpersist"), "check-repro", "--probe", "--repo", str(ROOT), *args]
    return subprocess.Popen(
        cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _hashes(out: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(\w+_sha256)\s+\w+: (\w+)", out, re.M))


@pytest.mark.slow
def test_the_wide_probe_gives_the_ledgers_bytes_on_this_cpu_and_under_other_cpus_caches():
    runs = {"this cpu": _probe(), "simulated": _probe("--l1d", "32,48,64")}
    outs = {name: p.communicate(timeout=300)[0] for name, p in runs.items()}
    for name, out in outs.items():
        assert runs[name].returncode == 0, out  # every hash the ledger's
    assert "OK: the probe's bytes are the ledger's (4 hashes)" in outs["this cpu"]
    assert "OK: the probe's bytes are the ledger's (12 hashes)" in outs["simulated"]
    for size in (32, 48, 64):
        assert f"  L1D {size} KiB:" in outs["simulated"]
    controls = re.findall(r"control \(uncut K = 784, 1024 matmuls\): (\w+)", outs["simulated"])
    assert len(set(controls)) == 3, controls  # each simulation took hold: uncut sums differ
    committed = ledger.agreed(ledger.read(ROOT / ledger.PATH))
    assert set(committed) == set(ledger.PROBE)
    for column, value in _hashes(outs["this cpu"]).items():
        assert committed[column].startswith(value)


def test_the_ledger_holds_rows_from_cpus_with_other_l1d_sizes_that_agree():
    rows = ledger.read(ROOT / ledger.PATH)
    real = [r for r in rows if not r["simulated_l1d_kib"]]
    assert real and all(r["cpu"] and r["date"] and r["l1d_kib"] for r in real)
    sizes = {r["simulated_l1d_kib"] or r["l1d_kib"] for r in rows}
    assert {"32", "48"} <= sizes
    agreed = ledger.agreed(rows, ledger.PROBE + ledger.WIDE)
    assert set(agreed) == set(ledger.PROBE + ledger.WIDE)


def test_a_rerun_on_the_same_machine_adds_no_row(tmp_path):
    path = tmp_path / "ledger.csv"
    row = {"cpu": "Zen 4", "l1d_kib": 32, "date": "2026-12-06", "mlp_train_sha256": "a" * 64}
    assert ledger.append(row, path) and not ledger.append({**row, "date": "2026-12-07"}, path)
    assert ledger.append({**row, "simulated_l1d_kib": 48}, path)  # another CPU's caches: a row
    assert len(ledger.read(path)) == 2
    committed = ledger.read(ROOT / ledger.PATH)
    keys = [tuple(v for k, v in r.items() if k != "date") for r in committed]
    assert len(keys) == len(set(keys)), "bench/ledger.csv repeats a machine's row"


def test_rows_that_disagree_are_named(tmp_path):
    path = tmp_path / "ledger.csv"
    for cpu, l1d, digest in (("Zen 4", 32, "a" * 64), ("Sapphire Rapids", 48, "b" * 64)):
        ledger.append(
            {"cpu": cpu, "l1d_kib": l1d, "date": "2026-12-06", "mlp_train_sha256": digest}, path
        )
    with pytest.raises(TfpersistError) as e:
        ledger.agreed(ledger.read(path))
    assert "mlp_train_sha256" in str(e.value) and "Zen 4 (L1D 32 KiB" in str(e.value)
    assert "Sapphire Rapids (L1D 48 KiB" in str(e.value)


def test_l1d_goes_with_probe_only_and_takes_sizes_in_kib(capsys):
    from tfpersist.cli import main

    assert main(["check-repro", "--l1d", "48"]) != 0
    assert "--l1d goes with --probe" in capsys.readouterr().err
    for bad in ("48k", "0", "32,,48", "99999"):
        assert main(["check-repro", "--probe", "--l1d", bad]) != 0
        err = capsys.readouterr().err
        assert "give L1 data cache sizes in KiB" in err and "Traceback" not in err
