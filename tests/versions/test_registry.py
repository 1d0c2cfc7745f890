"""Versions by name: GTO's tags made with GTO's own CLI, resolved with GTO's API (not DVC's
stage lookup, which answers a rolled-back version), fetched through DVC."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tfpersist.freezing import freeze

from conftest import env, run
from helpers import CLIProcess

GTO = f"{sys.prefix}/bin/gto"
DVC = f"{sys.prefix}/bin/dvc"
PB = "models/frozen/model.pb"
DVC_YAML = """artifacts:
  digits:
    path: models/frozen/model.pb
    type: model
"""


@pytest.fixture(scope="module")
def cli():
    """The CLI in its own process (in this one, pytest's capture and DVC's and GTO's first
    use do not mix: pytest's capture file ends up closed)."""
    process = CLIProcess(env())
    yield process
    process.close()


@pytest.fixture
def tfpersist(cli):
    def call(repo, *args) -> tuple[int, str, str]:
        done = cli(repo, *args)
        return done.returncode, done.stdout, done.stderr

    return call


def small_model(tf, path, scale: float):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2) * scale, name="w")
        tf.identity(tf.nn.softmax(tf.matmul(x, w)), name="scores")
    freeze.write(graph.as_graph_def(), path, ["scores"])


@pytest.fixture(scope="module")
def registry(tf, tmp_path_factory):
    """v1.0.0 and v1.1.0 registered, both assigned to prod, then v1.1.0 rolled back."""
    repo = tmp_path_factory.mktemp("registry")
    run(["git", "init", "-q"], repo)
    run([DVC, "init", "-q"], repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "models/frozen").mkdir(parents=True)
    for version, scale in (("v1.0.0", 1.0), ("v1.1.0", 2.0)):
        small_model(tf, repo / PB, scale)
        run([DVC, "add", "-q", PB], repo)
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", f"model {version}"], repo)
        run([GTO, "register", "digits", "HEAD", "--version", version], repo)
        run([GTO, "assign", "digits", "--version", version, "--stage", "prod"], repo)
    run([GTO, "deprecate", "digits", "v1.1.0", "prod"], repo)  # the rollback
    return repo


def test_a_stage_follows_gto_after_a_rollback_where_dvc_does_not(registry, tfpersist):
    show = "import dvc.api; print(dvc.api.artifacts_show('digits', stage='prod')['rev'])"
    dvcs = run([sys.executable, "-c", show], registry).stdout.strip()
    taken_back = run(["git", "rev-parse", "digits@v1.1.0^{}"], registry).stdout.strip()
    assert dvcs == taken_back  # DVC's answer: the version that was rolled back
    args = ["compare", "digits#prod", "digits@v1.0.0", "--format", "json", "--input"]
    np.save(registry / "x.npy", np.ones((2, 3), np.float32))
    code, out, err = tfpersist(registry, *args, f"x={registry / 'x.npy'}")
    assert code == 0, err
    assert "digits#prod → digits@v1.0.0 (" in err
    report = json.loads(out)
    assert report["identical"] is True, report
    code, out, err = tfpersist(
        registry, "compare", "digits@v1.0.0", "digits@latest", "--input", f"x={registry / 'x.npy'}"
    )
    assert code == 0, err
    assert "digits@latest → digits@v1.1.0 (" in err
    assert "A: digits@v1.0.0" in out and "B: digits@v1.1.0" in out and "weights:   DIFFERS" in out


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("digits@v9.9.9", "'digits' has no registered version v9.9.9 (versions: v1.1.0, v1.0.0)"),
        ("digits#staging", "no version of 'digits' is in stage 'staging' (stages: prod)"),
        ("nosuch@latest", "nosuch@latest: no artifact 'nosuch' (artifacts: digits)"),
    ],
)
def test_an_unknown_name_version_or_stage_is_one_line_listing_what_exists(
    registry, tfpersist, spec, said
):
    code, _, err = tfpersist(registry, "compare", spec, PB)
    assert code == 1
    err = err.strip()
    assert len(err.splitlines()) == 1 and said in err, err
