"""The README is a contract: every command block in it runs as written.

The blocks are read from README.md and the guides it links (docs/*.md, in the reader's
order: GUIDES) themselves (```sh, ```console and ```python), so a changed
command is tested as it now reads. They run in a copy of the repository after `make setup`
and `dvc repro` (tiny training params; every export format of params.yaml), in the order a
reader meets them, except that the first-minutes block, which changes the workspace to
another architecture, runs last. A block that cannot run here is in NOT_RUN with the reason;
a README block that is in neither list fails the test.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tfpersist import cli

from conftest import BIN, ROOT, TINY, copy_repo, env, run

README = ROOT / "README.md"
# The guides the README links, in the order a reader meets them (the session runs their
# blocks in this order, after the README's).
GUIDES = [
    ROOT / "docs" / name
    for name in (
        "pipeline.md",
        "scale.md",
        "cli.md",
        "keras.md",
        "shipping.md",
        "kserve.md",
        "releasing.md",
        "troubleshooting.md",
        "reproducibility.md",
        "benchmarks.md",
        "development.md",
    )
]
DOCS = [README, *GUIDES]
FENCED = re.compile(r"^```(sh|console|python|)\n(.*?)^```", re.S | re.M)

# Blocks, by their first command, that this file does not run, and why.
NOT_RUN = {
    "make repro": "CI runs `make repro` and `make test` in its fresh clone (.ci/run)",
    "make check-repro": "CI runs it after the tests (.ci/run); "
    "tests/versions/test_reproducibility.py covers its outcomes",
    "make remote-up": "tests/versions/test_remote.py starts the same server (tfpersist remote "
    "up) on a free port and pushes and pulls; 8333 may be taken on a developer's machine",
    "dvc exp run -S train.seed=7 -S train.workers=2": "tests/pipeline/test_pipeline.py::"
    "test_queued_experiments_in_parallel_equal_their_serial_runs runs it (queued, beside a "
    "one-worker run) and holds its dvc.lock to the serial run's",
    "cp examples/keras-fit/train_keras.py stages/ && cp examples/keras-fit/dvc.yaml dvc.yaml": (
        "it replaces the pipeline this session runs: tests/pipeline/test_keras_fit.py copies "
        "the same two files into a copy of the repository and runs dvc repro"
    ),
    "tfpersist release digits": "it tags and pushes to a remote: tests/versions/"
    "test_releasing.py runs release (refused, then --push), promote with these gates (refused, "
    "passed, first in a stage), demote and GTO's own show on a bare origin and a real S3 remote",
    "git clone -q $ORIGIN fresh && cd fresh": "tests/versions/test_releasing.py::"
    "test_a_fresh_clone_fetches_inspects_predicts_and_serves_by_name clones a bare origin with "
    "an empty DVC cache and inspects, predicts and serves digits#prod from the S3 remote",
    "tfpersist freeze ckpt --output-nodes out --out flags.pb": "an illustration on a model the "
    "repository does not hold: tests/freezing/test_freeze_sources.py::"
    "test_freeze_says_what_it_pinned_and_keeps_a_pure_switch_live builds it and checks the lines",
    "tfpersist check-repro --probe --l1d 32,48,64": "tests/versions/test_portable_bits.py runs "
    "it, and without --l1d, and holds each to bench/ledger.csv's hashes",
    "make hosts": "it needs root to make network namespaces and trains at the repository's "
    "params; tests/pipeline/test_hosts.py runs the same scenario (tests/hosts.py) with tiny "
    "params and checks the lines it shows",
}
FIRST_MINUTES = "dvc exp run -S model.arch=cnn"


def blocks() -> list[tuple[str, str]]:
    """(language, body) of every command block in the README and its guides, in order: sh,
    console and
    python blocks, and plain ones holding a `$ ` line (the rest are diagrams and output)."""
    found = [block for doc in DOCS for block in FENCED.findall(doc.read_text())]
    return [
        (lang or "console", body)
        for lang, body in found
        if lang or any(line.startswith("$ ") for line in body.splitlines())
    ]


def commands(lang: str, body: str) -> list[str]:
    """What a reader types: a console block's `$ ` lines (a here-document joined to its line),
    an sh block's lines, a python block whole."""
    if lang == "python":
        return [body]
    if lang == "sh":
        lines = [line.split("#")[0].strip() for line in body.splitlines()]
        return [line for line in lines if line]
    typed, heredoc = [], None
    for line in body.splitlines():
        if heredoc is not None:
            typed[-1] += "\n" + line
            if line.strip() == heredoc:
                heredoc = None
            continue
        if line.startswith("$ "):
            typed.append(line[2:])
            match = re.search(r"<<'?(\w+)'?", line)
            heredoc = match.group(1) if match else None
    return typed


