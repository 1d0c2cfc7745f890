"""Rebuilding a revision: a clean clone, ``dvc repro --force`` in it, and its dvc.lock compared
stage by stage with the committed one (StageCheck). check-repro (reproducibility.py) and
``PATH@REV --rebuild`` (versions) both rebuild through here. No TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError


@dataclass
class StageCheck:
    stage: str
    status: str  # same | equivalent | differs | stale | missing
    detail: str = ""
    outputs: list[str] = field(default_factory=list)  # outputs whose hash differs
    distance: float | None = None  # max abs difference over ``outputs``, where measured
    note: str = ""  # what else a reader should know (contractions past the portable bound)

    @property
    def ok(self) -> bool:
        return self.status in ("same", "equivalent")


def _hashes(entries: list[dict] | None) -> dict[str, str]:
    return {e["path"]: e.get("md5") or e.get("hash", "") for e in entries or []}


def compare_locks(committed: dict, rebuilt: dict) -> list[StageCheck]:
    """One StageCheck per stage of ``committed`` (a parsed dvc.lock) against ``rebuilt``."""
    checks = []
    old_stages, new_stages = committed.get("stages", {}), rebuilt.get("stages", {})
    # A dependency that another stage produces differs only if that stage's output does;
    # that stage reports it. Only sources (code, data, params) make a lock stale.
    produced = {p for stage in new_stages.values() for p in _hashes(stage.get("outs"))}
    for name in list(old_stages) + [n for n in new_stages if n not in old_stages]:
        old, new = old_stages.get(name), new_stages.get(name)
        if old is None or new is None:
            where = layout.DVC_LOCK if old is None else "the rebuilt pipeline"
            checks.append(StageCheck(name, "missing", f"not in {where}"))
            continue
        deps_old, deps_new = _hashes(old.get("deps")), _hashes(new.get("deps"))
        stale = sorted(
            p
            for p in deps_old.keys() | deps_new.keys()
            if deps_old.get(p) != deps_new.get(p) and not _produced(p, produced)
        )
        if old.get("params") != new.get("params"):
            stale.append(layout.PARAMS)
        if old.get("cmd") != new.get("cmd"):
            stale.append("cmd")
        outs_old, outs_new = _hashes(old.get("outs")), _hashes(new.get("outs"))
        differ = sorted(
            p for p in outs_old.keys() | outs_new.keys() if outs_old.get(p) != outs_new.get(p)
        )
        if stale:
            checks.append(
                StageCheck(name, "stale", f"dvc.lock is stale: {', '.join(stale)} changed", differ)
            )
        elif differ:
            checks.append(StageCheck(name, "differs", ", ".join(differ), differ))
        else:
            checks.append(StageCheck(name, "same"))
    return checks


def _produced(path: str, outputs: set[str]) -> bool:
    return any(path == o or path.startswith(f"{o}/") for o in outputs)


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def clone(repo: Path, rev: str, dest: Path) -> Path:
    """A clean clone of ``repo`` at ``rev`` (no DVC cache, no outputs)."""
    result = _run(["git", "clone", "-q", "--no-checkout", str(repo), str(dest)], repo)
    if result.returncode == 0:
        result = _run(["git", "checkout", "-q", rev], dest)
    if result.returncode != 0:
        raise TfpersistError(
            f"cannot clone {repo} at '{rev}': {result.stderr.strip().splitlines()[-1:]}"
        )
    return dest


def tool_env() -> dict:
    """The environment for dvc and the stages: this interpreter's bin dir first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("TFPERSIST_KILL_AT", None)
    return env


def rebuild(workdir: Path) -> None:
    """``dvc repro --force`` in ``workdir``; then ``dvc status`` must be clean."""
    dvc = str(Path(sys.executable).parent / "dvc")
    result = _run([dvc, "repro", "--force", "--quiet"], workdir, tool_env())
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise TfpersistError(f"dvc repro failed in the clean clone: {' | '.join(tail)}")
    status = _run([dvc, "status", "--quiet"], workdir, tool_env())
    if status.returncode != 0:
        raise TfpersistError(
            "dvc status is not clean right after dvc repro in the clean clone "
            f"({_run([dvc, 'status'], workdir, tool_env()).stdout.strip().splitlines()[:3]})"
        )


def load_lock(text: str) -> dict:
    lock = yaml.safe_load(text) or {}
    if not isinstance(lock, dict):
        raise TfpersistError("dvc.lock: not a mapping; regenerate it with dvc repro")
    return lock
