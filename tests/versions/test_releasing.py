"""release, promote and demote on a real registry: a bare origin, a working clone that releases
to a real S3 remote (SeaweedFS on loopback), GTO's own CLI reading the tags back, and a
fresh clone with an empty DVC cache that fetches, inspects, predicts and serves by name."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from tfpersist.freezing import freeze
from tfpersist.versions import remote

from conftest import env, run
from helpers import CLIProcess

GTO = f"{sys.prefix}/bin/gto"
DVC = f"{sys.prefix}/bin/dvc"
DVC_YAML = """artifacts:
  digits:
    path: model.pb
    type: model
    desc: a tiny scorer
metrics:
  - metrics.json
"""


def model(tf, path, scale: float, features: int = 3) -> None:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, features], name="x")
        w = np.arange(features * 2, dtype=np.float32).reshape(features, 2) * scale
        tf.identity(tf.matmul(x, tf.constant(w, name="w")), name="scores")
    freeze.write(graph.as_graph_def(), path, ["scores"])


def commit(tf, work, scale, accuracy, log_loss, features=3) -> None:
    model(tf, work / "model.pb", scale, features)
    (work / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "log_loss": log_loss}))
    run([DVC, "add", "-q", "model.pb"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", f"model x{scale}"], work)


@pytest.fixture(scope="module")
def registry(tf, tmp_path_factory):
    """Every step's result, run once: releases refused and made, promotions gated, a demotion,
    a deregistration with GTO's CLI, and a fresh clone using the versions by name."""
    root = tmp_path_factory.mktemp("releasing")
    store = remote.start(root / "store", remote.free_port())
    said = {}
    tfpersist = CLIProcess(env())
    try:
        origin, work, fresh = root / "origin.git", root / "work", root / "fresh"
        run(["git", "init", "-q", "--bare", str(origin)], root)
        run(["git", "clone", "-q", str(origin), str(work)], root)
        run([DVC, "init", "-q"], work)
        run([DVC, "remote", "add", "-d", "storage", "s3://tfpersist/dvc"], work)
        for key, value in [
            ("endpointurl", store.endpoint),
            ("access_key_id", "tfpersist"),
            ("secret_access_key", "tfpersist-local"),
        ]:
            run([DVC, "remote", "modify", "storage", key, value], work)
        (work / "dvc.yaml").write_text(DVC_YAML)
        commit(tf, work, 1.0, 0.90, 0.30)
        run(["git", "push", "-q", "origin", "HEAD"], work)

        (work / "stray.txt").write_text("x")
        said["dirty"] = tfpersist(work, "release", "digits")
        (work / "stray.txt").unlink()
        said["unpushed"] = tfpersist(work, "release", "digits")
        said["v0.1.0"] = tfpersist(work, "release", "digits", "--push")
        said["again"] = tfpersist(work, "release", "digits")
        said["message"] = run(
            ["git", "tag", "-l", "--format=%(contents)", "digits@v0.1.0"], work
        ).stdout
        said["first"] = tfpersist(
            work, "promote", "digits", "v0.1.0", "prod", "--gate", "accuracy>=0.85",
            "--gate", "accuracy>=baseline", "--push",
        )  # fmt: skip
        commit(tf, work, 2.0, 0.88, 0.31)
        said["v0.2.0"] = tfpersist(work, "release", "digits", "--push")
        said["worse"] = tfpersist(
            work, "promote", "digits", "v0.2.0", "prod", "--gate", "accuracy>=baseline", "--push"
        )
        said["within"] = tfpersist(
            work, "promote", "digits", "latest", "prod", "--gate", "accuracy>=baseline-0.05",
            "--gate", "log_loss<=baseline*1.1", "--push",
        )  # fmt: skip
        commit(tf, work, 3.0, 0.95, 0.20, features=4)
        said["v1.0.0"] = tfpersist(work, "release", "digits", "--bump-major", "--push")
        said["signature"] = tfpersist(work, "promote", "digits", "v1.0.0", "prod")
        said["demote"] = tfpersist(work, "demote", "digits", "prod", "--push")
        said["gto prod"] = run([GTO, "show", "digits#prod", "--ref"], work).stdout.strip()
        run([GTO, "deprecate", "digits", "v1.0.0", "--push"], work)  # deregisters
        show = "import dvc.api; print(dvc.api.artifacts_show('digits')['rev'])"
        said["dvc latest"] = run([sys.executable, "-c", show], work).stdout.strip()
        said["v1.0.0 sha"] = run(["git", "rev-parse", "digits@v1.0.0^{}"], work).stdout.strip()
        said["latest"] = tfpersist(work, "inspect", "digits@latest")
        said["deregistered"] = tfpersist(work, "inspect", "digits@v1.0.0")

        run(["git", "clone", "-q", str(origin), str(fresh)], root)
        said["cache before"] = (fresh / ".dvc" / "cache").exists()
        said["fresh inspect"] = tfpersist(fresh, "inspect", "digits#prod", "--json")
        np.save(fresh / "x.npy", np.ones((2, 3), np.float32))
        said["fresh predict"] = tfpersist(
            fresh, "predict", "digits@v0.2.0", "--input", "x.npy", "--out", "y.json"
        )
        said["fresh y"] = (fresh / "y.json").read_text() if (fresh / "y.json").exists() else ""
        said["served"] = serve_following(fresh, "digits#prod")
    finally:
        tfpersist.close()
        assert remote.stop(store)
    return said