def key(lang: str, body: str) -> str:
    first = commands(lang, body)[0]
    return first.splitlines()[0] if lang == "python" else _uncommented(first)


def _uncommented(command: str) -> str:
    return command.split("  #")[0].strip()


def test_every_block_is_run_or_excused():
    keys = [key(lang, body) for lang, body in blocks()]
    assert FIRST_MINUTES in keys
    for name in NOT_RUN:
        assert name in keys, f"NOT_RUN lists '{name}', which the README no longer has"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make repro" in ci and "make test" in ci and "make check-repro" in ci


# -- the session: the README's blocks in a copy of the repository -----------------------------


class Session:
    """A copy of the repository with the pipeline run; ``typed(command)`` runs one command
    as a reader would (``tfpersist …`` in this process: TensorFlow is loaded once)."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.outputs: dict[str, str] = {}  # command → what it printed
        self.served: list[str] = []  # each server's "serving …" line

    def said(self, command: str) -> str:
        """What the first command starting with ``command`` printed."""
        found = [out for typed, out in self.outputs.items() if typed.startswith(command)]
        assert found, f"no command starting with {command!r} ran: {list(self.outputs)}"
        return found[0]

    def typed(self, command: str) -> str:
        plain = command.startswith("tfpersist ") and not re.search(r"[|<>&$;`]", command)
        if plain:
            out = self._in_process(shlex.split(_uncommented(command))[1:])
        else:
            out = self.shell(command)
        self.outputs[_uncommented(command)] = out
        return out

    def _in_process(self, args: list[str]) -> str:
        stdout, stderr = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.repo)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = cli.main(args)
        finally:
            os.chdir(cwd)
        assert code == 0, f"tfpersist {' '.join(args)} exited {code}: {stderr.getvalue()}"
        return stdout.getvalue() + stderr.getvalue()

    def shell(self, script: str) -> str:
        result = run(["bash", "-e", "-o", "pipefail", "-c", script], self.repo)
        return result.stdout + result.stderr

    def block(self, lang: str, body: str) -> None:
        typed = commands(lang, body)
        if lang == "python":
            self.python(typed[0])
            return
        background = [c for c in typed if _uncommented(c).endswith("&")]
        if background:  # a server: what comes first, the server (once it serves), the rest
            at = typed.index(background[0])
            if at:
                self.outputs[typed[0]] = self.shell("\n".join(typed[:at]))
            self.with_server(_uncommented(background[0])[:-1], typed[at + 1 :])
            return
        if any(re.search(r"\$\(|\$\w", c) for c in typed):  # shell variables: one script
            self.outputs[typed[0]] = self.shell("\n".join(typed))
            return
        for command in typed:
            self.typed(command)

    def python(self, code: str) -> None:
        if code.startswith("@register("):  # "write one function in architectures.py"
            self.new_architecture(code)
            return
        stdout = io.StringIO()
        cwd = os.getcwd()
        os.chdir(self.repo)
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile(code, "README.md", "exec"), {})
        finally:
            os.chdir(cwd)
        self.outputs[code.splitlines()[0]] = stdout.getvalue()

    def new_architecture(self, code: str) -> None:
        """The snippet added to architectures.py builds a model the pipeline freezes."""
        from tfpersist.pipeline import architectures, model
        from tfpersist.pipeline.params import ModelParams

        params = yaml.safe_load((self.repo / "params.yaml").read_text())
        name = re.match(r'@register\("(\w+)"\)', code).group(1)
        params["model"] = {**params["model"], "arch": name, name: {"units": 8}}
        namespace = vars(architectures)
        try:
            exec(compile(code, "README.md", "exec"), namespace)
            graph, _, _ = model.inference_graph(ModelParams.from_params(params), 64, 10)
        finally:
            architectures.ARCHITECTURES.pop(name, None)
            namespace.pop(name, None)
        probabilities = graph.get_tensor_by_name(
            f"{params['model']['output_nodes']['probabilities']}:0"
        )
        assert probabilities.shape.as_list() == [None, 10]
        self.outputs[code.splitlines()[0]] = "built"

    def with_server(self, command: str, rest: list[str]) -> None:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.repo,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            said = server.stdout.readline()  # printed once the port is open
            for _ in range(20):  # after what it loaded ("serve: version 1 AVAILABLE …")
                if said.startswith("serving ") or not said.startswith("serve: "):
                    break
                said = server.stdout.readline()
            assert said.startswith("serving "), said + server.stdout.read()
            self.outputs[command] = said
            self.served.append(said.strip())
            self.outputs[rest[0]] = self.shell("\n".join(rest))
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    params = json.loads(json.dumps(TINY))
    params.pop("export")  # the formats params.yaml ships: the README's pipeline
    repo = copy_repo(tmp_path_factory.mktemp("readme") / "repo", params)
    s = Session(repo)
    # what `make setup` does for the plots in a fresh clone, on the venv this test runs in
    # (setup itself would reinstall the package from this copy when a set-up file is newer)
    run(["make", "--no-print-directory", "offline-plots", f"VENV={sys.prefix}"], repo)
    s.outputs["dvc repro (make repro)"] = s.shell("dvc repro")
    run(["git", "add", "-A"], repo)  # the lock committed, as the repository keeps it
    run(["git", "commit", "-qm", "dvc repro"], repo)
    s.clean_repro = s.shell("dvc repro")
    s.status = run([f"{BIN}/dvc", "status", "-q"], repo, check=False).returncode
    s.metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    s.details = json.loads((repo / "metrics/details.json").read_text())
    s.export_card = json.loads((repo / "models/export/export.json").read_text())
    s.plots_json = s.shell("dvc plots show --json")
    s.built = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}
    later = []
    for lang, body in blocks():
        name = key(lang, body)
        if name in NOT_RUN:
            continue
        if name == FIRST_MINUTES:
            later.append((lang, body))
            continue
        started = time.monotonic()
        s.block(lang, body)
        s.outputs[f"seconds: {name}"] = f"{time.monotonic() - started:.1f}"
    for lang, body in later:
        started = time.monotonic()
        s.block(lang, body)
        s.outputs[f"seconds: {key(lang, body)}"] = f"{time.monotonic() - started:.1f}"
    print({k: v for k, v in s.outputs.items() if k.startswith("seconds")})
    return s


@pytest.mark.slow
def test_the_pipeline_a_fresh_clone_builds(session):
    """`make repro`: every artifact, a clean `dvc status`, nothing to do on a second run, no
    absolute path and no CRLF in an artifact, every format shipped and measured."""
    repo = session.repo
    for name in [
        "data/prepared/schema.json",
        "models/train/checkpoint",
        "models/checkpoint/signature.json",
        "models/frozen/model.pb",
        "models/export/saved_model/1/saved_model.pb",
        "models/export/model.tflite",
        "models/export/model.onnx",
        "models/export/opencv.pb",
        "models/export/export.json",
        "metrics/evaluate.json",
        "metrics/details.json",
        "reports/model.html",
    ]:
        assert name in session.built, name
    assert session.status == 0, "dvc status not clean after dvc repro"
    assert "Running stage" not in session.clean_repro
    formats = yaml.safe_load((ROOT / "params.yaml").read_text())["export"]["formats"]
    card = session.export_card
    assert sorted(card["formats"]) == sorted(formats) and "left_out" not in card
    metrics, details = session.metrics, session.details
    assert sorted(metrics) == ["accuracy", "log_loss", "min_recall", "rows"]  # 80 columns
    assert metrics["rows"] == 269 and metrics["accuracy"] > 0.5
    assert metrics["min_recall"] == min(details["recall"].values())
    assert details["checkpoint_max_abs_diff"] <= 1e-6
    # parity is measured: each format's accuracy, distance to the frozen model, size
    assert sorted(details["export"]) == sorted(formats)
    for fmt, m in details["export"].items():
        assert abs(m["accuracy"] - metrics["accuracy"]) <= 1 / 269, fmt
        assert float(m["max_abs_diff"]) <= 1e-5 and m["bytes"] > 1000, fmt
    assert "confusion" in session.plots_json
    for top in ("data/prepared", "models", "metrics", "reports"):
        for path in (repo / top).rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            assert str(repo).encode() not in data, f"absolute path inside {path}"
            binary = path.suffix in (".pb", ".meta", ".index", ".tflite", ".onnx")
            assert b"\r\n" not in data or binary or "data-" in path.name, path


@pytest.mark.slow
def test_another_architecture_runs_through_the_default_pipeline(session):
    """`dvc exp run -S model.arch=cnn` with every default format: OpenCV cannot hold the cnn,
    so the stage leaves it out and says why; the other formats ship and are measured."""
    said = session.said(FIRST_MINUTES)
    assert "export: opencv: left out: OpenCV cannot run this model" in said, said
    repo = session.repo
    card = json.loads((repo / "models/export/export.json").read_text())
    assert sorted(card["formats"]) == ["onnx", "saved_model", "tflite"]
    assert "OpenCV cannot run this model" in card["left_out"]["opencv"]
    details = json.loads((repo / "metrics/details.json").read_text())
    assert sorted(details["export"]) == ["onnx", "saved_model", "tflite"]
    frozen = json.loads((repo / "models/frozen/model.json").read_text())
    assert frozen["ops"].get("Conv2D")
    shown = session.said("dvc metrics show")
    assert "min_recall" in shown and max(map(len, shown.splitlines())) <= 80, shown


@pytest.mark.slow
def test_dvc_plots_show_renders_offline(session):
    """Plain `dvc plots show`, as `make setup` configured it: the page carries vega itself."""
    page = (session.repo / "dvc_plots" / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src" not in page
    assert "confusion" in page and "vegaEmbed" in page


@pytest.mark.slow
def test_the_readme_examples_answer_as_shown(session):
    said = session.said
    assert "TF1 checkpoint" in said("tfpersist inspect models/checkpoint")
    assert said("tfpersist freeze models/checkpoint").startswith("scratch/digits.pb: ")
    predicted = said("tfpersist predict models/frozen/model.pb --input scratch/rows.csv")
    predicted = predicted.splitlines()
    assert predicted[0] == "predictions" and len(predicted) == 3
    compared = said("tfpersist compare models/frozen/model.pb@v1.0")
    assert "weights:   DIFFERS" in compared and (session.repo / "scratch/diff.html").is_file()
    served = said("row=$(sed -n 2p data/prepared/test.csv")  # REST, the gRPC client, metrics
    assert '{"predictions":[{"predictions":' in served
    assert re.search(r"\]\}\]\}\n?\[\d\] 1$", served, re.M), served  # the official client's answer
    assert 'entrypoint="REST"' in served and 'entrypoint="gRPC"' in served
    shown = "\n".join(doc.read_text() for doc in DOCS)
    assert session.served and [s for s in session.served if s not in shown] == []  # verbatim
    triton = said("python - <<'EOF'\nimport csv")  # docs/kserve.md: tritonclient by hand
    assert re.search(r"^True \[\{'name': 'input_holder', 'datatype': 'FP32'", triton, re.M), triton
    assert re.search(r"^\[\d\] 1$", triton, re.M), triton  # gRPC: the class and version 1
    assert '"platform":"onnx_onnxv1"' in triton and '"model_version":"1"' in triton, triton
    v2 = said("python examples/serving/v2_client.py digits")  # tritonclient, KServe's v2
    http = re.search(r"^HTTP predictions: (\[\d\])$", v2, re.M)
    assert http and f"gRPC predictions: {http.group(1)} (version 1)" in v2, v2
    classified = said('curl -s -d \'{"signature_name": "classify_x_to_y"')
    assert '{"results":[[["",12.0]],[["",7.0]]]}' in classified, classified
    hp2 = said("curl -s -d '{\"instances\": [1.0, 2.0, 5.0]}' localhost:8501/v1/models/half")
    assert '{"predictions":[2.5,3.0,4.5]}' in hp2 and '{"results":[[["",12.0]],[["",7.0]]]}' in hp2
    switched = said("cp -r scratch/served/1 scratch/served/.2")
    assert '{"version":"2","state":"AVAILABLE"' in switched
    assert '{"version":"1","state":"END"' in switched
    assert "(269, 10)" in said("python - <<'PY'")
    assert re.fullmatch(r"\[\d\]\n", said("import numpy as np, tensorflow as tf"))
    assert said('@register("wide")') == "built"
    keras_model = said("tfpersist inspect scratch/m.keras")
    assert "scratch/m.keras: Keras 3 model (.keras)" in keras_model
    assert "input  features: float32 [?, 4]" in keras_model and "parameters: 67" in keras_model
    frozen = said("tfpersist freeze scratch/m.keras")
    restored = said("tfpersist freeze scratch/m.weights.h5")
    assert frozen.startswith("scratch/m.pb: 16 nodes, 67 parameters, outputs scores, sha256 ")
    assert restored.startswith("scratch/w.pb: ") and restored.split()[-1] == frozen.split()[-1]
    # every example wrote what it made into scratch/ (git-ignored): nothing untracked elsewhere
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], session.repo).stdout
    assert [line for line in status.splitlines() if line.startswith("??")] == []


def test_the_accuracy_the_readme_quotes_is_the_committed_pipelines():
    """Every test accuracy the README states for the default pipeline (the evaluate stage's
    lines, `dvc metrics show`, the measured summary) is metrics/evaluate.json's, as committed
    with dvc.lock: a retrained model makes this fail until the README says the new figure."""
    import json

    accuracy = json.loads((ROOT / "metrics" / "evaluate.json").read_text())["accuracy"]
    text = "\n".join(doc.read_text() for doc in DOCS)
    quoted = re.findall(r"evaluate: (?:\w+: )?test accuracy (0\.\d+)", text)
    quoted += re.findall(r"reaches (0\.\d+) test accuracy", text)
    assert len(quoted) == 6, quoted
    assert {float(q) for q in quoted} == {round(accuracy, 4)}
    metrics = json.loads((ROOT / "metrics" / "evaluate.json").read_text())
    shown = re.search(r"^metrics/evaluate\.json\s+(.+)$", text, re.M).group(1).split()
    assert [float(v) for v in shown] == [round(metrics[k], 5) for k in sorted(metrics)]
    details = json.loads((ROOT / "metrics" / "details.json").read_text())
    onnx = re.search(
        r'"onnx": \{\s+"accuracy": (\S+),\s+"bytes": (\d+),\s+"max_abs_diff": "(\S+)"', text
    )
    assert onnx.groups() == tuple(str(v) for v in details["export"]["onnx"].values())


def test_the_scale_figures_the_readme_quotes_are_the_benchs():
    """The "Data larger than memory" figures (rows/s, MiB, seconds) are bench/results.md's:
    a rerun of `make bench` that moves them makes this fail until the README follows."""
    section = (ROOT / "docs" / "scale.md").read_text().split("## Data larger than memory")[1]
    measured = section.split("Measured with `make bench`")[1]
    results = (ROOT / "bench" / "results.md").read_text()
    figures = re.findall(r"\d{1,3}(?:,\d{3})+|\d+ MiB|\d+ s\b|\d\.\d+×", measured)
    assert len(figures) >= 8
    assert [f for f in figures if f not in results] == []
