"""Proving the pipeline reproduces: rebuild a clean clone and compare it with dvc.lock.

``check`` clones a git revision into a temp dir, runs ``dvc repro --force`` there (no cache,
no outputs: everything is rebuilt), and compares each stage's output hashes with the ones
the revision's dvc.lock records. A stage whose dependencies hash differently was committed
with a stale lock; one whose dependencies match but outputs differ did not reproduce. No
TensorFlow here: ``distance`` (models) imports it only when something differs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tfpersist.errors import TfpersistError


@dataclass
class StageCheck:
    stage: str
    status: str  # same | differs | stale | missing
    detail: str = ""
    outputs: list[str] = field(default_factory=list)  # outputs whose hash differs

    @property
    def ok(self) -> bool:
        return self.status == "same"


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
            where = "dvc.lock" if old is None else "the rebuilt pipeline"
            checks.append(StageCheck(name, "missing", f"not in {where}"))
            continue
        deps_old, deps_new = _hashes(old.get("deps")), _hashes(new.get("deps"))
        stale = sorted(
            p
            for p in deps_old.keys() | deps_new.keys()
            if deps_old.get(p) != deps_new.get(p) and not _produced(p, produced)
        )
        if old.get("params") != new.get("params"):
            stale.append("params.yaml")
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


def check(
    repo: Path,
    rev: str = "HEAD",
    keep: bool = False,
    describe: Callable[[Path, Path, StageCheck], str] | None = None,
) -> tuple[list[StageCheck], Path]:
    """Rebuild ``rev`` of ``repo`` from scratch and compare it with its dvc.lock.

    ``describe(repo, clone_dir, check)`` may add how far a differing stage's outputs are.
    Returns the checks and the clone's path (deleted unless ``keep``).
    """
    workdir = Path(tempfile.mkdtemp(prefix="tfpersist-check-repro-"))
    try:
        target = clone(repo, rev, workdir / "repo")
        lock_path = target / "dvc.lock"
        if not lock_path.is_file():
            raise TfpersistError(f"{rev}: no dvc.lock committed; run dvc repro and commit it")
        committed = load_lock(lock_path.read_text())
        rebuild(target)
        checks = compare_locks(committed, load_lock(lock_path.read_text()))
        if describe:
            for c in checks:
                if c.status == "differs":
                    extra = describe(repo, target, c)
                    if extra:
                        c.detail = f"{c.detail} ({extra})"
        return checks, target
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def fetch_committed(repo: Path, rev: str, path: str, names: list[str], dest: Path) -> Path:
    """Copy ``path/name`` (or ``path`` itself when ``names`` is empty) as committed at ``rev``
    from the repository's DVC cache into ``dest``; raise TfpersistError if not cached."""
    import dvc.api

    dest.mkdir(parents=True, exist_ok=True)
    for name in names or [""]:
        source = f"{path}/{name}" if name else path
        target = dest / (name or Path(path).name)
        try:
            with dvc.api.open(source, repo=str(repo), rev=rev, mode="rb") as f:
                target.write_bytes(f.read())
        except Exception:
            from tfpersist import versions

            raise versions.unavailable(
                repo, f"{source}@{rev[:10]}", "or push the artifacts that dvc.lock records"
            ) from None
    return dest


def describe_model_difference(repo: Path, clone_dir: Path, check: StageCheck) -> str:
    """How far the rebuilt models are from the committed ones: weights and outputs."""
    rev = _run(["git", "rev-parse", "HEAD"], clone_dir).stdout.strip()
    parts = []
    with tempfile.TemporaryDirectory(prefix="tfpersist-committed-") as tmp:
        for out in check.outputs:
            rebuilt = clone_dir / out
            try:
                if rebuilt.is_dir() and (rebuilt / "checkpoint").is_file():
                    parts.append(_weights_part(repo, rev, out, rebuilt, Path(tmp) / out))
                elif out.endswith(".pb"):
                    parts.append(_outputs_part(repo, rev, out, rebuilt, clone_dir, Path(tmp) / out))
            except TfpersistError as e:
                parts.append(str(e))
    return "; ".join(p for p in parts if p)


def _weights_part(repo: Path, rev: str, out: str, rebuilt: Path, tmp: Path) -> str:
    from tfpersist import checkpoints, compare

    latest = checkpoints.resolve(rebuilt)
    names = [
        p.name
        for p in rebuilt.iterdir()
        if p.name.startswith(latest.name) or p.name == "checkpoint"
    ]
    committed = fetch_committed(repo, rev, out, names, tmp)
    d = compare.weight_distance(
        compare.checkpoint_weights(committed / latest.name), compare.checkpoint_weights(latest)
    )
    return f"{out}: max abs weight difference {d['max_abs']:.3g} ({d['worst']})"


def _outputs_part(repo: Path, rev: str, out: str, rebuilt: Path, clone_dir: Path, tmp: Path) -> str:
    from tfpersist import compare, data, signature
    from tfpersist.runner import Runner

    committed = fetch_committed(repo, rev, out, [], tmp) / rebuilt.name
    sig = signature.beside(rebuilt)
    if sig is None:
        return f"{out}: no card beside it to say which outputs to compare"
    input_node = sig["inputs"][0]["name"]
    outputs = [o["name"] for o in sig["outputs"]]
    prepared = clone_dir / "data" / "prepared"
    x, _ = data.load_split(prepared / "test.csv", data.read_schema(prepared))
    with Runner.from_frozen(committed) as a, Runner.from_frozen(rebuilt) as b:
        diffs = compare.output_distance(a, b, x, input_node, outputs)
    worst = max(diffs, key=diffs.get)
    return f"{out}: max abs output difference {diffs[worst]:.3g} ({worst}, test split)"
