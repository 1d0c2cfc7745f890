"""Round trips: training checkpoint → release checkpoint → frozen .pb, same outputs each way."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tfpersist.core.errors import TfpersistError
from tfpersist.freezing import freeze
from tfpersist.graph import graphdefs, signature
from tfpersist.pipeline import release, training
from tfpersist.running.runner import Runner
from tfpersist.tables.data import Schema

from test_training import MODEL, fit

OUTPUTS = ["predictions", "probabilities"]


@pytest.fixture(scope="module")
def released(tmp_path_factory, digits):
    x, y = digits
    root = tmp_path_factory.mktemp("release")
    splits = {
        "train": training.Split(x[:300], y[:300]),
        "val": training.Split(x[300:400], y[300:400]),
    }
    fit(root / "train", splits)
    schema = Schema("label", [f"f{i}" for i in range(64)], 10)
    sig = release.export_inference_checkpoint(root / "train", root / "checkpoint", MODEL, schema)
    return root, sig, x[400:500]


def test_release_checkpoint_layout_and_signature(released):
    root, sig, _ = released
    names = sorted(p.name for p in (root / "checkpoint").iterdir())
    assert names == [
        "checkpoint",
        "model.ckpt.data-00000-of-00001",
        "model.ckpt.index",
        "model.ckpt.meta",
        "signature.json",
    ]
    assert (root / "checkpoint" / "checkpoint").read_text().splitlines()[
        0
    ] == 'model_checkpoint_path: "model.ckpt"'
    assert json.loads((root / "checkpoint" / "signature.json").read_text()) == sig
    assert sig["inputs"][0] == {
        "name": "input_holder",
        "tensor": "input_holder:0",
        "dtype": "float32",
        "shape": [None, 64],
    }
    assert [(o["name"], o["dtype"], o["shape"]) for o in sig["outputs"]] == [
        ("predictions", "int64", [None]),
        ("probabilities", "float32", [None, 10]),
    ]


def test_release_graph_is_clean(tf, released):
    root, _, _ = released
    meta = tf.compat.v1.MetaGraphDef()
    meta.ParseFromString((root / "checkpoint" / "model.ckpt.meta").read_bytes())
    ops = {n.op for n in meta.graph_def.node}
    names = [n.name for n in meta.graph_def.node]
    assert not [n for n in names if "Adam" in n or "global_step" in n or "best_val" in n]
    assert not [o for o in ops if o.startswith("StatelessRandom")]
    assert not [n.device for n in meta.graph_def.node if n.device]
    reader = tf.train.load_checkpoint(str(root / "checkpoint" / "model.ckpt"))
    assert all(name.startswith("model/") for name in reader.get_variable_to_shape_map())


def test_training_and_release_and_frozen_agree(released):
    root, _, x = released
    with Runner.from_checkpoint(root / "train" / "best") as trained:
        want = trained.run(x, "input_holder", OUTPUTS)
    with Runner.from_checkpoint(root / "checkpoint") as release:
        got = release.run(x, "input_holder", OUTPUTS)
    np.testing.assert_array_equal(got["probabilities"], want["probabilities"])
    graph_def = freeze.freeze_checkpoint(root / "checkpoint", OUTPUTS)
    card = freeze.write(graph_def, root / "model.pb", OUTPUTS, root / "model.json")
    assert not [n.op for n in graph_def.node if "Variable" in n.op or n.op == "ReadVariableOp"]
    with Runner.from_frozen(root / "model.pb") as frozen:
        out = frozen.run(x, "input_holder", OUTPUTS)  # same batch size: same kernels, same bits
        batched = frozen.run(x, "input_holder", OUTPUTS, batch_size=7)
    np.testing.assert_array_equal(out["probabilities"], got["probabilities"])
    np.testing.assert_array_equal(out["predictions"], got["predictions"])
    # Another batch size may block the matmul differently (AVX2: ~1e-7 apart): close, not equal.
    np.testing.assert_allclose(batched["probabilities"], got["probabilities"], rtol=0, atol=1e-6)
    assert card["parameters"] == 64 * 8 + 8 + 8 * 10 + 10 + 2 * 64
    assert card == json.loads((root / "model.json").read_text())


def test_freeze_is_deterministic_and_loads_in_a_fresh_process(released, tmp_path):
    root, _, _ = released
    for name in ("a.pb", "b.pb"):
        freeze.write(
            freeze.freeze_checkpoint(root / "checkpoint", OUTPUTS), tmp_path / name, OUTPUTS
        )
    assert (tmp_path / "a.pb").read_bytes() == (tmp_path / "b.pb").read_bytes()
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "g = tf.compat.v1.GraphDef(); g.ParseFromString(open(sys.argv[1], 'rb').read())\n"
        "graph = tf.Graph()\n"
        "with graph.as_default(): tf.import_graph_def(g, name='')\n"
        "with tf.compat.v1.Session(graph=graph) as s:\n"
        "    p = s.run('probabilities:0', {'input_holder:0': np.zeros((2, 64), np.float32)})\n"
        "print(p.shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.pb")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "(2, 10)"


def test_export_refuses_a_checkpoint_of_another_architecture(released, tmp_path):
    root, _, _ = released
    other = MODEL.__class__("linear", "input_holder", "predictions", "probabilities", {})
    schema = Schema("label", [f"f{i}" for i in range(64)], 10)
    with pytest.raises(
        TfpersistError,
        match=r"variable 'model/logits/weights' \[64, 10\] is shape \[8, 10\] .* model.arch=linear",
    ):
        release.export_inference_checkpoint(root / "train", tmp_path / "out", other, schema)
    assert not (tmp_path / "out").exists()


def test_broken_files_give_clear_errors(released, tmp_path):
    root, _, _ = released
    (tmp_path / "garbage.pb").write_bytes(b"\x00\xff" * 50)
    with pytest.raises(TfpersistError, match=r"garbage.pb: not a GraphDef"):
        graphdefs.read_graph_def(tmp_path / "garbage.pb")
    good = graphdefs.serialize(freeze.freeze_checkpoint(root / "checkpoint", OUTPUTS))
    (tmp_path / "cut.pb").write_bytes(good[: len(good) // 2])
    with pytest.raises(TfpersistError, match=r"cut.pb: (not a GraphDef|the graph does not import)"):
        Runner.from_frozen(tmp_path / "cut.pb")
    broken = tmp_path / "ckpt"
    shutil.copytree(root / "checkpoint", broken)
    data = broken / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(TfpersistError, match=r"cannot restore the checkpoint"):
        freeze.freeze_checkpoint(broken, OUTPUTS)


def test_streaming_freeze_writes_the_same_bytes_as_the_session_path(released, tmp_path):
    root, _, _ = released
    card, _ = freeze.freeze_to_file(
        root / "checkpoint", tmp_path / "streamed.pb", OUTPUTS, card_path=tmp_path / "streamed.json"
    )
    session = freeze.freeze_checkpoint(root / "checkpoint", OUTPUTS)
    extra = signature.release_data(root / "checkpoint")  # freeze_to_file adds the columns
    assert extra["features"] and extra["num_classes"] == 10
    expected = freeze.write(
        session, tmp_path / "session.pb", OUTPUTS, tmp_path / "session.json", extra
    )
    assert (tmp_path / "streamed.pb").read_bytes() == (tmp_path / "session.pb").read_bytes()
    assert card == expected
    assert not list(tmp_path.glob(".*.tmp"))


def test_large_tensors_are_spliced_byte_exact(tf, tmp_path):
    """Weights over streaming.SPLICE_BYTES are written from their own buffer: same bytes."""
    from tfpersist.freezing import streaming

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 300], name="x")
        w = v1.get_variable("big/w", [300, 200], initializer=v1.random_normal_initializer(seed=1))
        b = v1.get_variable("big/b", [200], dtype=tf.float64, initializer=v1.ones_initializer())
        tf.identity(tf.cast(tf.matmul(x, w), tf.float64) + b, name="out")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, str(tmp_path / "model.ckpt"))
    assert streaming.SPLICE_BYTES < 300 * 200 * 4
    card, _ = freeze.freeze_to_file(
        tmp_path, tmp_path / "a.pb", ["out"], card_path=tmp_path / "a.json"
    )
    freeze.write(
        freeze.freeze_checkpoint(tmp_path, ["out"]), tmp_path / "b.pb", ["out"], tmp_path / "b.json"
    )
    assert (tmp_path / "a.pb").read_bytes() == (tmp_path / "b.pb").read_bytes()
    assert card["parameters"] == 300 * 200 + 200


def test_a_cli_frozen_release_knows_its_columns_and_predicts_headerless_rows(
    released, tmp_path, capsys
):
    from tfpersist import cli

    root, _, x = released
    out = tmp_path / "cli.pb"
    assert (
        cli.main(
            ["freeze", str(root / "checkpoint"), "--output-nodes", "predictions", "--out", str(out)]
        )
        == 0
    )
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["signature"]["features"] == [f"f{i}" for i in range(64)]
    # Five rows of raw features without a header line: five predictions, none lost.
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in x[:5]) + "\n")
    capsys.readouterr()
    assert cli.main(["predict", str(out), "--input", str(rows)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "predictions" and len(lines) == 6


def test_evaluation_in_chunks_equals_one_pass(released, tmp_path, monkeypatch):
    """The evaluate stage runs the test split a chunk at a time (bounded memory): with
    chunks of 7 rows, every metric — the shipped formats' too — and the confusion rows equal
    one pass's."""
    from tfpersist.pipeline import evaluation, prepare
    from tfpersist.pipeline import export as export_stage
    from tfpersist.pipeline.params import ExportParams, PrepareParams

    from conftest import ROOT

    root, _, _ = released
    prepared = tmp_path / "prepared"
    prepare.prepare(ROOT / "data/raw/digits.csv", prepared, PrepareParams("label", 0.1, 0.03, 1))
    frozen = tmp_path / "model.pb"
    freeze.write(freeze.freeze_checkpoint(root / "checkpoint", OUTPUTS), frozen, OUTPUTS)
    params = ExportParams(("tflite", "onnx"), "none", 1e-5, 1e-3)
    from tfpersist import shipping

    sig = shipping.Signature(["input_holder"], OUTPUTS)
    export_stage.ship_frozen(frozen, prepared, tmp_path / "export", sig, params)
    seen, whole = {}, evaluation.CHUNK
    for chunk in (whole, 7):
        monkeypatch.setattr(evaluation, "CHUNK", chunk)
        metrics, details = tmp_path / f"m{chunk}.json", tmp_path / f"d{chunk}.json"
        confusion = tmp_path / f"c{chunk}.csv"
        args = (frozen, root / "checkpoint", prepared, MODEL, metrics, details, confusion)
        evaluation.evaluate(*args, export_dir=tmp_path / "export", export=params)
        seen[chunk] = (metrics.read_text(), details.read_text(), confusion.read_text())
    assert seen[7] == seen[whole]
    metrics, details = json.loads(seen[7][0]), json.loads(seen[7][1])
    assert metrics["rows"] == len(np.load(prepared / "test.npy")) > 7 * 5
    assert details["export"]["onnx"]["accuracy"] == metrics["accuracy"]