def serve_following(cwd, spec: str) -> tuple[str, dict, dict, str]:
    """``tfpersist serve SPEC`` as a process: its first line, an answer, then — once GTO's
    CLI has moved the stage to v0.2.0 — the answer that follows it, and what it said."""
    port = remote.free_port()
    args = ["serve", spec, "--name", "digits", "--port", str(port), "--grpc-port", "-1"]
    server = subprocess.Popen(
        [f"{sys.prefix}/bin/tfpersist", *args, "--poll-seconds", "0.2"],
        cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/models/digits:predict"
    body = json.dumps({"instances": [[1.0, 1.0, 1.0]]}).encode()

    def ask() -> dict:
        with urllib.request.urlopen(urllib.request.Request(url, body), timeout=30) as answer:
            return json.loads(answer.read())

    try:
        first = server.stdout.readline()
        if not first.startswith("serving "):
            server.terminate()
            return first + server.stdout.read() + server.stderr.read(), {}, {}, ""
        before = ask()
        run([GTO, "assign", "digits", "--version", "v0.2.0", "--stage", "prod"], cwd)
        after = before
        for _ in range(150):  # bounded: up to 30 s
            after = ask()
            if after != before:
                break
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return first, before, after, server.stderr.read()


def one_line(done) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_release_refuses_a_dirty_tree_unpushed_outputs_and_a_second_release(registry):
    assert "the git tree is not clean (stray.txt)" in one_line(registry["dirty"])
    assert "not on the DVC remote 'storage': model.pb" in one_line(registry["unpushed"])
    assert "already registered as digits@v0.1.0" in one_line(registry["again"])


def test_release_registers_gto_tags_with_the_metrics_in_the_message(registry):
    for version in ("v0.1.0", "v0.2.0", "v1.0.0"):
        done = registry[version]
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"released digits@{version} ("), done.stdout
    assert registry["message"].splitlines()[0] == "digits@v0.1.0"
    assert "accuracy: 0.9" in registry["message"] and "log_loss: 0.3" in registry["message"]


def test_promote_holds_the_candidate_to_gates_against_the_stage(registry):
    first = registry["first"]
    assert first.returncode == 0, first.stderr
    assert "pass  accuracy>=0.85: 0.9 >= 0.85" in first.stdout
    assert "skip  accuracy>=baseline: no version in the stage" in first.stdout
    assert "promoted digits@v0.1.0 to 'prod' (first in this stage)" in first.stdout
    worse = one_line(registry["worse"])
    assert "digits@v0.2.0 not promoted to 'prod'" in worse
    assert "accuracy>=baseline fails: 0.88 is not >= 0.9" in worse
    within = registry["within"]
    assert within.returncode == 0, within.stderr
    assert "promoted digits@v0.2.0 to 'prod' (was digits@v0.1.0)" in within.stdout
    assert "pass  log_loss<=baseline*1.1: 0.31 <= 0.33" in within.stdout
    assert "signature differs" in one_line(registry["signature"])


def test_demote_falls_back_to_the_version_before_as_gto_reads_it(registry):
    done = registry["demote"]
    assert done.returncode == 0, done.stderr
    assert "digits@v0.2.0 taken out of 'prod'; digits#prod → digits@v0.1.0" in done.stdout
    assert registry["gto prod"] == "digits@v0.1.0"


def test_a_deregistered_version_is_not_latest_as_dvc_would_answer(registry):
    assert registry["dvc latest"] == registry["v1.0.0 sha"]  # DVC: the deregistered one
    latest = registry["latest"]
    assert latest.returncode == 0, latest.stderr
    assert "digits@latest → digits@v0.2.0 (" in latest.stderr
    assert latest.stdout.startswith("digits@v0.2.0: ")
    assert "has no registered version v1.0.0" in one_line(registry["deregistered"])


def test_a_fresh_clone_fetches_inspects_predicts_and_serves_by_name(registry):
    assert registry["cache before"] is False
    shown = registry["fresh inspect"]
    assert shown.returncode == 0, shown.stderr
    assert "digits#prod → digits@v0.1.0 (" in shown.stderr
    assert json.loads(shown.stdout)["path"] == "digits@v0.1.0"
    assert registry["fresh predict"].returncode == 0, registry["fresh predict"].stderr
    scores = np.asarray(json.loads(registry["fresh y"])["scores"])
    np.testing.assert_allclose(scores, np.ones((2, 3)) @ (np.arange(6).reshape(3, 2) * 2.0))
    first, before, after, said = registry["served"]
    assert first.startswith("serving digits#prod "), first
    np.testing.assert_allclose(before["predictions"], [[6.0, 9.0]])  # v0.1.0
    np.testing.assert_allclose(after["predictions"], [[12.0, 18.0]])  # the stage moved: v0.2.0
    assert "digits#prod → digits@v0.2.0 (" in said and "version 2000 AVAILABLE" in said, said
    assert "version 1000 unloaded" in said, said


@pytest.mark.parametrize(
    ("a", "b", "compared"),
    [
        ("digits#prod", "digits@v1.0.0", "'digits#prod' 'digits@v1.0.0'"),
        ("v1.0", "", "'models/frozen/model.pb@v1.0' models/frozen/model.pb"),
        ("digits@latest", "HEAD~1", "'digits@latest' 'models/frozen/model.pb@HEAD~1'"),
    ],
)
def test_make_compare_takes_registered_versions_and_revisions(a, b, compared):
    from conftest import ROOT

    args = ["make", "-s", "-n", "compare", f"A={a}"] + ([f"B={b}"] if b else [])
    line = run(args, ROOT).stdout.strip().splitlines()[-1]
    assert f"tfpersist compare {compared} --localize" in line, line
