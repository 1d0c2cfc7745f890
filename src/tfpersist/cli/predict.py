"""``tfpersist predict``: run any model format on a CSV or .npy."""

from __future__ import annotations

from tfpersist.cli.common import (
    ARCHITECTURE_HELP,
    MODEL_SPEC_HELP,
    add_repo,
    csv_names,
    local_model,
    named_inputs,
    positive,
    trust_from,
)


def add_parser(sub, trust) -> None:
    p = sub.add_parser(
        "predict",
        parents=[trust],
        help="run a model (.pb, checkpoint, SavedModel, .tflite, .onnx) on a CSV or .npy",
    )
    p.add_argument(
        "model",
        help="frozen .pb, checkpoint, SavedModel directory, .tflite, .onnx or Keras file; "
        + MODEL_SPEC_HELP,
    )
    p.add_argument("--architecture", metavar="MODEL", help=ARCHITECTURE_HELP)
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
        "--output-nodes", type=csv_names, help="outputs to fetch (default: from the card)"
    )
    p.add_argument(
        "--out",
        help="Y.csv, Y.json or Y.npz (every output), or Y.npy (one output) (default: CSV on "
        "stdout)",
    )
    p.add_argument("--batch-size", type=positive, default=1024)
    add_repo(p)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from tfpersist.running import prediction

    with local_model(args.model, args.repo) as version:
        prediction.predict_file(
            version.path,
            named_inputs(args.input),
            args.out,
            args.input_node,
            args.output_nodes,
            args.batch_size,
            trust_from(args),
            args.signature,
            architecture=args.architecture,
        )
    return 0
