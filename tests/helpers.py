"""Small helpers for the tests (no fixtures)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np


def tree_digest(root: Path) -> dict[str, str]:
    """relative path → sha256 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_in_both_modes(script: Path, *args: str, env: dict | None = None) -> None:
    """Run a model-writing script once per TF behaviour (``tf1``, ``tf2``: process-wide, so
    one process each), side by side; fail with its output if either fails."""
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), *map(str, args), mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("tf1", "tf2")
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, f"{' '.join(writer.args)}\n{out}\n{err[-4000:]}"


def rows_csv(path: Path, rows) -> Path:
    """``rows`` as a CSV with columns a, b, c, …"""
    header = ",".join("abcdefghijklmnopqrstuvwxyz"[: len(rows[0])])
    path.write_text(header + "\n" + "\n".join(",".join(f"{v:.5f}" for v in r) for r in rows) + "\n")
    return path


# -- small frozen models ---------------------------------------------------------------------

RNG = np.random.default_rng(7)
W1 = RNG.normal(size=(4, 6)).astype(np.float32)
W2 = RNG.normal(size=(6, 3)).astype(np.float32)
X = RNG.normal(size=(32, 4)).astype(np.float32)


def two_layer(tf, path, w1=W1, w2=W2, activation="Relu"):
    """x [?,4] → dense_1 (matmul, relu or ``activation``) → dense_2 → probabilities, classes;
    frozen to ``path`` and loaded as compare.Model."""
    from tfpersist.freezing import freeze, models

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        with tf.name_scope("dense_1"):
            h = tf.matmul(x, tf.constant(w1, name="w"), name="mm")
            h = tf.nn.relu(h, name="act")
        with tf.name_scope("dense_2"):
            logits = tf.matmul(h, tf.constant(w2, name="w"), name="mm")
        tf.nn.softmax(logits, name="probabilities")
        tf.argmax(logits, 1, name="classes")
    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        if node.name == "dense_1/act":
            node.op = activation
    freeze.write(graph_def, path, ["probabilities", "classes"])
    return models.load_model(path, ["probabilities", "classes"])


def conv_net(tf):
    """x [?,8,8,3] → conv 3x3x3x4 → bias → relu → pool 2 → reshape → matmul 64x5 → softmax."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    rng = np.random.default_rng(0)
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 3], name="x")
        with tf.name_scope("block"):
            k = tf.constant(rng.normal(size=(3, 3, 3, 4)).astype(np.float32), name="kernel")
            c = tf.nn.conv2d(x, k, 1, "SAME", name="conv")
            c = tf.nn.bias_add(c, tf.constant(np.arange(4, dtype=np.float32)), name="bias")
            c = tf.nn.relu(c, name="relu")
            p = tf.nn.max_pool2d(c, 2, 2, "VALID", name="pool")
        with tf.name_scope("head"):
            f = tf.reshape(p, [-1, 64], name="flat")
            w = tf.constant(np.linspace(-1, 1, 320, dtype=np.float32).reshape(64, 5), name="w")
            m = tf.matmul(f, w, name="mm")
            s = tf.nn.softmax(tf.add(m, 1.0, name="add"), name="probabilities")
        tf.cumsum(s, axis=1, name="cumulative")  # no FLOP rule
    return graph


_CLI_LOOP = r"""
import contextlib, io, json, os, sys
from tfpersist import cli
out = sys.stdout
for line in sys.stdin:
    cwd, argv = json.loads(line)
    os.chdir(cwd)
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            code = cli.main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    out.write(json.dumps([code, o.getvalue(), e.getvalue()]) + "\n")
    out.flush()
"""


class CLIProcess:
    """One long-lived process running ``tfpersist`` commands in turn: each gets its own
    working directory and stdout/stderr, all share one import of TensorFlow, DVC and GTO
    (for tests whose commands use DVC or GTO, which do not mix with pytest's capture in the
    test process itself)."""

    def __init__(self, env: dict):
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CLI_LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def __call__(self, cwd, *args) -> subprocess.CompletedProcess:
        import json

        argv = [str(a) for a in args]
        self._process.stdin.write(json.dumps([str(cwd), argv]) + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise AssertionError(f"the CLI process died running tfpersist {' '.join(argv)}")
        code, out, err = json.loads(answer)
        return subprocess.CompletedProcess(["tfpersist", *argv], code, out, err)

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=60)
