"""Hostile models (tests/hostile/models.py) against every command: refused before they run.

Each model, run, loaded or restored, writes a file named after its case into a target
directory, reads a secret file into an output (or an error message, or stdout), lists a
directory, or runs Python. The corpus is written once per module by two writer processes
(TF1 and TF2 behaviour are process-wide), each model first proven hostile against a scratch
target. For every hostile model, in-process through ``cli.main``:

- ``inspect PATH --json`` exits 0 and lists the hostile op(s) under ``unsafe_ops``;
- ``predict``, ``freeze``, ``freeze --optimize`` and ``compare PATH PATH --data`` exit
  non-zero with exactly one line ``tfpersist: error: …`` on stderr;
- and after each command: nothing new or changed anywhere under the module's temp dir
  (target, corpus, work dirs: a refused freeze writes no .pb), and the secret in no
  stdout/stderr and no written file.

Legitimate models still run without flags; ``--allow-unsafe-ops`` is the only way a hostile
.pb runs (and, with it, each .pb case's attack shows, so the checks above can see one); the
evaluate stage refuses a hostile .pb.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.tables import records

from conftest import ROOT, env
from helpers import write_in_both_modes

WRITER = ROOT / "tests" / "hostile" / "models.py"
_spec = importlib.util.spec_from_file_location("hostile_models", WRITER)
hostile = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hostile  # dataclasses look their module up there
_spec.loader.exec_module(hostile)

CASES = hostile.CASES
HOSTILE = [name for name, c in CASES.items() if not c.benign]
BENIGN = [name for name, c in CASES.items() if c.benign]
PROVABLE = [name for name in HOSTILE if CASES[name].kind == "pb" and CASES[name].proof]
EVALUATE_CASES = ["write_file_pb", "function_body_pb"]  # built with the evaluate stage's names


@dataclass
class Corpus:
    root: Path  # everything below is inside it; nothing else may appear there
    models: Path
    target: Path  # where the models write (files named after their case)
    secret: Path
    secret_text: str
    specs: dict[str, dict]

    def path(self, name: str) -> Path:
        return self.models / name / self.specs[name]["path"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tf) -> Corpus:
    root = tmp_path_factory.mktemp("hostile")
    models, target = root / "models", root / "target"
    target.mkdir()
    (root / "secret").mkdir()
    secret = root / "secret" / "secret.txt"
    secret_text = f"tfpersist-secret-{uuid.uuid4().hex}"
    secret.write_text(secret_text)
    with tf.io.TFRecordWriter(f"{secret}.tfrecord") as records:
        records.write(secret_text.encode())
    write_in_both_modes(WRITER, models, target, secret, env=env())
    assert not list(target.iterdir()), "writing the corpus ran a model"
    for path in models.rglob("*"):
        if path.is_file():
            assert secret_text.encode() not in path.read_bytes(), f"{path} holds the secret"
    specs = {n: json.loads((models / n / "spec.json").read_text()) for n in CASES}
    return Corpus(root, models, target, secret, secret_text, specs)


# -- running a command and checking what it touched -------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: dirs by name, files by (size, mtime)."""
    state = {}
    for path in root.rglob("*"):
        rel = str(path.relative_to(root))
        if path.is_dir() and not path.is_symlink():
            state[rel] = ("dir",)
        else:
            st = path.lstat()
            state[rel] = (st.st_size, st.st_mtime_ns)
    return state


@dataclass
class Result:
    code: int
    out: str
    err: str
    touched: list[str]  # new or changed paths (relative to the corpus root) not expected
    leaked: list[str]  # where the secret came out: stdout, stderr, or a written file


def tfpersist(corpus: Corpus, capfd, args, expected=()) -> Result:
    """``cli.main(args)`` in-process; what it printed (fd level), what it touched.

    Paths it created or changed other than ``expected`` are removed again (everything is
    inside the module's temp dir), so each command is judged on its own.
    """
    expected = {str(Path(p).relative_to(corpus.root)) for p in expected}
    before = snapshot(corpus.root)
    capfd.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capfd.readouterr()
    after = snapshot(corpus.root)
    changed = sorted(p for p, s in after.items() if before.get(p) != s)
    secret = corpus.secret_text.encode()
    leaked = [name for name, text in (("stdout", out), ("stderr", err)) if secret.decode() in text]
    for rel in changed:
        path = corpus.root / rel
        if path.is_file() and secret in path.read_bytes():
            leaked.append(rel)
    # a parent dir's mtime changes whenever a file in it does: report files and new dirs
    touched = [
        p for p in changed if p not in expected and not (after[p] == ("dir",) and p in before)
    ]
    for rel in sorted(set(after) - set(before) - expected, reverse=True):
        path = corpus.root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    return Result(code, out, err, touched, leaked)


