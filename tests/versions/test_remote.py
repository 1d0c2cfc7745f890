"""The DVC remote on a real S3 server (SeaweedFS on loopback): push, pull into an empty cache,
compare PATH@REV from the remote, and truthful messages when no remote has a version."""

from __future__ import annotations

import shutil
import sys

import numpy as np

from tfpersist import cli
from tfpersist.freezing import freeze
from tfpersist.versions import remote

from conftest import run


def dvc(cwd, *args, check=True):
    return run([f"{sys.prefix}/bin/dvc", *args], cwd, check=check)


def git(cwd, *args):
    return run(["git", *args], cwd)


def small_model(tf, path, scale: float) -> None:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2) * scale, name="w")
        tf.identity(tf.matmul(x, w), name="scores")
    freeze.write(graph.as_graph_def(), path, ["scores"])


def tfpersist(*args) -> int:
    return cli.main([str(a) for a in args])


def test_push_pull_and_compare_versions_through_the_remote(tf, tmp_path, monkeypatch, capsys):
    store = remote.start(tmp_path / "store", remote.free_port())
    origin = tmp_path / "origin"
    origin.mkdir()
    try:
        git(origin, "init", "-q")
        dvc(origin, "init", "-q")
        dvc(origin, "remote", "add", "-d", "storage", "s3://tfpersist/dvc")
        for key, value in [
            ("endpointurl", store.endpoint),
            ("access_key_id", "tfpersist"),
            ("secret_access_key", "tfpersist-local"),
        ]:
            dvc(origin, "remote", "modify", "storage", key, value)
        small_model(tf, origin / "model.pb", 1.0)
        dvc(origin, "add", "-q", "model.pb")
        git(origin, "add", "-A")
        git(origin, "commit", "-qm", "v1")
        git(origin, "tag", "v1")
        small_model(tf, origin / "model.pb", 2.0)
        dvc(origin, "add", "-q", "model.pb")
        git(origin, "commit", "-qam", "v2")
        assert "2 files pushed" in dvc(origin, "push", "--all-tags", "--all-branches").stdout

        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(origin), str(clone))
        assert not (clone / ".dvc" / "cache").exists()
        monkeypatch.chdir(clone)
        capsys.readouterr()
        # Both versions come from the remote: nothing is cached in the clone.
        assert tfpersist("compare", "model.pb@v1", "model.pb@HEAD", "--format", "json") == 0
        assert '"max_abs": 5.0' in capsys.readouterr().out  # weights 0..5 vs 0..10
        dvc(clone, "pull", "-q")
        assert (clone / "model.pb").read_bytes() == (origin / "model.pb").read_bytes()
        assert dvc(clone, "status", "-q", check=False).returncode == 0
    finally:
        assert remote.stop(store)
    assert remote.status(store.directory) is None
    assert not remote.responds(store.port)

    # The remote is down: say so, and how to start it.
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(origin), str(fresh))
    monkeypatch.chdir(fresh)
    assert tfpersist("compare", "model.pb@v1", "model.pb@HEAD") == 1
    err = capsys.readouterr().err
    assert f"the DVC remote 'storage' ({store.endpoint}) does not answer" in err
    assert "make remote-up" in err and "--rebuild" in err

    # No remote at all: no 'dvc pull' advice.
    dvc(fresh, "remote", "remove", "storage")
    assert tfpersist("compare", "model.pb@v1", "model.pb@HEAD") == 1
    err = capsys.readouterr().err
    assert "no DVC remote is configured" in err and "dvc pull" not in err
    shutil.rmtree(fresh)


def test_remote_command_up_status_down(tmp_path, capsys):
    directory, port = tmp_path / "store", str(remote.free_port())
    assert tfpersist("remote", "status", "--dir", directory) == 1
    assert tfpersist("remote", "up", "--dir", directory, "--port", port) == 0
    assert tfpersist("remote", "status", "--dir", directory) == 0
    assert "up on http://127.0.0.1:" in capsys.readouterr().out
    assert tfpersist("remote", "down", "--dir", directory) == 0
    assert "remote: stopped" in capsys.readouterr().out
    assert tfpersist("remote", "status", "--dir", directory) == 1
    assert not remote.responds(int(port))


def test_a_release_against_a_store_that_is_not_up_says_how_to_start_it(tmp_path):
    """This clone's local store not started: release (and release --push) say so first, in one
    line with `make remote-up` and how a team points the remote elsewhere — not boto's "Could
    not connect to the endpoint URL". (A process of its own: DVC's in-process repo closes the
    test's captured output.)"""
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    dvc(tmp_path, "remote", "add", "-d", "storage", "s3://tfpersist/dvc")
    dvc(tmp_path, "remote", "modify", "storage", "endpointurl", f"http://127.0.0.1:{port}")
    for push in ([], ["--push"]):
        said = run(
            [f"{sys.prefix}/bin/tfpersist", "release", "digits", *push], tmp_path, check=False
        )
        assert said.returncode == 1 and len(said.stderr.strip().splitlines()) == 1, said.stderr
        line = said.stderr
        assert f"the DVC remote 'storage' (http://127.0.0.1:{port}) does not answer" in line
        assert "'make remote-up'" in line and "dvc remote modify --local storage" in line
