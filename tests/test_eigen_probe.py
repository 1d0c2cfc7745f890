"""Eigen itself, outside TensorFlow (tests/eigen/probe.cc, Debian's libeigen3-dev built with
g++ -O2 -mavx2 -mfma): ``Eigen::setCpuCacheSizes`` with the L1D of real CPUs (32 KiB: AMD Zen
2–4, Intel Skylake; 48 KiB: Intel Ice Lake+, AMD Zen 5; 64 KiB) changes the float sum of one
product past K = 256 (the reason for pipeline/portable.py), and not that of the same product
cut into K-blocks of at most 256 added in order (what portable.py builds), nor of a K of 256.
CI installs the headers (make test, CI=true); elsewhere the test is skipped without them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tfpersist.graph.contractions import BOUND

SOURCE = Path(__file__).parent / "eigen" / "probe.cc"
HEADERS = Path("/usr/include/eigen3")
L1D = (32 * 1024, 48 * 1024, 64 * 1024)


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    if shutil.which("g++") is None or not HEADERS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs g++ and libeigen3-dev (make test): they are missing")
        pytest.skip("needs g++ and Eigen's headers (apt-get install g++ libeigen3-dev)")
    out = tmp_path_factory.mktemp("eigen") / "probe"
    cmd = ["g++", "-O2", "-mavx2", "-mfma", "-w", f"-I{HEADERS}", "-o", str(out), str(SOURCE)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return out


def _hashes(probe: Path, k: int, cut: int) -> set[str]:
    """The product's (and the tensor contraction's) hash under each L1D size."""
    found = set()
    for l1 in L1D:
        args = [str(probe), str(l1), str(1024 * 1024), str(32 * 1024 * 1024), str(k), str(cut)]
        matrix, tensor = subprocess.run(
            args, check=True, capture_output=True, text=True, timeout=60
        ).stdout.split()
        assert matrix == tensor  # Matrix * and TensorMap::contract block alike
        found.add(matrix)
    return found


@pytest.mark.parametrize("k", [784, 1024, 2048])
def test_one_product_past_the_bound_sums_by_the_l1d_and_the_cut_one_does_not(probe, k):
    assert len(_hashes(probe, k, 0)) > 1  # the CPU's cache decides the bits
    assert len(_hashes(probe, k, BOUND)) == 1  # the cut decides them


def test_a_product_within_the_bound_is_one_block_on_every_l1d(probe):
    assert len(_hashes(probe, BOUND, 0)) == 1
