"""``tfpersist inspect``: what a model holds (inputs, outputs, ops, variables), read as protos."""

from __future__ import annotations

import json
import sys

from tfpersist.cli.common import MODEL_SPEC_HELP, add_repo, csv_names, local_model, trust_from


def add_parser(sub, trust) -> None:
    p = sub.add_parser(
        "inspect",
        parents=[trust],
        help="list a model's inputs, likely outputs, ops and parameters; --html draws it",
        description="Static: nothing of the model runs. With --html, a checkpoint or "
        "SavedModel is frozen in memory first (under the untrusted-model checks; a .pb is "
        "drawn as it is, unsafe ops marked).",
    )
    p.add_argument(
        "path",
        help=".pb, checkpoint dir or prefix, SavedModel dir or Keras file; " + MODEL_SPEC_HELP,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained page: the graph drawn, op histogram, parameters "
        "and FLOPs per scope, weight statistics, signature (opens offline)",
    )
    p.add_argument(
        "--output-nodes",
        type=csv_names,
        help="with --html: the outputs to draw up to (default: the card's, or likely outputs)",
    )
    add_repo(p)
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    with local_model(args.path, args.repo) as version:
        return _inspect(args, str(version.path), version.spec)


def _inspect(args, path: str, spec: str) -> int:
    from tfpersist import formats

    kind = formats.detect(path, describable=True)
    if kind in (formats.KERAS, formats.KERAS_H5, formats.KERAS_WEIGHTS):
        from tfpersist.formats import keras_models  # no TensorFlow, no Keras

        info = keras_models.describe(path, kind, trust_from(args).keras_modules)
    else:
        from tfpersist.formats import inspection

        info = inspection.inspect_path(path)
    if spec != path:  # a fetched version: called by its name, not the scratch path
        info["path"] = spec
    if args.html:
        from tfpersist.views import pages

        view = pages.write_model_page(path, args.html, args.output_nodes, trust_from(args))
        t = view["totals"]
        print(
            f"{args.html}: {t['nodes']} nodes drawn, {t['parameters']} parameters, "
            f"~{pages.human(t['flops'])} FLOPs per row",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_inspection(info))
    return 0


def format_inspection(info: dict) -> str:
    def shape(s):
        return "?" if s is None else "[" + ", ".join("?" if d is None else str(d) for d in s) + "]"

    lines = [f"{info['path']}: {info['format']}"]
    if "weights" in info:  # a Keras file
        return "\n".join(lines + _keras_lines(info, shape))
    if "objects" in info:  # a TF2 object-based checkpoint: no graph
        lines.append(
            f"no graph: {info['objects']} objects, variables only (freeze, predict and serve "
            "need the model: a SavedModel from model.export(DIR))"
        )
        if info["save_counter"] is not None:
            lines.append(f"save counter: {info['save_counter']}")
        if info["history"]:
            lines.append("checkpoints (oldest first): " + ", ".join(info["history"]))
    elif "signatures" in info:
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
        for v in info["variables"]:
            also = f" (also {', '.join(v['aliases'])})" if v.get("aliases") else ""
            lines.append(f"  {v['name']}: {v['dtype']} {shape(v['shape'])}{also}")
    if info.get("slots"):
        lines.append(f"optimizer slots ({len(info['slots'])}):")
        lines += [f"  {s['variable']}: {s['slot']} ({s['name']})" for s in info["slots"]]
    lines += _contraction_lines(info.get("contractions"))
    if info.get("unsafe_ops"):
        from tfpersist import safety

        lines.append(
            "WARNING: ops outside the inference allowlist (refused unless allowed): "
            + safety.describe(info["unsafe_ops"])
        )
    return "\n".join(lines)


def _contraction_lines(c: dict | None) -> list[str]:
    """What the graph's contractions mean for bits on other CPUs (graph/contractions.py)."""
    if not c or not c.get("count"):
        return [f"contractions: not read ({c['error']})"] if c and "error" in c else []
    bound, past, open_ = c["bound"], c["past_bound"], c["k_open"]
    lines = [f"contractions: {c['count']}, largest K = {c['max_k']}"]
    if past:
        shown = ", ".join(f"{p['node']} ({p['op']}, K = {p['k']})" for p in past[:8])
        more = f" and {len(past) - 8} more" if len(past) > 8 else ""
        lines.append(
            f"  {len(past)} past K = {bound}: {shown}{more} — Eigen sums these in blocks sized "
            "by the CPU's L1 data cache, so their results may differ in the last bits between "
            "CPUs with other caches (32 KiB L1D: AMD Zen 2–4, Intel Skylake; 48 KiB: Intel Ice "
            "Lake+, AMD Zen 5); tfpersist's training cuts such layers (train.max_k)"
        )
    else:
        lines.append(
            f"  none past K = {bound}: the same float sums on every CPU with an L1D of 32 KiB "
            "or more (under the AVX2 pin)"
        )
    if open_:
        lines.append(
            f"  {len(open_)} with K set by the batch fed (e.g. {open_[0]}): fed more than "
            f"{bound} rows at once (per tower), these sum past the bound too"
        )
    return lines


def _keras_lines(info: dict, shape) -> list[str]:
    lines = []
    if info.get("keras_version"):
        lines.append(f"written by Keras {info['keras_version']}")
    if info.get("model"):
        model = info["model"]
        lines.append(f"model: {model['class']} '{model['name']}', {len(info['layers'])} layers")
        lines += [f"  input  {i['name']}: {i['dtype']} {shape(i['shape'])}" for i in info["inputs"]]
        lines += [
            f"  output {o['name']}: {o['dtype']} {shape(o['shape'])} ({o['layer']})"
            for o in info["outputs"]
        ]
        lines.append(
            "layers: " + ", ".join(f"{la['name']} ({la['class']})" for la in info["layers"])
        )
    else:
        lines.append("weights only: no architecture (freeze and predict need --architecture)")
    lines.append(f"parameters: {info['parameters']} ({info['parameter_bytes']} bytes)")
    lines.append(f"weights ({len(info['weights'])}):")
    for w in info["weights"]:
        stats = (
            f" mean {w['mean']:.4g} std {w['std']:.4g} min {w['min']:.4g} max {w['max']:.4g}"
            if "mean" in w
            else ""
        )
        lines.append(f"  {w['name']}: {w['dtype']} {shape(w['shape'])}{stats}")
    return lines
