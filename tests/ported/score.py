"""Score three freezers on the ported cases: tfpersist, TensorFlow's freeze_graph, the plain recipe.

Run as ``python tests/ported/score.py [--root DIR] [CASE ...]``. Without ``--root`` the cases
are written first (cases.py, both modes side by side) into a temp dir. Each freezer runs in its
own worker process (restarted past a case that crashes it) and every result is judged by the
test's own criterion (tests/freezing/test_ported_freezing.py: ``check_frozen``): outputs equal
to the live model's, same shapes and dtypes, the graph imports alone and holds no
variable/read/assign/save/restore op; a must-refuse case passes only if the freezer fails.

- tfpersist: ``tfpersist.cli.main(["freeze", ...])`` in-process, the case's extra arguments too.
- freeze_graph: ``tensorflow.python.tools.freeze_graph.freeze_graph`` as its users call it: the
  checkpoint prefix with its ``.meta`` (binary, devices cleared), or ``input_saved_model_dir``
  with the SavedModel's tags; output names as given, or the serving signature's output ops.
- plain: ``import_meta_graph`` + ``saver.restore`` (or ``saved_model.loader.load``) in a
  Session, then ``tf.compat.v1.graph_util.convert_variables_to_constants``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = ("tfpersist", "freeze_graph", "plain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="cases already written by cases.py")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_args()
    pin_cpu()
    if args.worker:
        return worker(args.worker, args.root, args.results, args.cases)
    sys.path.insert(0, str(HERE))
    from cases import CASES

    names = args.cases or list(CASES)
    with tempfile.TemporaryDirectory(prefix="ported-score-") as tmp:
        tmp = Path(tmp)
        root = args.root or write_cases(tmp / "cases", {CASES[n][0] for n in names})
        started = time.monotonic()
        results = {tool: run_tool(tool, root, tmp, names) for tool in TOOLS}
        elapsed = time.monotonic() - started
    report(names, CASES, results, elapsed)
    return 0


def pin_cpu() -> None:
    """tfpersist's default oneDNN cap, set before TF loads, inherited by writers and workers.

    The cases are written and all three freezers run under the same instruction set as the
    tfpersist CLI (it refuses to run in a process whose TensorFlow was loaded otherwise).
    """
    try:
        from tfpersist.numerics import runtime
    except ImportError:  # an older tfpersist without the pin
        return
    runtime.pin(os.environ.get("TFPERSIST_CPU_ISA", runtime.DEFAULT))


def write_cases(root: Path, modes: set[str]) -> Path:
    writers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "cases.py"), str(root), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in sorted(modes)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=600)
        if writer.returncode:
            sys.exit(f"cases.py failed:\n{stderr[-4000:]}")
    return root


def run_tool(tool: str, root: Path, tmp: Path, names: list[str]) -> dict[str, tuple[bool, str]]:
    """{case: (passed, reason)} from worker processes, restarted after a crash."""
    results: dict[str, tuple[bool, str]] = {}
    remaining = list(names)
    while remaining:
        path = tmp / f"{tool}-{len(results)}.jsonl"
        cmd = [sys.executable, __file__, "--worker", tool, "--root", str(root)]
        cmd += ["--results", str(path), *remaining]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
            code, tail = proc.returncode, (proc.stderr.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            code, tail = "timeout", "no result in 600 s"
        started = None
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            if "start" in record:
                started = record["start"]
            else:
                results[record["case"]] = (record["ok"], record["reason"])
                started = None
        if started is not None:  # the worker died inside this case
            results[started] = (False, f"crashed the process (exit {code}): {tail[:200]}")
        elif code != 0 and len(results) < len(names):
            sys.exit(f"{tool} worker failed outside a case (exit {code}): {tail}")
        remaining = [n for n in names if n not in results]
    return results


def report(names, cases, results, elapsed: float) -> None:
    width = max(len(n) for n in names)
    print(f"{'case':<{width}}  {'tfpersist':<9}  {'freeze_graph':<12}  {'plain':<5}  origin")
    for name in names:
        marks = ["pass" if results[t][name][0] else "FAIL" for t in TOOLS]
        print(f"{name:<{width}}  {marks[0]:<9}  {marks[1]:<12}  {marks[2]:<5}  {cases[name][1]}")
    print("\nReasons:")
    for name in names:
        for tool in TOOLS:
            ok, reason = results[tool][name]
            if not ok or cases[name][2].__doc__.startswith("MUST REFUSE"):
                print(f"  {name} [{tool}] {'pass' if ok else 'FAIL'}: {reason}")
    print("\nTotals:")
    for tool in TOOLS:
        passed = sum(results[tool][n][0] for n in names)
        print(f"  {tool:<12} {passed}/{len(names)} pass")
    print(f"  ({elapsed:.0f} s)")


# --- Worker: one freezer over many cases, one JSON line per case ---------------------------


def worker(tool: str, root: Path, results: Path, names: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent))
    from tfpersist.tfapi.tfcompat import import_tf

    tf = import_tf()
    from test_ported_freezing import check_frozen, first_line, load_case

    freezer = {"tfpersist": freeze_tfpersist, "freeze_graph": freeze_graph, "plain": freeze_plain}
    with results.open("a") as log, tempfile.TemporaryDirectory() as tmp:
        for name in names:
            log.write(json.dumps({"start": name}) + "\n")
            log.flush()
            spec, expected = load_case(root, name)
            out = Path(tmp) / f"{name}.pb"
            try:
                ok, reason = freezer[tool](tf, root / name, spec, expected, out, check_frozen)
            except AssertionError as e:
                ok, reason = False, first_line(e)
            except Exception as e:  # the freezer itself failed
                if spec["refuse"]:
                    ok, reason = True, f"refused: {type(e).__name__}: {first_line(e)}"
                else:
                    ok, reason = False, f"{type(e).__name__}: {first_line(e)}"
            log.write(json.dumps({"case": name, "ok": ok, "reason": reason}) + "\n")
            log.flush()
    return 0


REFUSE_MISSED = (False, "froze a model whose output depends on a variable assignment")


def freeze_tfpersist(tf, case: Path, spec, expected, out: Path, check):
    from tfpersist import cli

    args = ["freeze", str(case / spec["source"]), "--out", str(out)]
    if spec["outputs"]:
        args += ["--output-nodes", ",".join(spec["outputs"])]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(args + spec["extra_args"])
    lines = err.getvalue().strip().splitlines()
    if spec["refuse"]:
        if code == 1 and len(lines) == 1 and not out.exists():
            return True, f"refused: {lines[0]}"
        return False, f"exit {code}, {len(lines)} stderr lines, .pb written: {out.exists()}"
    if code != 0:
        return False, f"exit {code}: {lines[-1] if lines else ''}"
    graph_def = _read(tf, out)
    if spec["outputs"]:
        names = spec["outputs"]
    else:
        card = json.loads(out.with_suffix(".json").read_text())
        names = [o["name"] for o in card["signature"]["outputs"]]
    assert len(names) == len(spec["expected"]), f"outputs {names} for {spec['expected']}"
    fetch = {key: f"{n}:0" for key, n in zip(spec["expected"], names, strict=True)}
    feeds = {f"{n}:0": key for n, key in spec["inputs"].items()}
    check(tf, graph_def, spec, expected, fetch, feeds)
    return True, "ok"


def _prefix(tf, case: Path, spec) -> str:
    source = case / spec["source"]
    if source.is_dir():
        prefix = tf.train.latest_checkpoint(str(source))
        if prefix is None:
            raise ValueError(f"no checkpoint state file in {source}")
        return prefix
    return str(source)


def _signature(tf, case: Path, spec):
    """The serving SignatureDef of the SavedModel's meta graph with the case's tags."""
    from tensorflow.python.saved_model import loader_impl

    saved = loader_impl.parse_saved_model(str(case / spec["source"]))
    for meta in saved.meta_graphs:
        if sorted(meta.meta_info_def.tags) == sorted(spec["tags"]):
            return meta.signature_def["serving_default"]
    raise ValueError(f"no meta graph tagged {spec['tags']}")


def _names(tf, case: Path, spec) -> tuple[list[str], dict, dict]:
    """(output op names to keep, fetch {key: tensor}, feeds {tensor: key}) in the TF1 graph."""
    if "tags" not in spec:  # a checkpoint
        fetch = {n: f"{n}:0" for n in spec["outputs"]}
        feeds = {f"{n}:0": key for n, key in spec["inputs"].items()}
        return spec["outputs"], fetch, feeds
    signature = _signature(tf, case, spec)
    feeds = {signature.inputs[k].name: key for k, key in spec["signature_inputs"].items()}
    if spec["outputs"]:
        fetch = {n: f"{n}:0" for n in spec["outputs"]}
    else:
        fetch = {key: signature.outputs[key].name for key in spec["expected"]}
    ops = list(dict.fromkeys(t.split(":")[0] for t in fetch.values()))
    return ops, fetch, feeds


def freeze_graph(tf, case: Path, spec, expected, out: Path, check):
    from tensorflow.python.tools import freeze_graph as fg

    ops, fetch, feeds = _names(tf, case, spec)
    with tf.Graph().as_default(), contextlib.redirect_stdout(io.StringIO()):
        common = dict(
            input_saver="",
            input_binary=True,
            output_node_names=",".join(ops),
            restore_op_name="",
            filename_tensor_name="",
            output_graph=str(out),
            clear_devices=True,
            initializer_nodes="",
        )
        if "tags" in spec:
            fg.freeze_graph(
                input_graph=None,
                input_checkpoint=None,
                input_saved_model_dir=str(case / spec["source"]),
                saved_model_tags=",".join(spec["tags"]),
                **common,
            )
        else:
            prefix = _prefix(tf, case, spec)
            fg.freeze_graph(
                input_graph="",
                input_checkpoint=prefix,
                input_meta_graph=prefix + ".meta",
                **common,
            )
    if spec["refuse"]:
        return REFUSE_MISSED
    check(tf, _read(tf, out), spec, expected, fetch, feeds)
    return True, "ok"


def freeze_plain(tf, case: Path, spec, expected, out: Path, check):
    v1 = tf.compat.v1
    ops, fetch, feeds = _names(tf, case, spec)
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        if "tags" in spec:
            v1.saved_model.loader.load(sess, spec["tags"], str(case / spec["source"]))
        else:
            prefix = _prefix(tf, case, spec)
            saver = v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            saver.restore(sess, prefix)
        graph_def = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ops)
    if spec["refuse"]:
        return REFUSE_MISSED
    check(tf, graph_def, spec, expected, fetch, feeds)
    return True, "ok"


def _read(tf, path: Path):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


if __name__ == "__main__":
    sys.exit(main())
