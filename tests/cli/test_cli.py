"""`tfpersist freeze / inspect / predict` on checkpoints other projects wrote (tests/foreign)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.freezing import freeze
from tfpersist.graph import graphdefs
from tfpersist.running.runner import Runner

from conftest import BIN, ROOT, env

FOREIGN = ROOT / "tests" / "foreign" / "writers.py"
sys.path.insert(0, str(FOREIGN.parent))
from writers import TF1_KINDS, TF2_KINDS  # noqa: E402

KINDS = TF1_KINDS + TF2_KINDS
VARIABLE_OPS = {
    "VariableV2",
    "Variable",
    "VarHandleOp",
    "ReadVariableOp",
    "Assign",
    "AssignVariableOp",
    "AssignAdd",
    "AssignSub",
    "RestoreV2",
    "SaveV2",
}


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("foreign")
    for kinds in (TF1_KINDS, TF2_KINDS):
        subprocess.run(
            [sys.executable, str(FOREIGN), str(root), *kinds], check=True, capture_output=True
        )
    return root


def spec(root: Path, kind: str) -> tuple[dict, dict]:
    expected = dict(np.load(root / kind / "expected.npz"))
    return json.loads((root / kind / "spec.json").read_text()), expected


def source(root: Path, kind: str) -> Path:
    return root / kind / "saved" if kind == "savedmodel" else root / kind


def tfpersist(*args: str) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def frozen(foreign, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("frozen")
    paths = {}
    for kind in KINDS:
        s, _ = spec(foreign, kind)
        nodes = [] if kind == "savedmodel" else ["--output-nodes", ",".join(s["outputs"])]
        assert tfpersist("freeze", source(foreign, kind), *nodes, "--out", out / f"{kind}.pb") == 0
        paths[kind] = out / f"{kind}.pb"
    return paths


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_outputs_equal_the_live_session(foreign, frozen, kind):
    s, expected = spec(foreign, kind)
    graph_def = graphdefs.read_graph_def(frozen[kind])
    assert not {n.op for n in graph_def.node} & VARIABLE_OPS
    assert not [n.device for n in graph_def.node if n.device]
    with Runner.from_graph_def(graph_def) as model:
        got = model.run(expected["input"], s["input"], s["outputs"])
    for name in s["outputs"]:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-6, err_msg=name)
    card = json.loads(frozen[kind].with_suffix(".json").read_text())
    assert [o["name"] for o in card["signature"]["outputs"]] == s["outputs"]


def test_assignments_the_live_graph_waits_for_are_left_out_and_named(foreign, tmp_path, capsys):
    """Moving-average updates hung on a functional tf.cond as control inputs (the live graph
    runs them on every call): the frozen graph holds the checkpoint's values (outputs equal
    the live session's: test_frozen_outputs_equal_the_live_session), and freeze says which
    assignments it left out — in one line and in the card. (Refused for a round: the suite's
    batch norms all assigned inside the branch.)"""
    out = tmp_path / "bn.pb"
    src = source(foreign, "bn_updates_outside_v2")
    assert tfpersist("freeze", src, "--output-nodes", "logits", "--out", out) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "left out" in line]
    assert said == [
        f"{out}: left out 2 assignment(s) the live graph runs before computing logits "
        "(AssignVariableOp, AssignVariableOp_1: control dependencies); the frozen graph holds "
        "the checkpoint's values of bn/moving_mean, bn/moving_variance"
    ]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["assignments_not_run"] == {
        "AssignVariableOp": "bn/moving_mean",
        "AssignVariableOp_1": "bn/moving_variance",
    }
    ops = {n.op for n in graphdefs.read_graph_def(out).node}
    assert not ops & VARIABLE_OPS


@pytest.mark.parametrize("kind", ["bn_cond_v1", "bn_cond_v2", "mlp_adam_v1", "savedmodel"])
def test_freezing_is_deterministic(foreign, frozen, kind, tmp_path):
    s, _ = spec(foreign, kind)
    nodes = [] if kind == "savedmodel" else ["--output-nodes", ",".join(s["outputs"])]
    assert tfpersist("freeze", source(foreign, kind), *nodes, "--out", tmp_path / "again.pb") == 0
    assert (tmp_path / "again.pb").read_bytes() == frozen[kind].read_bytes()


def test_frozen_graphs_import_in_a_fresh_process(frozen):
    code = (
        "import sys, tensorflow as tf\n"
        "for path in sys.argv[1:]:\n"
        "    g = tf.compat.v1.GraphDef(); g.ParseFromString(open(path, 'rb').read())\n"
        "    with tf.Graph().as_default(): tf.import_graph_def(g, name='')\n"
        "print('imported', len(sys.argv) - 1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, frozen.values())], capture_output=True, text=True
    )
    assert result.stdout.strip() == f"imported {len(frozen)}", result.stderr[-2000:]


def test_tflite_accepts_the_frozen_graphs(tf, foreign, frozen):
    for kind in KINDS:
        s, expected = spec(foreign, kind)
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(frozen[kind]),
            [s["input"]],
            s["outputs"],
            {s["input"]: list(expected["input"].shape)},
        )
        assert converter.convert(), kind


def test_training_flag_pinned_explicitly_and_bad_pins(foreign, tmp_path, capsys):
    def freeze_bn(pin: str, out: Path) -> int:
        bn = foreign / "bn_cond_v1"
        return tfpersist("freeze", bn, "--output-nodes", "logits", "--set", pin, "--out", out)

    assert freeze_bn("is_training=false", tmp_path / "bn.pb") == 0
    assert freeze_bn("is_trainin=false", tmp_path / "x.pb") == 1
    assert "--set is_trainin: 'is_trainin' is not in the graph" in capsys.readouterr().err
    assert freeze_bn("is_training=maybe", tmp_path / "x.pb") == 1
    assert "cannot read 'maybe' as bool" in capsys.readouterr().err
    assert tfpersist("freeze", foreign / "bn_cond_v1", "--set", "novalue") == 2
    assert not (tmp_path / "x.pb").exists()


def test_optimize_keeps_outputs(foreign, tmp_path):
    s, expected = spec(foreign, "mlp_adam_v1")
    out = tmp_path / "opt.pb"
    assert (
        tfpersist(
            "freeze",
            foreign / "mlp_adam_v1",
            "--output-nodes",
            "probs,classes:0",
            "--optimize",
            "--out",
            out,
        )
        == 0
    )
    with Runner.from_frozen(out) as model:
        got = model.run(expected["input"], s["input"], s["outputs"])
    np.testing.assert_allclose(got["probs"], expected["probs"], atol=1e-6)
    assert graphdefs.undefined_attrs(graphdefs.read_graph_def(out)) == []


def test_inspect_json_finds_inputs_outputs_variables_devices(foreign, capsys):
    assert tfpersist("inspect", foreign / "mlp_adam_v1", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "TF1 checkpoint"
    inputs = {i["name"]: i for i in info["inputs"]}
    assert inputs["features"]["shape"] == [None, 5] and inputs["training"]["has_default"]
    # The real outputs first; nothing of the gradients, optimizer or saver.
    assert info["likely_outputs"][:2] == ["probs", "classes"]
    assert not [n for n in info["likely_outputs"] if "gradients" in n or "Adam" in n]
    variables = {v["name"]: v["shape"] for v in info["variables"]}
    assert variables["l1/w"] == [5, 16] and "l1/w/Adam" in variables
    assert info["devices"] and info["control_flow"] == ["cond (v1)"]
    assert tfpersist("inspect", foreign / "rnn_while_v1", "--json") == 0
    assert "while loop (v1)" in json.loads(capsys.readouterr().out)["control_flow"]
    # An output that only feeds the loss (and a batch norm whose cond updates its moving
    # averages) is still found, before the loss; no cond bookkeeping node is listed.
    assert tfpersist("inspect", foreign / "bn_cond_v1", "--json") == 0
    assert json.loads(capsys.readouterr().out)["likely_outputs"] == ["logits", "Mean"]
    assert tfpersist("inspect", foreign / "savedmodel" / "saved") == 0
    text = capsys.readouterr().out
    assert "signature 'serving_default':" in text and "output scores: float32 [?, 3]" in text


def test_inspect_warns_about_ops_that_touch_files(tf, tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.string, [], name="x")
        with tf.control_dependencies([tf.io.write_file(str(tmp_path / "pwned"), x)]):
            tf.identity(x, name="y")
    freeze.write(graph.as_graph_def(), tmp_path / "evil.pb", ["y"])
    assert tfpersist("inspect", tmp_path / "evil.pb", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["unsafe_ops"] == ["WriteFile"]
    assert info["unsafe_risks"] == {"WriteFile": "writes files"}
    assert not (tmp_path / "pwned").exists()


def test_predict_round_trips(foreign, frozen, tmp_path, capsys):
    _, expected = spec(foreign, "mlp_adam_v1")
    np.save(tmp_path / "x.npy", expected["input"])
    assert (
        tfpersist(
            "predict",
            frozen["mlp_adam_v1"],
            "--input",
            tmp_path / "x.npy",
            "--out",
            tmp_path / "y.json",
            "--batch-size",
            "3",
        )
        == 0
    )
    got = json.loads((tmp_path / "y.json").read_text())
    np.testing.assert_allclose(got["probs"], expected["probs"], atol=1e-6)
    assert got["classes"] == expected["classes"].tolist()
    assert (
        tfpersist(
            "predict",
            frozen["mlp_adam_v1"],
            "--input",
            tmp_path / "x.npy",
            "--output-nodes",
            "probs",
            "--out",
            tmp_path / "y.npy",
        )
        == 0
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected["probs"], atol=1e-6)
    import pandas as pd

    pd.DataFrame(expected["input"], columns=list("abcde")).to_csv(tmp_path / "x.csv", index=False)
    capsys.readouterr()
    assert tfpersist("predict", frozen["mlp_adam_v1"], "--input", tmp_path / "x.csv") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "probs_0,probs_1,probs_2,classes" and len(table) == 8


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["freeze", "{seed}", "--output-nodes", "predictons"],
            1,
            r"output node 'predictons' is not in the graph \(closest: predictions",
        ),
        (
            ["freeze", "{empty}", "--output-nodes", "a"],
            1,
            r"empty: a directory with neither a SavedModel .* nor a checkpoint",
        ),
        (
            ["freeze", "{nometa}/model.ckpt-0", "--output-nodes", "a"],
            1,
            r"incomplete: missing model.ckpt-0.meta",
        ),
        (["freeze", "{cut_data}", "--output-nodes", "add"], 1, r"cannot restore the checkpoint"),
        (
            ["freeze", "{garbage_index}", "--output-nodes", "add"],
            1,
            r"cannot restore the checkpoint",
        ),
        (["inspect", "{cut_pb}"], 1, r"not a GraphDef|holds no graph nodes"),
        (["predict", "{cut_pb}", "--input", "x.npy"], 1, r"not a GraphDef|holds no graph nodes"),
        (["freeze", "{seed}"], 1, r"name the output nodes \(--output-nodes a,b\)"),
        (["predict", "{seed}"], 2, r"the following arguments are required: --input"),
        (["frobnicate"], 2, r"invalid choice: 'frobnicate'"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    foreign, frozen, tmp_path, capsys, args, code, message
):
    import re
    import shutil

    places = {"seed": foreign / "seed_v1", "empty": tmp_path / "empty"}
    places["empty"].mkdir()
    for name, damage in [("nometa", "meta"), ("cut_data", "data"), ("garbage_index", "index")]:
        target = tmp_path / name
        shutil.copytree(foreign / "seed_v1", target)
        victim = next(p for p in target.iterdir() if damage in p.name)
        if damage == "meta":
            victim.unlink()
        elif damage == "data":
            victim.write_bytes(victim.read_bytes()[:3])
        else:
            victim.write_bytes(b"\x00garbage" * 8)
        places[name] = target
    (tmp_path / "cut.pb").write_bytes(frozen["mlp_adam_v1"].read_bytes()[:77])
    places["cut_pb"] = tmp_path / "cut.pb"
    out = tmp_path / "out.pb"
    argv = [a.format(**places) for a in args] + (["--out", str(out)] if args[0] == "freeze" else [])
    assert tfpersist(*argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("tfpersist: error: ") and re.search(message, err), err
    assert not out.exists()


def test_over_the_protobuf_limit_says_so(monkeypatch, frozen):
    monkeypatch.setattr(graphdefs, "PROTOBUF_LIMIT", 1000)
    with pytest.raises(freeze.TfpersistError, match=r"over protobuf's 2 GiB limit .* SavedModel"):
        graphdefs.serialize(graphdefs.read_graph_def(frozen["mlp_adam_v1"]))


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from tfpersist import cli\n"
        "try:\n"
        "    cli.main(['freeze', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("False")


def test_stage_scripts_load_tensorflow_only_after_the_cpu_pin():
    """Importing a stage script must not import TensorFlow: _stage.run pins oneDNN's
    instruction set first, and the pin only holds if TF is not loaded yet."""
    code = (
        "import importlib, sys\n"
        "sys.path.insert(0, 'stages')\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    assert 'tensorflow' not in sys.modules, name\n"
        "print('ok')\n"
    )
    names = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "_stage")
    assert "export" in names and "train" in names
    result = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True
    )
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_freezing_through_a_session_refuses_graphs_that_write_files(tf, tmp_path):
    """The session path runs part of the graph (restore, variable reads): checked first."""
    v1 = tf.compat.v1
    target = tmp_path / "written"
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.get_variable("w", [2, 2], initializer=v1.ones_initializer())
        with tf.control_dependencies([tf.io.write_file(str(target), "pwned")]):
            tf.matmul(x, w.read_value(), name="y")
        with v1.Session(graph=graph) as sess:
            sess.run(w.initializer)
            v1.train.Saver().save(sess, str(tmp_path / "model.ckpt"))
    with pytest.raises(
        freeze.TfpersistError, match=r"refusing to run .*WriteFile \(writes files\)"
    ):
        freeze.freeze_checkpoint(tmp_path, ["y"])
    assert not target.exists()


READ_WITHOUT_TENSORFLOW = """
import sys
from tfpersist import cli
source, out, outputs = sys.argv[1:4]
steps = [["inspect", source]]
if outputs:
    steps += [
        ["freeze", source, "--output-nodes", outputs, "--out", out],
        ["inspect", out, "--json"],
        ["compare", source, out, "--output-nodes", outputs, "--no-outputs", "--fail-on", "any"],
    ]
