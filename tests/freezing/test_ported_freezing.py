"""`tfpersist freeze` on the models TensorFlow's own freezing tests build (tests/ported/cases.py).

Each case is a checkpoint or SavedModel written by a live TF1 or TF2 program, with the live
model's outputs for fixed inputs. Freezing must give a graph that imports on its own, holds no
variable, read, assign, save or restore op (function bodies included), and reproduces the live
outputs with the same shapes and dtypes. Cases whose output depends on a variable assignment
must be refused with one line, writing nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.graph import graphdefs

from conftest import ROOT
from helpers import write_in_both_modes

PORTED = ROOT / "tests" / "ported"
sys.path.insert(0, str(PORTED))
from cases import CASES  # noqa: E402

NAMES = list(CASES)

# Ops that hold, read, write, save or restore state: none may survive freezing.
STATE_OPS = {
    "Variable",
    "VariableV2",
    "TemporaryVariable",
    "DestroyTemporaryVariable",
    "VarHandleOp",
    "_VarHandlesOp",
    "ReadVariableOp",
    "_ReadVariablesOp",
    "VarIsInitializedOp",
    "IsVariableInitialized",
    "DestroyResourceOp",
    "ResourceGather",
    "ResourceGatherNd",
    "CountUpTo",
    "ResourceCountUpTo",
    "Save",
    "SaveV2",
    "SaveSlices",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
    "MergeV2Checkpoints",
}
STATE_OP_PREFIXES = (
    "Assign",
    "Scatter",
    "ResourceScatter",
    "ResourceApply",
    "ResourceSparseApply",
    "Apply",
    "SparseApply",
)


def is_state_op(op: str) -> bool:
    return op in STATE_OPS or op.startswith(STATE_OP_PREFIXES)


def state_ops(graph_def) -> list[str]:
    """'node (Op)' for every state op in the graph, then in its function library (the
    SavedModel's own __traced_save/__traced_restore functions last)."""
    found = [f"{n.name} ({n.op})" for n in graph_def.node if is_state_op(n.op)]
    functions = sorted(graph_def.library.function, key=lambda f: "_traced_" in f.signature.name)
    for function in functions:
        name = function.signature.name
        found += [f"{name}/{n.name} ({n.op})" for n in function.node_def if is_state_op(n.op)]
    return found


def load_case(root: Path, name: str) -> tuple[dict, dict]:
    spec = json.loads((root / name / "spec.json").read_text())
    with np.load(root / name / "expected.npz") as data:
        expected = {key: data[key] for key in data.files}
    return spec, expected


def check_frozen(tf, graph_def, spec: dict, expected: dict, fetch: dict, feeds: dict) -> None:
    """Assert a frozen GraphDef behaves like the live model; AssertionError says how not.

    ``fetch``: {expected key: tensor name in the frozen graph}; ``feeds``: {tensor name: npz
    key}. Used by the test below and by tests/ported/score.py for the other freezers.
    """
    left = state_ops(graph_def)
    assert not left, f"{len(left)} state ops left in the frozen graph: {', '.join(left[:3])}"
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.import_graph_def(graph_def, name="")
        except (ValueError, TypeError) as e:
            raise AssertionError(f"the frozen graph does not import: {first_line(e)}") from None
    try:
        tensors = {key: graph.get_tensor_by_name(name) for key, name in fetch.items()}
        feed_dict = {graph.get_tensor_by_name(name): expected[key] for name, key in feeds.items()}
    except (KeyError, ValueError) as e:
        raise AssertionError(f"missing input or output: {first_line(e)}") from None
    config = tf.compat.v1.ConfigProto()
    config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = 1
    with tf.compat.v1.Session(graph=graph, config=config) as sess:
        try:
            got = sess.run(tensors, feed_dict)
        except tf.errors.OpError as e:
            raise AssertionError(f"the frozen graph does not run: {first_line(e)}") from None
    for key, tensor in tensors.items():
        want = expected[key]
        dtype = spec["dtypes"][key]
        assert tensor.dtype.name == dtype, f"{key}: dtype {tensor.dtype.name}, live {dtype}"
        value = np.asarray(got[key])
        assert value.shape == want.shape, f"{key}: shape {value.shape}, live {want.shape}"
        if tensor.dtype == tf.string:
            assert value.astype(bytes).tolist() == want.tolist(), f"{key}: strings differ"
            continue
        assert value.dtype == want.dtype, f"{key}: numpy dtype {value.dtype}, live {want.dtype}"
        try:
            if np.issubdtype(want.dtype, np.floating):
                np.testing.assert_allclose(value, want, atol=1e-6, err_msg=key)
            else:
                np.testing.assert_array_equal(value, want, err_msg=key)
        except AssertionError as e:
            diff = np.max(np.abs(value.astype(np.float64) - want.astype(np.float64)), initial=0)
            raise AssertionError(
                f"{key}: values differ from the live model's (max |diff| {diff:.3g}){e}"
            ) from None


_NOISE = ("Graph execution error", "Detected at node", "Node:", "File ", "[[", "In function")


def first_line(error: BaseException) -> str:
    """The line that says what went wrong (TF's OpError text opens with boilerplate)."""
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_NOISE)]
    return (useful or lines or [type(error).__name__])[0][:300]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """Every case, written once by two writer processes (TF1 and TF2 behaviour) side by side."""
    root = tmp_path_factory.mktemp("ported")
    write_in_both_modes(PORTED / "cases.py", root)
    return root


