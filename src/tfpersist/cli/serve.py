"""``tfpersist serve``: TF Serving's REST API for any model format."""

from __future__ import annotations

from tfpersist.cli.common import (
    ARCHITECTURE_HELP,
    MODEL_SPEC_HELP,
    add_repo,
    csv_names,
    local_model,
    positive,
    trust_from,
)


def add_parser(sub, trust) -> None:
    from tfpersist.running import serving

    p = sub.add_parser(
        "serve",
        parents=[trust],
        help="serve a model over TF Serving's REST predict API (127.0.0.1 by default)",
        description="MODEL: a .pb, checkpoint, SavedModel, .tflite or .onnx, checked like "
        "predict before the port opens. POST /v1/models/NAME:predict with "
        '{"instances": [...]} or {"inputs": ...}; GET /v1/models/NAME[/metadata].',
    )
    p.add_argument("model", help=MODEL_SPEC_HELP)
    p.add_argument("--name", default="model", help="the model's name in URLs (default: model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=serving.DEFAULT_PORT, help="default: 8501")
    p.add_argument(
        "--max-request-bytes",
        type=positive,
        default=serving.MAX_REQUEST_BYTES,
        help=f"larger bodies get 413 (default: {serving.MAX_REQUEST_BYTES})",
    )
    p.add_argument("--architecture", metavar="MODEL", help=ARCHITECTURE_HELP)
    p.add_argument("--signature", help="a SavedModel's signature (default: serving_default)")
    p.add_argument("--output-nodes", type=csv_names, help="default: from the card")
    add_repo(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    with local_model(args.model, args.repo) as version:
        return _serve(args, version)


def _serve(args, version) -> int:
    import threading

    from tfpersist.running import loaders, serving

    model = loaders.open_model(
        version.path,
        args.output_nodes,
        args.signature,
        trust_from(args),
        architecture=args.architecture,
    )
    server = serving.Server(
        serving.make_app(model, args.name, args.max_request_bytes), args.host, args.port
    )
    port = server.start()
    inputs = ", ".join(f"{t.name} {t.dtype}" for t in model.inputs)
    print(
        f"serving {version.spec} ({inputs}) as '{args.name}' on "
        f"http://{args.host}:{port}/v1/models/{args.name}:predict (Ctrl-C stops)",
        flush=True,
    )
    try:
        threading.Event().wait()
    finally:
        server.stop()
        model.close()
    return 0
