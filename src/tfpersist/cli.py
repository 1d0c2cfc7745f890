"""The tfpersist command: freeze, inspect, predict, compare, export and serve any TensorFlow model,
check that the pipeline reproduces, and run the local DVC remote.

TensorFlow is imported only inside the commands that need it, so ``--help`` is instant.
Usage errors exit 2, failures exit 1 with one line ``tfpersist: error: …`` (``--debug`` or
TFPERSIST_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tfpersist import __version__, layout
from tfpersist.errors import TfpersistError, UsageError, unexpected

UNSAFE_HELP = (
    "run the model whatever ops it holds, even ones that touch files or run Python "
    "(see 'tfpersist inspect'); only for models you trust"
)
ALLOW_OPS_HELP = (
    "also allow these ops outside the inference allowlist, e.g. PrintV2 (comma-separated; "
    "'tfpersist inspect' lists a model's)"
)


def _trust(args):
    from tfpersist import safety

    return safety.Trust.of(args.allow_unsafe_ops, args.allow_ops)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage errors: one line, exit 2
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _csv_names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    return name.strip(), value.strip()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfpersist", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tfpersist {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--cpu-isa",
        default=os.environ.get("TFPERSIST_CPU_ISA", "avx2"),
        help="instruction set TensorFlow's CPU kernels may use: avx2 (default; the same bits on "
        "every AVX2 CPU, Intel or AMD), native (fastest; same CPU type only), avx, sse41, avx512",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    trust = argparse.ArgumentParser(add_help=False)  # flags shared by the commands that run
    trust.add_argument(
        "--allow-ops", type=_csv_names, default=[], metavar="A,B", help=ALLOW_OPS_HELP
    )
    trust.add_argument("--allow-unsafe-ops", action="store_true", help=UNSAFE_HELP)
    for add in (
        add_freeze_parser,
        add_inspect_parser,
        add_predict_parser,
        add_compare_parser,
        add_export_parser,
        add_serve_parser,
        add_check_repro_parser,
        add_remote_parser,
    ):
        add(sub, trust)

    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("TFPERSIST_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        from tfpersist import runtime

        runtime.pin(runtime.check(args.cpu_isa))
        return args.func(args) or 0
    except UsageError as e:
        if debug:
            raise
        print(f"tfpersist: error: {e}", file=sys.stderr)
        return 2
    except TfpersistError as e:
        if debug:
            raise
        print(f"tfpersist: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tfpersist: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug, or a failure nobody foresaw: still one line
        if debug:
            raise
        print(f"tfpersist: error: {unexpected(e)}", file=sys.stderr)
        return 1


def add_freeze_parser(sub, trust) -> None:
    p = sub.add_parser(
        "freeze",
        parents=[trust],
        help="freeze a checkpoint, SavedModel or .pb into one GraphDef .pb",
        description="Fold variables into constants and keep only what the output nodes need. "
        "SOURCE: a checkpoint directory (with its 'checkpoint' file), a checkpoint prefix "
        "(dir/model.ckpt-1200), a SavedModel directory, or a frozen .pb.",
    )
    p.add_argument("source", help="checkpoint dir or prefix, SavedModel dir, or .pb")
    p.add_argument(
        "--output-nodes",
        type=_csv_names,
        help="comma-separated op names (name:0 accepted); optional for a SavedModel",
    )
    p.add_argument(
        "--out",
        default=layout.FROZEN_MODEL,
        help=f"where to write the .pb (default: {layout.FROZEN_MODEL})",
    )
    p.add_argument(
        "--set",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="pin a placeholder to a constant, e.g. is_training=false (repeatable)",
    )
    p.add_argument(
        "--keep-placeholder",
        action="append",
        default=[],
        metavar="NAME",
        help="leave this placeholder_with_default as a live input instead of pinning it to "
        "its default (repeatable)",
    )
    p.add_argument(
        "--signature",
        metavar="KEY",
        help="the SavedModel signature to freeze (default: serving_default)",
    )
    p.add_argument(
        "--optimize",
        action="store_true",
        help="strip training-only nodes and fold batch norm into the layer before it",
    )
    p.add_argument(
        "--no-card", action="store_true", help="do not write the JSON card beside the .pb"
    )
    p.set_defaults(func=cmd_freeze)


def cmd_freeze(args) -> int:
    from tfpersist import freeze

    out = Path(args.out)
    source = Path(args.source)
    if out.resolve() == source.resolve():
        raise UsageError(f"--out {out} is the source itself; choose another path")
    card, names = freeze.freeze_to_file(
        source,
        out,
        args.output_nodes,
        values=dict(args.set),
        live=args.keep_placeholder,
        signature_key=args.signature,
        optimize=args.optimize,
        card_path=None if args.no_card else layout.card(out),
        trust=_trust(args),
    )
    sha = f", sha256 {card['sha256'][:12]}" if card.get("sha256") else ""
    outputs = ", ".join(names)
    print(f"{out}: {card['nodes']} nodes, {card['parameters']} parameters, outputs {outputs}{sha}")
    set_by_hand = dict(args.set)
    for name, value in card.get("pinned", {}).items():
        if name not in set_by_hand:
            print(
                f"{out}: pinned placeholder '{name}' to its default {json.dumps(value)} (a "
                f"conditional it picks holds training-only ops); --keep-placeholder {name} "
                "keeps it as an input"
            )
    for name in card.get("signature", {}).get("optional_inputs", []):
        print(
            f"{out}: kept placeholder '{name['name']}' as an input with its default "
            f"(--set {name['name']}=VALUE pins it)"
        )
    return 0


def add_inspect_parser(sub, trust) -> None:
    p = sub.add_parser(
        "inspect",
        parents=[trust],
        help="list a model's inputs, likely outputs, ops and parameters; --html draws it",
        description="Static: nothing of the model runs. With --html, a checkpoint or "
        "SavedModel is frozen in memory first (under the untrusted-model checks; a .pb is "
        "drawn as it is, unsafe ops marked).",
    )
    p.add_argument("path", help=".pb, checkpoint dir or prefix, or SavedModel dir")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained page: the graph drawn, op histogram, parameters "
        "and FLOPs per scope, weight statistics, signature (opens offline)",
    )
    p.add_argument(
        "--output-nodes",
        type=_csv_names,
        help="with --html: the outputs to draw up to (default: the card's, or likely outputs)",
    )
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    from tfpersist import inspection

    info = inspection.inspect_path(args.path)
    if args.html:
        from tfpersist import pages

        view = pages.write_model_page(args.path, args.html, args.output_nodes, _trust(args))
        t = view["totals"]
        print(
            f"{args.html}: {t['nodes']} nodes drawn, {t['parameters']} parameters, "
            f"~{pages.human(t['flops'])} FLOPs per row",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(_format_inspection(info))
    return 0


def _format_inspection(info: dict) -> str:
    def shape(s):
        return "?" if s is None else "[" + ", ".join("?" if d is None else str(d) for d in s) + "]"

    lines = [f"{info['path']}: {info['format']}"]
    if "signatures" in info:
        for key, sig in info["signatures"].items():
            lines.append(f"signature '{key}':")
            lines += [
                f"  input  {i['name']}: {i['dtype']} {shape(i['shape'])}" for i in sig["inputs"]
            ]
            lines += [
                f"  output {o['name']}: {o['dtype']} {shape(o['shape'])}" for o in sig["outputs"]
            ]
    else:
        lines.append(f"nodes: {info['nodes']}")
        lines.append("inputs:")
        for i in info["inputs"]:
            default = " (has a default)" if i["has_default"] else ""
            lines.append(f"  {i['name']}: {i['dtype']} {shape(i['shape'])}{default}")
        lines.append("likely outputs: " + (", ".join(info["likely_outputs"]) or "none found"))
        lines.append("ops: " + ", ".join(f"{op} {n}" for op, n in info["ops"].items()))
        if info["control_flow"]:
            lines.append("control flow: " + ", ".join(info["control_flow"]))
        if info["devices"]:
            lines.append("devices: " + ", ".join(info["devices"]))
    lines.append(
        f"parameters: {info['parameters']}"
        + (f" ({info['parameter_bytes']} bytes)" if "parameter_bytes" in info else "")
    )
    if info.get("variables"):
        lines.append(f"variables ({len(info['variables'])}):")
        lines += [f"  {v['name']}: {v['dtype']} {shape(v['shape'])}" for v in info["variables"]]
    if info.get("unsafe_ops"):
        from tfpersist import safety

        lines.append(
            "WARNING: ops outside the inference allowlist (refused unless allowed): "
            + safety.describe(info["unsafe_ops"])
        )
    return "\n".join(lines)


def add_predict_parser(sub, trust) -> None:
    p = sub.add_parser(
        "predict",
        parents=[trust],
        help="run a model (.pb, checkpoint, SavedModel, .tflite, .onnx) on a CSV or .npy",
    )
    p.add_argument("model", help="frozen .pb, checkpoint, SavedModel directory, .tflite or .onnx")
    p.add_argument("--signature", help="a SavedModel's signature (default: serving_default)")
    p.add_argument(
        "--input",
        required=True,
        action="append",
        metavar="[NAME=]FILE",
        help="X.csv (columns as the model's card lists, or all) or X.npy; for a model with "
        "several inputs, NAME=X.npy once per placeholder",
    )
    p.add_argument(
        "--input-node", help="placeholder to feed (default: from the card, or the only one)"
    )
    p.add_argument(
        "--output-nodes", type=_csv_names, help="outputs to fetch (default: from the card)"
    )
    p.add_argument(
        "--out",
        help="Y.csv, Y.json or Y.npz (every output), or Y.npy (one output) (default: CSV on "
        "stdout)",
    )
    p.add_argument("--batch-size", type=_positive, default=1024)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from tfpersist import prediction

    prediction.predict_file(
        args.model,
        _named_inputs(args.input),
        args.out,
        args.input_node,
        args.output_nodes,
        args.batch_size,
        _trust(args),
        args.signature,
    )
    return 0


def _named_inputs(values: list[str]) -> str | dict[str, str]:
    """``--input FILE`` (one input) or ``--input NAME=FILE`` repeated → FILE or {NAME: FILE}."""
    named = [
        tuple(i.split("=", 1)) if "=" in i and not Path(i).exists() else (None, i) for i in values
    ]
    if len(named) > 1 and any(name is None for name, _ in named):
        raise UsageError("with several --input, name each placeholder: --input NAME=FILE")
    if len({name for name, _ in named}) < len(named):
        raise UsageError("--input: each placeholder once")
    return named[0][1] if named[0][0] is None else dict(named)


def add_compare_parser(sub, trust) -> None:
    p = sub.add_parser(
        "compare",
        parents=[trust],
        help="compare two versions of a model: signature, structure, weights, outputs",
        description="A and B: a frozen .pb, a checkpoint or a SavedModel, or PATH@REV for the "
        "DVC-tracked artifact at a git revision, branch, tag or DVC experiment "
        "(e.g. models/frozen/model.pb@main models/frozen/model.pb).",
    )
    p.add_argument("a")
    p.add_argument("b")
    test = layout.PREPARED_DIR / layout.split_file("test")
    p.add_argument("--data", help=f"CSV to run both on (default: {test} if present)")
    p.add_argument(
        "--input",
        action="append",
        metavar="NAME=FILE",
        help="instead of --data, for models with several inputs: X.npy (or .csv) per "
        "placeholder, repeated",
    )
    p.add_argument("--format", choices=("text", "md", "json"), default="text")
    p.add_argument(
        "--fail-on",
        type=_csv_names,
        default=[],
        help="exit 1 when these sections differ: signature, structure, weights, outputs, any",
    )
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="max abs difference allowed (default 0)"
    )
    p.add_argument(
        "--output-nodes", type=_csv_names, help="outputs to compare (default: from the cards)"
    )
    p.add_argument(
        "--localize",
        action="store_true",
        help="run both on the same rows with every shared intermediate tensor fetched and "
        "report the first nodes that differ beyond --tolerance, with the path to the outputs",
    )
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained page: the merged graph with added, removed and "
        "changed nodes coloured, weights ranked by change, outputs (and --localize)",
    )
    p.add_argument("--repo", default=".", help="DVC repository for PATH@REV (default: .)")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="a PATH@REV in no cache and on no remote is reproduced from a clean clone of REV "
        "and used only if it matches that revision's dvc.lock",
    )
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    import tempfile

    from tfpersist import compare, versions

    wanted = set(args.fail_on)
    unknown = wanted - {*compare.SECTIONS, "any"}
    if unknown:
        raise UsageError(
            f"--fail-on {', '.join(sorted(unknown))}: "
            f"choose from {', '.join(compare.SECTIONS)}, any"
        )
    with tempfile.TemporaryDirectory(prefix="tfpersist-compare-") as scratch:
        models = [
            compare.load_model(
                versions.materialize(spec, args.repo, Path(scratch), args.rebuild),
                args.output_nodes,
                _trust(args),
            )
            for spec in (args.a, args.b)
        ]
        if args.input and args.data:
            raise UsageError("give --data (one CSV) or --input NAME=FILE, not both")
        if args.input:
            x, y, source = _named_data(_named_inputs(args.input)), None, ", ".join(args.input)
        else:
            x, y, source = _comparison_data(args.data, models)
        if args.localize and x is None:
            raise UsageError(f"--localize runs both models: give --data ({source})")
        report = compare.compare_models(
            *models, x, y, source, _trust(args), args.tolerance if args.localize else None
        )
        if args.html:
            from tfpersist import pages

            pages.write_diff_page(report, *models, args.html, args.tolerance)
    render = {
        "text": compare.render_text,
        "md": compare.render_markdown,
        "json": compare.render_json,
    }
    print(render[args.format](report, args.tolerance))
    why = compare.differences(report, args.tolerance)
    failing = [s for s in compare.SECTIONS if why[s] and ("any" in wanted or s in wanted)]
    if failing:
        print(f"tfpersist: compare: {failing[0]} differs: {why[failing[0]]}", file=sys.stderr)
        return 1
    return 0


def add_export_parser(sub, trust) -> None:
    p = sub.add_parser(
        "export",
        parents=[trust],
        help="ship a model as a serving SavedModel, TFLite, ONNX and/or for OpenCV, each "
        "checked equal",
        description="SOURCE (a .pb, checkpoint or SavedModel; PATH@REV too) is frozen in "
        "memory, exported, and every format is run next to the frozen graph: one that "
        "differs beyond --tolerance is removed and the command fails.",
    )
    p.add_argument("source")
    p.add_argument(
        "--to",
        type=_csv_names,
        default=list(layout.EXPORT_DEFAULT),
        metavar="FORMATS",
        help=f"{', '.join(layout.EXPORT_FORMATS)} (comma-separated; default: "
        f"{','.join(layout.EXPORT_DEFAULT)})",
    )
    p.add_argument("--out", required=True, help="directory to write into (created)")
    p.add_argument("--output-nodes", type=_csv_names, help="default: from the card")
    p.add_argument("--input-node", help="default: the card's, or the only placeholder")
    p.add_argument(
        "--quantize",
        choices=("none", "dynamic"),
        default="none",
        help="TFLite dynamic-range quantization (its distance is reported, not enforced)",
    )
    p.add_argument(
        "--tolerance", type=float, default=1e-5, help="max abs difference allowed (1e-5)"
    )
    p.add_argument("--repo", default=".", help="DVC repository for PATH@REV (default: .)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import tempfile

    from tfpersist import compare, shipping, versions

    with tempfile.TemporaryDirectory(prefix="tfpersist-export-") as scratch:
        model = compare.load_model(
            versions.materialize(args.source, args.repo, Path(scratch)),
            args.output_nodes,
            _trust(args),
        )
    input_node = args.input_node or model.input_node
    if input_node is None:
        raise UsageError(f"{args.source}: several inputs or none; name one with --input-node")
    sig = shipping.Signature(input_node, model.outputs)
    extra = {"features": model.features} if model.features else {}
    report = shipping.ship(
        model.graph_def,
        args.out,
        sig,
        args.to,
        args.quantize,
        args.tolerance,
        trust=_trust(args),
        extra=extra,
    )
    for fmt, info in report["formats"].items():
        worst = max(info["max_abs_diff"].values())
        print(
            f"{Path(args.out) / info['path']}: {fmt}, {info['bytes']} bytes, sha256 "
            f"{info['sha256'][:12]}, max abs difference to the frozen graph {worst:.3g} "
            f"({report['rows']} rows)"
        )
    return 0


def add_serve_parser(sub, trust) -> None:
    from tfpersist import serving

    p = sub.add_parser(
        "serve",
        parents=[trust],
        help="serve a model over TF Serving's REST predict API (127.0.0.1 by default)",
        description="MODEL: a .pb, checkpoint, SavedModel, .tflite or .onnx, checked like "
        "predict before the port opens. POST /v1/models/NAME:predict with "
        '{"instances": [...]} or {"inputs": ...}; GET /v1/models/NAME[/metadata].',
    )
    p.add_argument("model")
    p.add_argument("--name", default="model", help="the model's name in URLs (default: model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=serving.DEFAULT_PORT, help="default: 8501")
    p.add_argument(
        "--max-request-bytes",
        type=_positive,
        default=serving.MAX_REQUEST_BYTES,
        help=f"larger bodies get 413 (default: {serving.MAX_REQUEST_BYTES})",
    )
    p.add_argument("--signature", help="a SavedModel's signature (default: serving_default)")
    p.add_argument("--output-nodes", type=_csv_names, help="default: from the card")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import threading

    from tfpersist import loaders, serving

    model = loaders.open_model(args.model, args.output_nodes, args.signature, _trust(args))
    server = serving.Server(
        serving.make_app(model, args.name, args.max_request_bytes), args.host, args.port
    )
    port = server.start()
    inputs = ", ".join(f"{t.name} {t.dtype}" for t in model.inputs)
    print(
        f"serving {args.model} ({inputs}) as '{args.name}' on "
        f"http://{args.host}:{port}/v1/models/{args.name}:predict (Ctrl-C stops)",
        flush=True,
    )
    try:
        threading.Event().wait()
    finally:
        server.stop()
        model.close()
    return 0


def _named_data(inputs: str | dict[str, str]):
    """The arrays ``--input`` names: one array, or {placeholder: array}."""
    from tfpersist import prediction

    if isinstance(inputs, str):
        return prediction.read_inputs(Path(inputs), None)
    return {name: prediction.read_inputs(Path(f), None) for name, f in inputs.items()}


def _comparison_data(path: str | None, models):
    """(x, y or None, description) for the behaviour section; (None, None, why) if no data."""
    from tfpersist import data

    prepared = layout.PREPARED_DIR
    test = prepared / layout.split_file("test")
    schema = None
    if (prepared / layout.SCHEMA).is_file():
        schema = data.read_schema(prepared)
    if path is None:
        if schema is None or not test.is_file():
            return None, None, f"no --data given and no {test} here"
        path = str(test)
    features = next((m.features for m in models if m.features), None) or (
        schema.features if schema else None
    )
    label = schema.label if schema else "label"
    table = data.read_csv(path)
    if features is None:
        features = [c for c in table.columns if c != label]
    schema_for = data.Schema(label, list(features), schema.num_classes if schema else 1 << 30)
    x, y = data.load_split(path, schema_for, require_label=False)
    return x, y, path


def add_check_repro_parser(sub, trust) -> None:
    p = sub.add_parser(
        "check-repro",
        help="rebuild a git revision from scratch and compare it with its dvc.lock",
    )
    p.add_argument("--rev", default="HEAD", help="git revision to check (default: HEAD)")
    p.add_argument("--repo", default=".", help="repository (default: .)")
    p.add_argument("--keep", action="store_true", help="keep the temp clone for a look")
    p.add_argument(
        "--tolerance",
        type=float,
        help="pass a stage whose outputs differ only by a max abs distance up to this "
        "(weights, model outputs, numbers in metrics), e.g. 3e-7 across CPU types",
    )
    p.add_argument("--report", help="also write the result as JSON here (e.g. check-repro.json)")
    p.set_defaults(func=cmd_check_repro)


def cmd_check_repro(args) -> int:
    from tfpersist import atomic, reproducibility, runtime

    repo = Path(args.repo).resolve()
    env = runtime.describe()
    print(
        f"check-repro: rebuilding {args.rev} of {repo} from scratch (dvc repro --force) on "
        f"{env['cpu']} ({', '.join(env['cpu_flags'])}); stages pin their CPU instruction set "
        "from params.yaml runtime.cpu_isa",
        flush=True,
    )
    checks, where = reproducibility.check(repo, args.rev, args.keep, args.tolerance)
    width = max(len(c.stage) for c in checks)
    for c in checks:
        print(f"  {c.stage:<{width}}  {c.status}{': ' + c.detail if c.detail else ''}")
    if args.keep:
        print(f"check-repro: the rebuilt clone is in {where}")
    bad = [c for c in checks if not c.ok]
    if args.report:
        atomic.write_json(
            args.report,
            {
                "rev": args.rev,
                "ok": not bad,
                "tolerance": args.tolerance,
                "environment": env,
                "stages": [
                    {
                        "stage": c.stage,
                        "status": c.status,
                        "detail": c.detail,
                        "outputs": c.outputs,
                        "distance": c.distance,
                    }
                    for c in checks
                ],
            },
        )
    if bad:
        print(f"check-repro: FAILED: {len(bad)} of {len(checks)} stages did not reproduce")
        return 1
    within = [c for c in checks if c.status == "equivalent"]
    if within:
        print(
            f"check-repro: OK: {len(checks) - len(within)} stages bit for bit, "
            f"{len(within)} within {args.tolerance:g}"
        )
    else:
        print(f"check-repro: OK: all {len(checks)} stages reproduce dvc.lock bit for bit")
    return 0


def add_remote_parser(sub, trust) -> None:
    p = sub.add_parser(
        "remote",
        help="start or stop the local S3 object store behind the DVC remote (SeaweedFS)",
        description="up: start SeaweedFS serving S3 on 127.0.0.1 (data in --dir) and create the "
        "bucket; down: stop it; status: exit 0 if it runs. The repository's default DVC remote "
        "points there; 'dvc remote modify --local storage url s3://BUCKET/path' points it "
        "elsewhere.",
    )
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--dir", default=".remote", help="data directory (default: .remote)")
    p.add_argument("--port", type=_positive, default=8333, help="S3 port (default 8333)")
    p.set_defaults(func=cmd_remote)


def cmd_remote(args) -> int:
    from tfpersist import remote

    if args.action == "up":
        server = remote.start(args.dir, args.port)
        print(f"remote: S3 on {server.endpoint} (SeaweedFS pid {server.pid}, data in {args.dir})")
    elif args.action == "down":
        stopped = remote.stop(remote.status(args.dir))
        print("remote: stopped" if stopped else "remote: not running")
    else:
        server = remote.status(args.dir)
        print(f"remote: up on {server.endpoint}" if server else "remote: not running")
        return 0 if server else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