@pytest.mark.parametrize("name", NAMES)
def test_freezes_like_the_live_model(tf, written, name, tmp_path, capsys):
    spec, expected = load_case(written, name)
    out = tmp_path / "frozen.pb"
    args = ["freeze", str(written / name / spec["source"]), "--out", str(out)]
    if spec["outputs"]:
        args += ["--output-nodes", ",".join(spec["outputs"])]
    code = cli.main(args + spec["extra_args"])
    err = capsys.readouterr().err.strip()
    if spec["refuse"]:
        assert code == 1, f"expected a refusal (exit 1), got exit {code}: {err}"
        assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{err}"
        assert not out.exists(), "a refused freeze wrote a .pb"
        return
    assert code == 0, f"tfpersist freeze exited {code}: {err}"
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(out.read_bytes())
    # every node carries only attributes its op defines (TensorFlow's op registry)
    assert graphdefs.undefined_attrs(graph_def) == []
    if spec["outputs"]:
        names = spec["outputs"]
    else:  # a SavedModel's signature outputs: the card names them, in signature-key order
        card = json.loads(out.with_suffix(".json").read_text())
        names = [o["name"] for o in card["signature"]["outputs"]]
        keys = spec["expected"]
        assert len(names) == len(keys), f"card outputs {names}, signature keys {keys}"
    fetch = {key: f"{node}:0" for key, node in zip(spec["expected"], names, strict=True)}
    feeds = {f"{node}:0": key for node, key in spec["inputs"].items()}
    check_frozen(tf, graph_def, spec, expected, fetch, feeds)


STREAM_WITHOUT_TENSORFLOW = """
import json, sys
from tfpersist.formats import checkpoints
from tfpersist.freezing import freeze, streaming
from tfpersist.graph import graphdefs, surgery
streamed = []
for name, source, outputs, values, out in json.loads(sys.stdin.read()):
    meta = graphdefs.read_meta_graph(checkpoints.resolve(source))
    if {n.op for n in meta.graph_def.node} & surgery.FUNCTIONAL_CONDITIONALS:
        continue  # lowered by Grappler: TensorFlow
    src = freeze.checkpoint_source(source, outputs, values)
    reader = freeze._bundle(src.prefix)
    if reader and streaming.plan(src.pruned, reader, src.graph_def, src.saver_def):
        freeze.freeze_to_file(source, out, outputs, values=values, card_path=out + ".json")
        streamed.append(name)
    assert "tensorflow" not in sys.modules, f"{name}: TensorFlow imported"
print(json.dumps(streamed))
"""


def test_streaming_and_session_paths_write_the_same_bytes(tf, written, tmp_path):
    """Where a checkpoint's weights can stream from its files, the .pb — written in a
    process that never imports TensorFlow (unless Grappler must lower a TF2 conditional) —
    equals the session path's byte for byte, and so does its card; where TF's own converter
    fails, streaming is the only path."""
    import subprocess

    from tfpersist import formats
    from tfpersist.core.errors import TfpersistError
    from tfpersist.freezing import freeze

    from conftest import env

    jobs = []
    for name in NAMES:
        spec, _ = load_case(written, name)
        source = written / name / spec["source"]
        if spec["refuse"] or formats.detect(source) != formats.CHECKPOINT:
            continue
        extra = spec["extra_args"]
        values = dict(a.split("=", 1) for a in extra[1::2]) if extra[:1] == ["--set"] else {}
        jobs.append([name, str(source), spec["outputs"], values, str(tmp_path / f"{name}.pb")])
    result = subprocess.run(
        [sys.executable, "-c", STREAM_WITHOUT_TENSORFLOW],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    streamed = json.loads(result.stdout)
    compared, session_fails = [], []
    for name, source, outputs, values, out in jobs:
        if name not in streamed:
            freeze.freeze_to_file(source, out, outputs, values=values, card_path=out + ".json")
        try:
            session = freeze.freeze_checkpoint(source, outputs, values)
        except TfpersistError:
            session_fails.append(name)
            continue
        data = graphdefs.serialize(session)
        assert Path(out).read_bytes() == data, f"{name}: streamed and session bytes differ"
        card = freeze.card(session, data, outputs, freeze.signature.release_data(source))
        card.update(freeze.checkpoint_source(source, outputs, values).record)
        assert json.loads(Path(out + ".json").read_text()) == json.loads(json.dumps(card)), name
        compared.append(name)
    assert len(compared) >= 25 and len(streamed) >= 15, (compared, streamed)
    assert set(session_fails) <= set(streamed), "a case neither path could freeze"


def test_every_ported_checkpoint_reads_without_tensorflow_as_with_it(tf, written):
    """bundles.py against TensorFlow's reader on the variables of every ported case: V2
    checkpoints and SavedModels' variables (V1-format checkpoints have no .index)."""
    from tfpersist import formats
    from tfpersist.core import layout
    from tfpersist.formats import checkpoints

    sys.path.insert(0, str(ROOT / "tests" / "formats"))
    from test_bundles import assert_reads_like_tensorflow

    read = 0
    for name in NAMES:
        spec, _ = load_case(written, name)
        source = written / name / spec["source"]
        kind = formats.detect(source, describable=True)
        if kind == formats.SAVED_MODEL:
            prefix = source / layout.SAVED_MODEL_VARIABLES
        elif kind in (formats.CHECKPOINT, formats.TF2_CHECKPOINT):
            prefix = checkpoints.prefix_of(source) if kind == formats.TF2_CHECKPOINT else None
            prefix = prefix or checkpoints.resolve(source)
        else:
            continue
        if not Path(f"{prefix}.index").is_file():
            continue
        assert_reads_like_tensorflow(tf, prefix)
        read += 1
    assert read >= 40, read
