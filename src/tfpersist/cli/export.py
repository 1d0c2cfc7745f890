"""``tfpersist export``: ship a model as SavedModel, TFLite, ONNX and OpenCV, each held to it."""

from __future__ import annotations

import sys
from pathlib import Path

from tfpersist.cli.common import (
    ARCHITECTURE_HELP,
    add_repo,
    csv_names,
    named_data,
    named_inputs,
    trust_from,
)
from tfpersist.core import layout
from tfpersist.core.errors import UsageError


def add_parser(sub, trust) -> None:
    p = sub.add_parser(
        "export",
        parents=[trust],
        help="ship a model as a serving SavedModel, TFLite, ONNX and/or for OpenCV, each "
        "checked equal",
        description="SOURCE (a .pb, checkpoint, SavedModel or Keras file; PATH@REV too) is "
        "frozen in memory, exported, and every format is run next to the frozen graph: one that "
        "is not close to it (--tolerance + --rtol × |value|), or that its own runtime cannot load, "
        "is left out with one line and the rest ships (exit status 1 when one was left out).",
    )
    p.add_argument("source")
    p.add_argument(
        "--to",
        type=csv_names,
        default=list(layout.EXPORT_DEFAULT),
        metavar="FORMATS",
        help=f"{', '.join(layout.EXPORT_FORMATS)} (comma-separated; default: "
        f"{','.join(layout.EXPORT_DEFAULT)})",
    )
    p.add_argument("--out", required=True, help="directory to write into (created)")
    p.add_argument("--output-nodes", type=csv_names, help="default: from the card")
    p.add_argument(
        "--input-node",
        help="the one input to take (default: the card's inputs, or every placeholder)",
    )
    p.add_argument("--architecture", metavar="MODEL", help=ARCHITECTURE_HELP)
    p.add_argument(
        "--quantize",
        choices=("none", "dynamic"),
        default="none",
        help="TFLite dynamic-range quantization (its distance is reported, not enforced)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=layout.EXPORT_ATOL,
        help=f"absolute tolerance ({layout.EXPORT_ATOL:g}): each output must be within it "
        "plus --rtol times the frozen graph's value, as np.allclose judges",
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=layout.EXPORT_RTOL,
        help=f"relative tolerance ({layout.EXPORT_RTOL:g}; 0: absolute only)",
    )
    p.add_argument(
        "--input",
        action="append",
        metavar="[NAME=]FILE",
        help="rows to hold each format to the frozen graph on (default: 64 seeded rows "
        "per input, of its type): X.csv or X.npy of the model's kind of input, e.g. "
        "data/prepared/test.npy; for a model with several inputs, NAME=X.npy once per "
        "placeholder (the same number of rows each)",
    )
    add_repo(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import tempfile

    from tfpersist import shipping, versions

    with tempfile.TemporaryDirectory(prefix="tfpersist-export-") as scratch:
        model = versions.load(
            args.source,
            args.repo,
            Path(scratch),
            args.output_nodes,
            trust_from(args),
            architecture=args.architecture,
        )
    input_nodes = [args.input_node] if args.input_node else model.input_nodes
    if not input_nodes:
        raise UsageError(f"{args.source}: no placeholder to feed; name one with --input-node")
    sig = shipping.Signature(input_nodes, model.outputs)
    extra = {"features": model.features} if model.features else {}
    rows = named_data(named_inputs(args.input), extra or None) if args.input else None
    report = shipping.ship(
        model.graph_def,
        args.out,
        sig,
        args.to,
        args.quantize,
        args.tolerance,
        rows,
        trust=trust_from(args),
        extra=extra,
        rtol=args.rtol,
        partial=True,
        leave_out_unsupported=True,
    )
    for fmt, info in report["formats"].items():
        print(
            f"{Path(args.out) / info['path']}: {fmt}, {info['bytes']} bytes, sha256 "
            f"{info['sha256'][:12]}, {shipping.difference(info, 'graph')} ({report['rows']} rows)"
        )
    out = Path(args.out)
    if report["kept"]:
        kept = ", ".join(report["kept"])
        print(
            f"{out}: kept {kept} of an earlier export of the same frozen graph "
            "(export.json lists every format there)"
        )
    if report["removed"]:
        gone = ", ".join(report["removed"])
        print(f"{out}: removed {gone}: an earlier export of another frozen graph, or left out now")
    for fmt, why in report["left_out"].items():  # shipped the rest; say what was not
        print(f"tfpersist: error: {fmt} left out: {why}", file=sys.stderr)
    return 1 if report["left_out"] else 0
