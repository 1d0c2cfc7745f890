"""The front door holds together: README.md stays a front page (at most 300 lines), and every
relative link in it and in docs/ names a file that exists and, with ``#anchor``, a heading
that file has (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")  # inline code: `f(x)["y"]` is no link


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    found = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def test_every_link_in_the_readme_and_the_guides_resolves():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(CODE.sub("", FENCE.sub("", doc.read_text()))):
            if re.match(r"\w+://|mailto:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert broken == []


def test_the_committed_models_figures_in_the_guides_are_todays():
    """The figures the guides quote for the committed model — the frozen graph's bytes and
    sha256 (freeze, the compare and release walk-throughs' version A), each export format's
    bytes and sha256 — are the pipeline's as dvc.lock and metrics/evaluate.json hold them: a
    retrained model fails this until the guides say the new figures. The sha256s are read
    from the workspace's outputs, when they are the committed ones (after `make repro` or
    `dvc checkout`, as CI runs the tests)."""
    import hashlib
    import json

    import pytest
    import yaml

    from tfpersist.core.digests import digest

    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    frozen = next(o for o in lock["freeze"]["outs"] if o["path"] == "models/frozen/model.pb")
    metrics = json.loads((ROOT / "metrics" / "details.json").read_text())

    version_a = re.findall(
        r"^A: (?:models/frozen/model\.pb@v1\.0|digits@v1\.0\.0) \(frozen GraphDef, (\d+) bytes, "
        r"sha256 (\w{12})\)",
        text,
        re.M,
    )
    freeze = re.findall(
        r"^scratch/digits\.pb: \d+ nodes, \d+ parameters, .*sha256 (\w{12})$", text, re.M
    )
    shipped = re.findall(
        r"^scratch/export/(\S+): (saved_model|tflite|onnx|opencv), (\d+) bytes, sha256 (\w{12})",
        text,
        re.M,
    )
    assert len(version_a) == 2 and len(freeze) == 1 and len(shipped) == 4
    assert {int(size) for size, _ in version_a} == {frozen["size"]}
    assert {fmt: int(size) for _, fmt, size, _ in shipped} == {
        fmt: m["bytes"] for fmt, m in metrics["export"].items()
    }
    model = ROOT / "models" / "frozen" / "model.pb"
    if not model.is_file() or hashlib.md5(model.read_bytes()).hexdigest() != frozen["md5"]:
        pytest.skip("the workspace's model is not the committed one (make repro or dvc checkout)")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()[:12]
    assert {s for _, s in version_a} | set(freeze) == {sha}
    for path, fmt, _, quoted in shipped:
        assert digest(ROOT / "models" / "export" / path)[0][:12] == quoted, fmt


def test_the_bench_times_quoted_are_the_last_runs():
    """`make bench` and `make bench-quick` say how long they take (Makefile help, the
    development and benchmarks guides): the times bench/results.md records of their last runs."""
    results = (ROOT / "bench" / "results.md").read_text()
    full = int(re.search(r"Run took (\d+) s\.", results).group(1))
    quick = int(re.search(r"`make bench-quick` \(.*\) last took (\d+) s", results).group(1))
    minutes = {"bench": round(full / 60), "bench-quick": round(quick / 60)}
    makefile = (ROOT / "Makefile").read_text()
    for target, expected in minutes.items():
        help_line = re.search(rf"^## (.*)\n{re.escape(target)}:", makefile, re.M).group(1)
        assert f"about {expected} minutes on 2 cores" in help_line, (target, help_line)
        row = re.search(
            rf"^\| `make {target}` \|.*$", (ROOT / "docs/development.md").read_text(), re.M
        )
        assert f"about {expected} minutes on 2 cores" in row.group(0), row.group(0)
    guide = " ".join((ROOT / "docs" / "benchmarks.md").read_text().split())
    assert f"`make bench` (about {minutes['bench']} minutes on 2 cores" in guide
    assert f"`make bench-quick`, about {minutes['bench-quick']} minutes," in guide


def test_the_release_tag_message_shown_is_the_committed_metrics():
    """docs/releasing.md shows the tag message `release` writes: the committed metrics'."""
    import json

    from tfpersist.versions.releasing import message

    page = (ROOT / "docs" / "releasing.md").read_text()
    shown = page.split("$ git tag -l --format='%(contents)' digits@v1.0.0\n")[1].split("\n$ ")[0]
    metrics = json.loads((ROOT / "metrics" / "evaluate.json").read_text())
    assert shown + "\n" == message("digits", "v1.0.0", metrics)


