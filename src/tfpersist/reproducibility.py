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
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tfpersist import layout, versions
from tfpersist.errors import TfpersistError


@dataclass
class StageCheck:
    stage: str
    status: str  # same | equivalent | differs | stale | missing
    detail: str = ""
    outputs: list[str] = field(default_factory=list)  # outputs whose hash differs
    distance: float | None = None  # max abs difference over ``outputs``, where measured

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


def check(
    repo: Path,
    rev: str = "HEAD",
    keep: bool = False,
    tolerance: float | None = None,
) -> tuple[list[StageCheck], Path]:
    """Rebuild ``rev`` of ``repo`` from scratch and compare it with its dvc.lock.

    A stage whose outputs differ is measured against the committed artifacts (weights,
    model outputs, numbers in JSON/CSV files); with ``tolerance``, one whose every differing
    output is within it is ``equivalent``. Returns the checks and the clone's path (deleted
    unless ``keep``).
    """
    workdir = Path(tempfile.mkdtemp(prefix="tfpersist-check-repro-"))
    try:
        target = clone(repo, rev, workdir / "repo")
        lock_path = target / layout.DVC_LOCK
        if not lock_path.is_file():
            raise TfpersistError(f"{rev}: no dvc.lock committed; run dvc repro and commit it")
        committed = load_lock(lock_path.read_text())
        rebuild(target)
        checks = compare_locks(committed, load_lock(lock_path.read_text()))
        for c in checks:
            if c.status == "differs":
                detail, c.distance = measure(repo, target, c)
                if detail:
                    c.detail = f"{c.detail} ({detail})"
                if tolerance is not None and c.distance is not None and c.distance <= tolerance:
                    c.status = "equivalent"
                    c.detail = f"within {tolerance:g}: {c.detail}"
        return checks, target
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


PUSH_HINT = "or push the artifacts that dvc.lock records"  # to fetch the committed outputs


def measure(repo: Path, clone_dir: Path, check: StageCheck) -> tuple[str, float | None]:
    """How far a stage's rebuilt outputs are from the committed ones: (text, max distance).

    Checkpoints by weights, frozen models by their outputs on the test split, JSON, CSV and
    HTML files (the model's page) by their numbers. The distance is None when an output
    could not be measured.
    """
    rev = _run(["git", "rev-parse", "HEAD"], clone_dir).stdout.strip()
    parts, distances = [], []
    with tempfile.TemporaryDirectory(prefix="tfpersist-committed-") as tmp:
        for out in check.outputs:
            rebuilt = clone_dir / out
            try:
                if rebuilt.is_dir() and (rebuilt / layout.CHECKPOINT_STATE).is_file():
                    text, d = _weights_part(repo, rev, out, rebuilt, Path(tmp) / out)
                elif out.endswith(".pb"):
                    text, d = _outputs_part(repo, rev, out, rebuilt, clone_dir, Path(tmp) / out)
                elif out.endswith((".json", ".csv", ".tsv", ".html")):
                    text, d = _numbers_part(repo, rev, out, rebuilt, Path(tmp) / out)
                else:
                    text, d = f"{out}: not measurable", None
            except TfpersistError as e:
                text, d = str(e), None
            parts.append(text)
            distances.append(d)
    distance = None if None in distances or not distances else max(distances)
    return "; ".join(p for p in parts if p), distance


def _weights_part(repo: Path, rev: str, out: str, rebuilt: Path, tmp: Path) -> str:
    from tfpersist import checkpoints, compare

    latest = checkpoints.resolve(rebuilt)
    names = [
        p.name
        for p in rebuilt.iterdir()
        if p.name.startswith(latest.name) or p.name == layout.CHECKPOINT_STATE
    ]
    committed = versions.fetch(repo, rev, out, tmp, names, hint=PUSH_HINT)
    d = compare.weight_distance(
        compare.checkpoint_weights(committed / latest.name), compare.checkpoint_weights(latest)
    )
    text = f"{out}: max abs weight difference {d['max_abs']:.3g} ({d['worst']})"
    return text, float(d["max_abs"])


def _outputs_part(repo: Path, rev: str, out: str, rebuilt: Path, clone_dir: Path, tmp: Path) -> str:
    from tfpersist import compare, data, signature
    from tfpersist.runner import Runner

    committed = versions.fetch(repo, rev, out, tmp, hint=PUSH_HINT)
    sig = signature.beside(rebuilt)
    if sig is None:
        return f"{out}: no card beside it to say which outputs to compare", None
    input_node = sig["inputs"][0]["name"]
    outputs = [o["name"] for o in sig["outputs"]]
    prepared = clone_dir / layout.PREPARED_DIR
    x, _ = data.load_split(prepared / layout.split_file("test"), data.read_schema(prepared))
    with Runner.from_frozen(committed) as a, Runner.from_frozen(rebuilt) as b:
        diffs = compare.output_distance(a, b, x, input_node, outputs)
    worst = max(diffs, key=diffs.get)
    text = f"{out}: max abs output difference {diffs[worst]:.3g} ({worst}, test split)"
    return text, float(diffs[worst])


def numbers(path: Path) -> list[float] | None:
    """The numbers of a JSON, CSV/TSV or HTML file in reading order, with the text between
    them (None if not parseable). In a page, short hex digests (``sha256 ad559c690645``)
    become ``<digest>``: they follow the model they name, measured on its own."""
    import json
    import re

    text = path.read_text()
    if path.suffix == ".html":
        text = re.sub(r"\b(?=[0-9]*[a-f])[0-9a-f]{12,64}\b", "<digest>", text)
        parts = re.split(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text)
        return [float(p) if i % 2 else p for i, p in enumerate(parts) if p]
    if path.suffix == ".json":
        try:
            found: list[float] = []
            _leaves(json.loads(text), found)
            return found
        except ValueError:
            return None
    sep = "\t" if path.suffix == ".tsv" else ","
    values = []
    for cell in (c for line in text.splitlines()[1:] for c in line.split(sep)):
        try:
            values.append(float(cell))
        except ValueError:
            values.append(cell)
    return values


def _leaves(value, found: list) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            found.append(key)
            _leaves(value[key], found)
    elif isinstance(value, list):
        for item in value:
            _leaves(item, found)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found.append(value)
    else:
        found.append(repr(value))


def _digest(text) -> bool:
    """A hex digest (md5, sha1, sha256), quoted or not."""
    text = text.strip("'") if isinstance(text, str) else ""
    return len(text) in (32, 40, 64) and all(c in "0123456789abcdef" for c in text)


def _numbers_part(repo: Path, rev: str, out: str, rebuilt: Path, tmp: Path):
    committed = versions.fetch(repo, rev, out, tmp, hint=PUSH_HINT)
    a, b = numbers(committed), numbers(rebuilt)
    if a is None or b is None or len(a) != len(b):
        return f"{out}: different structure", None
    pairs = list(zip(a, b, strict=True))
    texts = [(x, y) for x, y in pairs if isinstance(x, str) or isinstance(y, str)]
    # A hash (a card's sha256 of its .pb) follows the artifact it names, measured on its own.
    if any(x != y and not (_digest(x) and _digest(y)) for x, y in texts):
        return f"{out}: different text", None
    d = max(
        (
            abs(float(x) - float(y))
            for x, y in pairs
            if not (isinstance(x, str) or isinstance(y, str))
        ),
        default=0.0,
    )
    return f"{out}: max abs difference of its numbers {d:.3g}", d
