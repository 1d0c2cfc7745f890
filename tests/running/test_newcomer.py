"""What a newcomer trips on: each ends in a working command or one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.freezing import freeze


def tfpersist(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def model(tf, tmp_path_factory):
    """A frozen .pb with a float, an int and a string output; and a checkpoint of it."""
    root = tmp_path_factory.mktemp("newcomer")
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.get_variable("w", initializer=np.arange(6, dtype=np.float32).reshape(3, 2))
        scores = tf.identity(tf.matmul(x, w), name="scores")
        tf.argmax(scores, 1, name="label")
        tf.strings.as_string(tf.argmax(scores, 1), name="text")
        with v1.Session(graph=graph) as sess:
            sess.run(w.initializer)
            v1.train.Saver().save(sess, str(root / "ckpt" / "model.ckpt"))
    assert (
        tfpersist(
            "freeze",
            root / "ckpt",
            "--output-nodes",
            "scores,label,text",
            "--out",
            root / "model.pb",
        )
        == 0
    )
    np.save(root / "x.npy", np.ones((4, 3), np.float32))
    return root


def test_predict_writes_every_output_format(model, tmp_path, capsys):
    x = model / "x.npy"
    assert tfpersist("predict", model / "model.pb", "--input", x, "--out", tmp_path / "y.npz") == 0
    with np.load(tmp_path / "y.npz") as got:
        assert sorted(got.files) == ["label", "scores", "text"]
    assert tfpersist("predict", model / "model.pb", "--input", x, "--out", tmp_path / "y.json") == 0
    got = json.loads((tmp_path / "y.json").read_text())
    assert got["text"] == ["1"] * 4 and got["label"] == [1] * 4  # string outputs as text
    assert tfpersist("predict", model / "model.pb", "--input", x, "--out", tmp_path / "y.npy") == 1
    err = capsys.readouterr().err
    assert ".npy holds one array but the model gives 3 outputs (scores, label, text)" in err
    assert "--output-nodes" in err and not (tmp_path / "y.npy").exists()
    assert (
        tfpersist(
            "predict",
            model / "model.pb",
            "--input",
            x,
            "--output-nodes",
            "label",
            "--out",
            tmp_path / "y.npy",
        )
        == 0
    )
    assert np.load(tmp_path / "y.npy").tolist() == [1] * 4


def test_a_one_row_npy_gets_one_line_and_a_checkpoint_runs_like_its_pb(model, tmp_path, capsys):
    np.save(tmp_path / "row.npy", np.ones(3, np.float32))
    assert tfpersist("predict", model / "model.pb", "--input", tmp_path / "row.npy") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "takes 2-d arrays [?, 3], the data is 1-d [3]" in err
    assert "reshape it to [1, ...]" in err
    # a checkpoint is frozen in memory (under the same checks) and run: the .pb's outputs
    args = ["--input", model / "x.npy", "--output-nodes", "scores,label"]
    assert tfpersist("predict", model / "ckpt", *args, "--out", tmp_path / "c.json") == 0
    assert tfpersist("predict", model / "model.pb", *args, "--out", tmp_path / "p.json") == 0
    assert (tmp_path / "c.json").read_text() == (tmp_path / "p.json").read_text()


def test_inspect_into_a_closed_pipe_is_quiet(model):
    """`tfpersist inspect … | head -1`: the reader leaves early; no BrokenPipeError."""
    shell = f"{sys.prefix}/bin/tfpersist inspect {model / 'model.pb'} | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True)
    assert result.stdout.startswith(str(model / "model.pb"))
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    assert "``" not in capsys.readouterr().out


def test_predict_feeds_a_model_with_two_inputs(tf, tmp_path, capsys):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        a = v1.placeholder(tf.float32, [None, 2], name="a")
        b = v1.placeholder(tf.float32, [None, 2], name="b")
        tf.reduce_sum(a * b, 1, name="dot")
    freeze.write(graph.as_graph_def(), tmp_path / "two.pb", ["dot"])
    np.save(tmp_path / "a.npy", np.array([[1, 2], [3, 4]], np.float32))
    np.save(tmp_path / "b.npy", np.array([[5, 6], [7, 8]], np.float32))
    args = ["predict", tmp_path / "two.pb", "--input", f"a={tmp_path / 'a.npy'}"]
    assert tfpersist(*args, "--input", f"b={tmp_path / 'b.npy'}", "--out", tmp_path / "y.json") == 0
    assert json.loads((tmp_path / "y.json").read_text()) == {"dot": [17.0, 53.0]}
    assert tfpersist(*args) == 1  # b not fed: TF's own words, on one line
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "must feed a value for placeholder tensor 'b'" in err
    assert tfpersist("predict", tmp_path / "two.pb", "--input", tmp_path / "a.npy") == 1
    assert "--input NAME=FILE.npy" in capsys.readouterr().err
    np.save(tmp_path / "short.npy", np.ones((1, 2), np.float32))
    assert tfpersist(*args, "--input", f"b={tmp_path / 'short.npy'}") == 1
    assert "different numbers of rows (a: 2, b: 1)" in capsys.readouterr().err


def test_runs_go_through_a_prepared_callable_with_session_runs_answers(model):
    """Repeated runs use C++'s MakeCallable (TF's own ``make_callable`` with feeds is a
    ``Session.run`` in disguise, ~5x slower a call): after the first run ``Session.run`` is
    not called at all, and the answers (floats, ints, strings) are ``Session.run``'s."""
    from tfpersist.running.runner import Runner

    x = np.random.default_rng(0).random((5, 3), dtype=np.float32)
    outputs = ["scores", "label", "text"]
    with Runner.from_frozen(model / "model.pb") as runner:
        fetches = [runner.graph.get_tensor_by_name(f"{n}:0") for n in outputs]
        expected = runner.sess.run(fetches, {runner.graph.get_tensor_by_name("x:0"): x})
        runner.run(x, "x", outputs)
        session_run = runner.sess.run

        def refused(*args, **kwargs):
            raise AssertionError("Session.run called")

        runner.sess.run = refused
        try:
            got = runner.run(x, "x", outputs)
            with pytest.raises(AssertionError, match=r"Session\.run called"):
                runner.run(x.astype(np.float64), "x", outputs)  # to convert: Session.run's
        finally:
            runner.sess.run = session_run
        for name, want in zip(outputs, expected, strict=True):
            assert got[name].dtype == want.dtype and np.array_equal(got[name], want), name


def test_a_prepared_split_is_read_as_its_features(model, tmp_path, capsys):
    """data/prepared/test.npy (records x, y) predicts like its x; another structured array
    is one line."""
    from tfpersist.tables import records

    rows = np.zeros(4, records.dtype(3))
    rows["x"], rows["y"] = 1.0, [0, 1, 0, 1]
    np.save(tmp_path / "test.npy", rows)
    args = ["--output-nodes", "scores", "--out"]
    assert (
        tfpersist(
            "predict",
            model / "model.pb",
            "--input",
            tmp_path / "test.npy",
            *args,
            tmp_path / "a.json",
        )
        == 0
    )
    assert (
        tfpersist(
            "predict", model / "model.pb", "--input", model / "x.npy", *args, tmp_path / "b.json"
        )
        == 0
    )
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    np.save(tmp_path / "odd.npy", np.zeros(2, [("a", "<f4"), ("b", "<f4")]))
    assert tfpersist("predict", model / "model.pb", "--input", tmp_path / "odd.npy") == 1
    assert "a structured array (fields a, b)" in capsys.readouterr().err
