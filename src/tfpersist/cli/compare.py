"""``tfpersist compare``: how two versions differ (signature, structure, weights, outputs)."""

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
        "compare",
        parents=[trust],
        help="compare two versions of a model: signature, structure, weights, outputs",
        description="A and B: a frozen .pb, a checkpoint or a SavedModel, or PATH@REV for the "
        "DVC-tracked artifact at a git revision, branch, tag or DVC experiment "
        "(e.g. models/frozen/model.pb@main models/frozen/model.pb).",
    )
    p.add_argument("a")
    p.add_argument("b")
    test = layout.PREPARED_DIR / layout.TEST_CSV
    p.add_argument("--data", help=f"CSV to run both on (default: {test} if present)")
    p.add_argument(
        "--input",
        action="append",
        metavar="NAME=FILE",
        help="instead of --data, for models with several inputs: X.npy (or .csv) per "
        "placeholder, repeated",
    )
    p.add_argument(
        "--no-outputs",
        action="store_true",
        help="compare signature, structure and weights only: nothing runs (and TensorFlow is "
        "not imported where the models freeze without it)",
    )
    p.add_argument("--format", choices=("text", "md", "json"), default="text")
    p.add_argument(
        "--fail-on",
        type=csv_names,
        default=[],
        help="exit 1 when these sections differ: signature, structure, weights, outputs, any",
    )
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="max abs difference allowed (default 0)"
    )
    p.add_argument(
        "--output-nodes", type=csv_names, help="outputs to compare (default: from the cards)"
    )
    p.add_argument(
        "--architecture", metavar="MODEL", help=f"{ARCHITECTURE_HELP} (either side or both)"
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
    add_repo(p)
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="a PATH@REV in no cache and on no remote is reproduced from a clean clone of REV "
        "and used only if it matches that revision's dvc.lock",
    )
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    import tempfile

    from tfpersist import versions
    from tfpersist.versions import compare

    wanted = set(args.fail_on)
    unknown = wanted - {*compare.SECTIONS, "any"}
    if unknown:
        raise UsageError(
            f"--fail-on {', '.join(sorted(unknown))}: "
            f"choose from {', '.join(compare.SECTIONS)}, any"
        )
    with tempfile.TemporaryDirectory(prefix="tfpersist-compare-") as scratch:
        models = [
            versions.load(
                spec,
                args.repo,
                Path(scratch),
                args.output_nodes,
                trust_from(args),
                args.rebuild,
                args.architecture,
            )
            for spec in (args.a, args.b)
        ]
        if args.input and args.data:
            raise UsageError("give --data (one CSV) or --input NAME=FILE, not both")
        if args.no_outputs and (args.input or args.data or args.localize):
            raise UsageError("--no-outputs runs nothing: leave out --data, --input, --localize")
        if args.no_outputs:
            x, y, source = None, None, "--no-outputs"
        elif args.input:
            x, y, source = named_data(named_inputs(args.input)), None, ", ".join(args.input)
        else:
            x, y, source = comparison_data(args.data, models)
        if args.localize and x is None:
            raise UsageError(f"--localize runs both models: give --data ({source})")
        report = compare.compare_models(
            *models, x, y, source, trust_from(args), args.tolerance if args.localize else None
        )
        if args.html:
            from tfpersist.views import diff_page

            diff_page.write_diff_page(report, *models, args.html, args.tolerance)
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


def comparison_data(path: str | None, models):
    """(x, y or None, description) for the behaviour section; (None, None, why) if no data."""
    from tfpersist.tables import data

    prepared = layout.PREPARED_DIR
    test = prepared / layout.TEST_CSV
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
