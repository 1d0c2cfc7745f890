"""Proving the pipeline reproduces: rebuild a clean clone and compare it with dvc.lock.

``check`` clones a git revision into a temp dir, runs ``dvc repro --force`` there (no cache,
no outputs: everything is rebuilt), and compares each stage's output hashes with the ones
the revision's dvc.lock records. A stage whose dependencies hash differently was committed
with a stale lock; one whose dependencies match but outputs differ did not reproduce. No
TensorFlow here: ``distance`` (models) imports it only when something differs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tfpersist import versions
from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError
from tfpersist.versions.rebuild import StageCheck, clone, compare_locks, load_lock, rebuild


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
        for c in checks:
            if c.stage == "train":
                c.note = contraction_note(target, committed)
        return checks, target
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def contraction_note(target: Path, lock: dict) -> str:
    """A line when the training graph of the train stage's last checkpoint sums past the
    portable K bound (train.max_k 0, the native pin): then its bytes hold only on CPUs with
    this one's L1 data cache. Empty otherwise."""
    from tfpersist.formats import checkpoints
    from tfpersist.graph import contractions, graphdefs
    from tfpersist.numerics import cpucache

    outs = [o["path"] for o in (lock.get("stages", {}).get("train", {}).get("outs") or [])]
    found = []
    for out in outs:
        directory = target / out
        complete = checkpoints.complete_checkpoints(directory) if directory.is_dir() else []
        if complete:
            meta = graphdefs.read_meta_graph(complete[-1])
            found = contractions.find(meta.graph_def)
    if not contractions.past(found):
        return ""
    l1d = cpucache.this_cpu()[0]
    known = [c for c in found if c.k is not None]
    return (
        f"{contractions.explain(known)}: dvc.lock's training bytes hold only on CPUs with this "
        f"one's L1D ({l1d // 1024 if l1d else '?'} KiB); train.max_k: 256 cuts them"
    )


PUSH_HINT = "or push the artifacts that dvc.lock records"  # to fetch the committed outputs


def measure(repo: Path, clone_dir: Path, check: StageCheck) -> tuple[str, float | None]:
    """How far a stage's rebuilt outputs are from the committed ones: (text, max distance).

    Checkpoints by weights, frozen models by their outputs on the test split, JSON, CSV and
    HTML files (the model's page) by their numbers. The distance is None when an output
    could not be measured.
    """
    git = ["git", "rev-parse", "HEAD"]
    rev = subprocess.run(git, cwd=clone_dir, capture_output=True, text=True).stdout.strip()
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
    from tfpersist.formats import checkpoints
    from tfpersist.versions import distances

    latest = checkpoints.resolve(rebuilt)
    names = [
        p.name
        for p in rebuilt.iterdir()
        if p.name.startswith(latest.name) or p.name == layout.CHECKPOINT_STATE
    ]
    committed = versions.fetch(repo, rev, out, tmp, names, hint=PUSH_HINT)
    d = distances.weight_distance(
        distances.checkpoint_weights(committed / latest.name), distances.checkpoint_weights(latest)
    )
    text = f"{out}: max abs weight difference {d['max_abs']:.3g} ({d['worst']})"
    return text, float(d["max_abs"])


def _outputs_part(repo: Path, rev: str, out: str, rebuilt: Path, clone_dir: Path, tmp: Path) -> str:
    from tfpersist.graph import signature
    from tfpersist.running.runner import Runner
    from tfpersist.tables import records
    from tfpersist.versions import distances

    committed = versions.fetch(repo, rev, out, tmp, hint=PUSH_HINT)
    sig = signature.beside(rebuilt)
    if sig is None:
        return f"{out}: no card beside it to say which outputs to compare", None
    input_node = sig["inputs"][0]["name"]
    outputs = [o["name"] for o in sig["outputs"]]
    prepared = clone_dir / layout.PREPARED_DIR
    x, _ = records.read_split(prepared, "test", rows=records.HEAD)
    with Runner.from_frozen(committed) as a, Runner.from_frozen(rebuilt) as b:
        diffs = distances.output_distance(a, b, x, input_node, outputs)
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