for step in steps:
    assert cli.main(step) == 0, step
    if "tensorflow" in sys.modules:
        print("imported by", step[0], file=sys.stderr)
        break
print("tensorflow" in sys.modules)
"""


def test_inspect_freeze_and_compare_run_without_tensorflow(foreign, frozen, tmp_path):
    """What only reads a model — inspect, freeze of a checkpoint, compare without running —
    never imports TensorFlow's Python layer (~2.4 s): protos, the checkpoint files and the
    C library's op registry and shape inference answer instead. Only lowering a TF2
    conditional (Grappler) needs it. The .pb written is the one the test process wrote."""
    imported = {}
    for kind in KINDS:
        s, _ = spec(foreign, kind)
        out = tmp_path / f"{kind}.pb"
        outputs = "" if kind == "savedmodel" else ",".join(s["outputs"])
        result = subprocess.run(
            [sys.executable, "-c", READ_WITHOUT_TENSORFLOW, source(foreign, kind), out, outputs],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env(),
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        imported[kind] = result.stdout.strip().splitlines()[-1] == "True"
        if outputs:
            assert out.read_bytes() == frozen[kind].read_bytes(), kind
    conditionals = ["bn_cond_v2", "bn_updates_outside_v2"]
    assert [k for k, v in imported.items() if v] == conditionals, imported


def test_freeze_prints_its_lines_and_nothing_of_tensorflows_logs(foreign, tmp_path):
    """A freeze that lowers a TF2 conditional (Grappler: C++ "Starting new session" lines) and
    folds variables in a session (Python deprecation warnings) prints tfpersist's lines only,
    TF_CPP_MIN_LOG_LEVEL unset; the user's own setting still shows TensorFlow's log."""
    src = source(foreign, "bn_updates_outside_v2")
    argv = [str(BIN / "tfpersist"), "freeze", str(src), "--output-nodes", "logits"]
    e = env()
    e.pop("TF_CPP_MIN_LOG_LEVEL", None)
    quiet = subprocess.run(
        [*argv, "--out", str(tmp_path / "a.pb")], env=e, capture_output=True, text=True
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert all(line.startswith(str(tmp_path)) for line in quiet.stdout.splitlines())
    e["TF_CPP_MIN_LOG_LEVEL"] = "0"
    loud = subprocess.run(
        [*argv, "--out", str(tmp_path / "b.pb")], env=e, capture_output=True, text=True
    )
    assert loud.returncode == 0 and "single_machine.cc" in loud.stderr