def one_line_error(result: Result) -> str | None:
    """None when the command failed with one line ``tfpersist: error: …``, else what is wrong."""
    lines = result.err.strip().splitlines()
    if result.code == 0:
        shown = f" (stdout: {result.out.strip()[:200]!r})" if result.out else ""
        return f"exit 0, not refused{shown}"
    if len(lines) != 1 or not lines[0].startswith("tfpersist: error: "):
        return f"exit {result.code} with {len(lines)} stderr lines: {result.err.strip()[:300]!r}"
    return None


def work_dir(corpus: Corpus, name: str) -> Path:
    """A per-case dir under the corpus root with x.npy and data.csv (before any snapshot)."""
    spec = corpus.specs[name]
    work = corpus.root / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    x = np.ones(spec["shape"], spec["dtype"])
    np.save(work / "x.npy", x)
    header = ",".join(f"f{i}" for i in range(x.shape[1]))
    rows = "\n".join(",".join("1" for _ in range(x.shape[1])) for _ in range(len(x)))
    (work / "data.csv").write_text(f"{header}\n{rows}\n")
    return work


def commands(corpus: Corpus, name: str, work: Path) -> list[tuple[str, list, list]]:
    """(label, argv, files it writes when it succeeds) for each command on ``name``."""
    spec = corpus.specs[name]
    path = corpus.path(name)
    nodes = ["--output-nodes", ",".join(spec["outputs"])]
    frozen, optimized = work / "frozen.pb", work / "optimized.pb"
    return [
        ("inspect", ["inspect", path, "--json"], []),
        (
            "predict",
            ["predict", path, "--input", work / "x.npy", "--input-node", spec["input"], *nodes],
            [],
        ),
        (
            "freeze",
            ["freeze", path, *nodes, "--out", frozen],
            [frozen, frozen.with_suffix(".json")],
        ),
        (
            "freeze --optimize",
            ["freeze", path, *nodes, "--optimize", "--out", optimized],
            [optimized, optimized.with_suffix(".json")],
        ),
        ("compare", ["compare", path, path, "--data", work / "data.csv", *nodes], []),
    ]


# -- every command on every hostile model ----------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_is_refused_by_every_command(corpus, name, capfd, monkeypatch):
    spec = corpus.specs[name]
    work = work_dir(corpus, name)
    monkeypatch.chdir(work)  # no data/prepared here: compare uses --data only
    problems = []
    for label, args, _ in commands(corpus, name, work):
        result = tfpersist(corpus, capfd, args)  # a hostile model: no command may write
        if label == "inspect":
            if result.code != 0:
                problems.append(f"inspect: exit {result.code}: {result.err.strip()[:300]!r}")
            else:
                try:
                    listed = json.loads(result.out).get("unsafe_ops")
                except ValueError:
                    listed = "not JSON"
                if not isinstance(listed, list) or not set(spec["ops"]) <= set(listed):
                    problems.append(f"inspect: unsafe_ops {listed!r}, expected {spec['ops']}")
        else:
            wrong = one_line_error(result)
            if wrong:
                problems.append(f"{label}: {wrong}")
            if "Traceback" in result.err:
                problems.append(f"{label}: a traceback on stderr")
        if result.touched:
            problems.append(f"{label}: created or changed {', '.join(result.touched)}")
        if result.leaked:
            problems.append(f"{label}: the secret came out in {', '.join(result.leaked)}")
    assert not problems, (
        f"{name} ({spec['kind']}, {spec['attack']}, {','.join(spec['ops'])}: {spec['what']}):\n"
        + "\n".join(problems)
    )


# -- legitimate models still run without flags -----------------------------------------------


@pytest.mark.parametrize("name", BENIGN)
def test_legitimate_models_run_without_flags(corpus, name, capfd, monkeypatch):
    spec = corpus.specs[name]
    work = work_dir(corpus, name)
    monkeypatch.chdir(work)
    for label, args, outputs in commands(corpus, name, work):
        if label == "predict" and spec["kind"] != "pb":
            continue  # predict takes a frozen .pb: run on the frozen one below
        result = tfpersist(corpus, capfd, args, outputs)
        assert result.code == 0, f"{label}: {result.err}"
        assert not result.touched and not result.leaked, (label, result.touched, result.leaked)
        assert all(Path(p).is_file() for p in outputs), label
        if label == "inspect":
            assert json.loads(result.out)["unsafe_ops"] == []
    frozen = work / "frozen.pb"
    args = ["predict", frozen, "--input", work / "x.npy", "--out", work / "y.json"]
    result = tfpersist(corpus, capfd, args, [work / "y.json"])
    assert result.code == 0, result.err
    got = json.loads((work / "y.json").read_text())[spec["outputs"][0]]
    want = np.exp(np.ones((2, 4), np.float32) @ hostile.weights(4, 3))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), atol=1e-6)