@pytest.mark.slow
@pytest.mark.parametrize(
    "guide, change",
    [
        ("cli.md", {"train": {"learning_rate": 0.003}}),  # dvc exp run -S train.learning_rate=…
        ("releasing.md", {"model": {"mlp": {"hidden": [32]}}}),  # sed … hidden: [32]
    ],
)
def test_the_second_version_each_guide_compares_is_what_the_pipeline_trains(
    tmp_path, guide, change
):
    """The walk-throughs compare the committed model (A: held above) with a second version
    trained at other params (B): its size, sha256 and test accuracy as the guide quotes them
    are what `dvc repro` trains here at those params, on any CPU (the pin and the cut)."""
    import hashlib
    import json
    import sys

    import numpy as np

    from tfpersist.running.runner import Runner
    from tfpersist.tables import data, records

    from conftest import copy_repo, run

    repo = copy_repo(tmp_path / "repo", change)
    run([f"{sys.prefix}/bin/dvc", "repro", "freeze"], repo)
    model = repo / "models" / "frozen" / "model.pb"
    text = (ROOT / "docs" / guide).read_text()
    quoted = re.search(r"^B: \S+ \(frozen GraphDef, (\d+) bytes, sha256 (\w{12})\)$", text, re.M)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()[:12]
    assert quoted.groups() == (str(model.stat().st_size), sha), (guide, quoted.group(0))
    prepared = repo / "data" / "prepared"
    x, y = records.read_split(prepared, "test", data.read_schema(prepared))
    names = json.loads((repo / "models" / "frozen" / "model.json").read_text())["signature"]
    outputs = [o["name"] for o in names["outputs"]]
    with Runner.from_frozen(model) as runner:
        predicted = runner.run(x, names["inputs"][0]["name"], outputs)["predictions"]
    accuracy = float(np.mean(predicted == y))
    shown = re.search(r"^  accuracy: A 0\.\d+, B (0\.\d+)$", text, re.M).group(1)
    assert shown == f"{accuracy:.4f}", (guide, shown, accuracy)


def test_the_serving_speed_quoted_is_the_benchs():
    """docs/shipping.md's serving figures (req/s, ratios to MLflow) are bench/results.md's rows."""
    results = (ROOT / "bench" / "results.md").read_text()
    rows = {
        label: re.search(
            rf"^\| serve the {label}.*?\| ([\d,]+) req/s.*?\| ([\d.]+)× \|", results, re.M
        )
        for label in ("ONNX export", "frozen .pb")
    }
    mlflow = re.search(r"MLflow 3\.17 models serve on the ONNX export: ([\d,]+) req/s", results)
    speed = " ".join((ROOT / "docs" / "shipping.md").read_text().split("- **Speed**")[1].split())
    onnx, pb = rows["ONNX export"].groups(), rows["frozen .pb"].groups()
    assert f"the ONNX export {onnx[0]} req/s" in speed and f"**{onnx[1]}× MLflow" in speed
    assert f"the frozen `.pb` {pb[0]} req/s, **{pb[1]}×**" in speed
    assert f"({mlflow.group(1)} req/s," in speed


def test_the_ratios_the_benchmarks_guide_quotes_are_in_the_results():
    """Every ratio docs/benchmarks.md gives for this machine's last run is one bench/results.md
    holds (the AMD EPYC figures it names as such are from the notes kept below the table)."""
    results = (ROOT / "bench" / "results.md").read_text()
    held = set(re.findall(r"(\d+\.\d+)×", results))
    guide = (ROOT / "docs" / "benchmarks.md").read_text()
    quoted = re.findall(r"(\d+\.\d\d)×", guide)
    assert len(quoted) >= 15
    assert [q for q in quoted if q not in held] == []
