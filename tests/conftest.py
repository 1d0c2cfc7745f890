"""Shared fixtures: real TensorFlow, real DVC, real files in temp dirs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# What tfpersist keeps on disk (capi's op registry) goes to a temp dir, not ~/.cache.
os.environ.setdefault("TFPERSIST_CACHE", tempfile.mkdtemp(prefix="tfpersist-cache-"))

# Floats computed in this process match the pipeline's only under the same CPU pin
# (params.yaml runtime.cpu_isa): set it before anything imports TensorFlow.
from tfpersist.numerics import runtime  # noqa: E402
from tfpersist.pipeline.params import RuntimeParams  # noqa: E402

runtime.pin(RuntimeParams.from_params(yaml.safe_load((ROOT / "params.yaml").read_text())).cpu_isa)
BIN = Path(sys.executable).parent

# Tiny params: the whole pipeline in a few seconds per stage.
TINY = {
    "model": {"mlp": {"hidden": [16], "dropout": 0.1}, "cnn": {"filters": [4], "dense": 8}},
    "train": {
        "epochs": 3,
        "batch_size": 64,
        "learning_rate": 0.01,
        "checkpoint_every": 10,
        "max_to_keep": 2,
    },
    # No format shipped: the export stage then loads no TensorFlow (test time); the tests
    # that ship (test_pipeline, test_shipping) name the formats.
    "export": {"formats": []},
}


def env() -> dict:
    """The environment for subprocesses: this venv first on PATH (stages call `python`)."""
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.pop("TFPERSIST_KILL_AT", None)
    e.pop("TFPERSIST_DEBUG", None)
    e["DVC_NO_ANALYTICS"] = "1"
    e["GIT_AUTHOR_NAME"] = e["GIT_COMMITTER_NAME"] = "tfpersist tests"
    e["GIT_AUTHOR_EMAIL"] = e["GIT_COMMITTER_EMAIL"] = "tests@tfpersist.invalid"
    return e


def run(cmd: list[str], cwd: Path, check: bool = True, **extra_env) -> subprocess.CompletedProcess:
    e = env()
    e.update(extra_env)
    result = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def deep_update(base: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def copy_repo(dest: Path, params: dict | None = None) -> Path:
    """The repository's tracked files (no DVC cache, no outputs) in a fresh git repo."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith("metrics/") and name != "dvc.lock":
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    if params:
        path = dest / "params.yaml"
        path.write_text(yaml.safe_dump(deep_update(yaml.safe_load(path.read_text()), params)))
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh copy of the repository with tiny params."""
    return copy_repo(tmp_path / "repo", TINY)


def stage(repo: Path, name: str, *args: str, check: bool = True, **extra_env):
    return run([sys.executable, f"stages/{name}.py", *args], repo, check=check, **extra_env)


@pytest.fixture(scope="session")
def tf():
    from tfpersist.tfapi.tfcompat import import_tf

    return import_tf()


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    df = pd.read_csv(ROOT / "data" / "raw" / "digits.csv")
    return df.drop(columns="label").to_numpy(np.float32), df["label"].to_numpy(np.int64)


# The modules that run the DVC pipeline, longest first (--durations on 2 cores: test_pipeline
# ~280 s, the README session ~220 s, compare ~130 s, …). `make test` passes
# --no-loadscope-reorder, so pytest-xdist hands modules to its workers in this order (its
# default puts the modules with the most tests first, which left the README session — four
# tests — starting last and one worker finishing it alone).
LONGEST_FIRST = [
    "tests/pipeline/test_pipeline.py",
    "tests/test_readme.py",
    "tests/versions/test_compare.py",
    "tests/versions/test_reproducibility.py",
    "tests/versions/test_check_repro_across_cpus.py",
    "tests/cli/test_catalogue.py",
    "tests/pipeline/test_keras_fit.py",
    "tests/versions/test_releasing.py",
    "tests/versions/test_remote.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
