"""``tfpersist freeze``: any checkpoint, SavedModel or .pb → one frozen GraphDef .pb."""

from __future__ import annotations

import json
from pathlib import Path

from tfpersist.cli.common import ARCHITECTURE_HELP, assignment, csv_names, trust_from
from tfpersist.core import layout
from tfpersist.core.errors import UsageError


def add_parser(sub, trust) -> None:
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
        type=csv_names,
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
        type=assignment,
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
    p.add_argument("--architecture", metavar="MODEL", help=ARCHITECTURE_HELP)
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
    from tfpersist.freezing import freeze

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
        trust=trust_from(args),
        architecture=args.architecture,
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
    not_run = card.get("assignments_not_run", {})
    if not_run:
        written = sorted({v for v in not_run.values() if v})
        print(
            f"{out}: left out {len(not_run)} assignment(s) the live graph runs before "
            f"computing {outputs} ({', '.join(not_run)}: control dependencies); the frozen "
            f"graph holds the checkpoint's values of {', '.join(written) or 'what they write'}"
        )
    for name in card.get("signature", {}).get("optional_inputs", []):
        print(
            f"{out}: kept placeholder '{name['name']}' as an input with its default "
            f"(--set {name['name']}=VALUE pins it)"
        )
    return 0