# -- the checks above can see an attack: --allow-unsafe-ops runs them -----------------------


def test_allow_unsafe_ops_is_the_only_way_a_hostile_pb_runs(corpus, capfd, monkeypatch):
    work = work_dir(corpus, "write_file_pb")
    monkeypatch.chdir(work)
    args = ["predict", corpus.path("write_file_pb"), "--input", work / "x.npy"]
    written = corpus.target / "write_file_pb"
    refused = tfpersist(corpus, capfd, args)
    assert refused.code == 1 and one_line_error(refused) is None, refused.err
    assert not refused.touched and not written.exists()
    before = snapshot(corpus.root)
    capfd.readouterr()
    assert cli.main([str(a) for a in args] + ["--allow-unsafe-ops"]) == 0
    assert written.read_text() == "pwned"
    assert set(snapshot(corpus.root)) - set(before) == {"target/write_file_pb"}
    written.unlink()


@pytest.mark.parametrize("name", PROVABLE)
def test_each_hostile_pb_really_attacks_when_allowed(corpus, name, capfd, monkeypatch):
    """With --allow-unsafe-ops, predict shows each .pb's attack in this very process: the
    refusals above are not an artefact of wrong node names, and the harness sees attacks."""
    spec = corpus.specs[name]
    work = work_dir(corpus, name)
    monkeypatch.chdir(work)
    nodes = ["--output-nodes", ",".join(spec["outputs"])]
    args = ["predict", corpus.path(name), "--input", work / "x.npy", "--input-node", spec["input"]]
    result = tfpersist(corpus, capfd, [*args, *nodes, "--allow-unsafe-ops"])
    shown = {
        "file": any(p.startswith(f"target/{name}") for p in result.touched),
        "secret": {"stdout", "stderr"} & set(result.leaked),
        "name": corpus.secret.name in result.out + result.err,
    }[spec["proof"]]
    assert shown, (spec["proof"], result.code, result.touched, result.err[-500:])
    if name == "copy_secret_pb":  # the harness also finds the secret inside a written file
        assert f"target/{name}" in result.leaked, result.leaked
    assert not any(p.startswith("target/") for p in snapshot(corpus.root)), "left behind"


# -- the evaluate stage ----------------------------------------------------------------------


def test_evaluate_stage_refuses_a_hostile_pb(corpus):
    """stages/evaluate.py run directly (as dvc.yaml runs it) on .pb files with the pipeline's
    node names: one line, exit 1, nothing written, nothing run (no checkpoint is needed)."""
    runs = {}
    for name in EVALUATE_CASES:
        work = corpus.root / "work" / "evaluate" / name
        (work / "data" / "prepared").mkdir(parents=True)
        shutil.copy(ROOT / "params.yaml", work / "params.yaml")
        features = [f"f{i}" for i in range(64)]
        schema = {"label": "label", "features": features, "num_classes": 10}
        (work / "data" / "prepared" / "schema.json").write_text(json.dumps(schema))
        rows = np.zeros(3, records.dtype(64))
        rows["x"], rows["y"] = 1.0, np.arange(3)
        np.save(work / "data" / "prepared" / "test.npy", rows)
        runs[name] = work
    before = snapshot(corpus.root)
    stage_env = env()
    stage_env.pop("TFPERSIST_ALLOW_UNSAFE_OPS", None)
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "stages" / "evaluate.py"),
                str(corpus.path(name)),
                "models/checkpoint",
                "models/export",
                "data/prepared",
                "metrics.json",
                "details.json",
                "confusion.csv",
            ],
            cwd=work,
            env=stage_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, work in runs.items()
    }
    results = {name: (p.communicate(timeout=300), p.returncode) for name, p in procs.items()}
    after = snapshot(corpus.root)
    changed = sorted(p for p, s in after.items() if before.get(p) != s and s != ("dir",))
    for name, ((out, err), code) in results.items():
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1, (name, code, err[-2000:])
        assert lines[0].startswith("evaluate: error: ") and "refus" in lines[0], lines[0]
        assert corpus.secret_text not in out + err
    assert not changed, changed
