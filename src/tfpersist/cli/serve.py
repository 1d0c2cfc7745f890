"""``tfpersist serve``: TF Serving's REST and gRPC APIs and KServe's v2 protocol for any model
format."""

from __future__ import annotations

from tfpersist.cli.common import (
    ARCHITECTURE_HELP,
    MODEL_SPEC_HELP,
    add_repo,
    assignment,
    csv_names,
    local_model,
    positive,
    trust_from,
)
from tfpersist.core.errors import UsageError


def add_parser(sub, trust) -> None:
    from tfpersist.serving import options

    p = sub.add_parser(
        "serve",
        parents=[trust],
        help="serve a model over TF Serving's REST and gRPC APIs and KServe's v2 protocol "
        "(127.0.0.1 by default)",
        description="MODEL: a .pb, checkpoint, SavedModel, .tflite, .onnx or Keras file, "
        "checked like predict before the port opens; or a base directory of numbered versions "
        "(BASE/1/, BASE/2/ …), polled: a new version is loaded and warmed before it takes "
        'traffic. POST /v1/models/NAME:predict with {"instances": [...]} or {"inputs": ...}; '
        "GET /v1/models/NAME[/metadata]; gRPC PredictionService and ModelService. KServe's v2 "
        "protocol (Open Inference Protocol) beside it: POST /v2/models/NAME/infer, GET "
        "/v2/models/NAME, /v2/health/live, /v2/health/ready, and gRPC "
        "inference.GRPCInferenceService on the same gRPC port (docs/kserve.md). Prometheus "
        "metrics at /monitoring/prometheus/metrics. SIGTERM or Ctrl-C drains: new connections "
        "refused, every request received answered, exit 0 (a second Ctrl-C: at once).",
    )
    p.add_argument("model", help=f"{MODEL_SPEC_HELP}; or a base directory of versions")
    p.add_argument("--name", default="model", help="the model's name in URLs (default: model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=options.DEFAULT_PORT, help="REST (default: %(default)s)"
    )
    p.add_argument(
        "--grpc-port",
        type=int,
        default=options.DEFAULT_GRPC_PORT,
        help="gRPC (default: %(default)s, as TF Serving; 0: a free port; -1: no gRPC)",
    )
    p.add_argument(
        "--max-request-bytes",
        type=positive,
        default=options.MAX_REQUEST_BYTES,
        help="larger bodies get 413 (default: %(default)s)",
    )
    p.add_argument(
        "--label",
        type=assignment,
        action="append",
        default=[],
        metavar="LABEL=VERSION",
        help="a version label (/v1/models/NAME/labels/LABEL:predict), e.g. stable=1",
    )
    p.add_argument(
        "--poll-seconds", type=float, default=1.0, help="how often to look for new versions"
    )
    p.add_argument(
        "--batching",
        choices=("auto", "on", "off"),
        default="auto",
        help="run concurrent requests together (auto: for models whose inputs and outputs "
        "all have a free batch dimension)",
    )
    p.add_argument("--max-batch-size", type=positive, default=32, help="rows per run (32)")
    p.add_argument(
        "--batch-timeout-micros",
        type=int,
        default=0,
        help="wait this long for a fuller batch (default 0: never wait)",
    )
    p.add_argument(
        "--max-queued", type=positive, default=1024, help="requests in flight before 429"
    )
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds before 504 (60)")
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM or Ctrl-C, how long requests received may take to finish (30)",
    )
    p.add_argument("--architecture", metavar="MODEL", help=ARCHITECTURE_HELP)
    p.add_argument("--signature", help="a SavedModel's signature (default: serving_default)")
    p.add_argument("--output-nodes", type=csv_names, help="default: from the card")
    add_repo(p)
    p.set_defaults(func=cmd_serve)


def options_from(args):
    from tfpersist import serving

    labels = []
    for label, version in args.label:
        if not version.isdigit():
            raise UsageError(f"--label {label}={version}: the version is a number")
        labels.append((label, int(version)))
    return serving.Options(
        name=args.name,
        host=args.host,
        port=args.port,
        grpc_port=None if args.grpc_port < 0 else args.grpc_port,
        max_request_bytes=args.max_request_bytes,
        poll_seconds=args.poll_seconds,
        labels=tuple(labels),
        batching=args.batching,
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        max_queued=args.max_queued,
        request_timeout=args.request_timeout,
    )


def cmd_serve(args) -> int:
    from pathlib import Path

    from tfpersist.versions import registry

    options = options_from(args)
    match = registry.parse(args.model)
    if match and match["stage"] and not Path(args.model).exists():  # follow the stage
        import tempfile

        from tfpersist import versions

        with tempfile.TemporaryDirectory(prefix="tfpersist-serve-") as scratch:
            return _serve(args, versions.Version(args.model, Path(scratch)), options, True)
    with local_model(args.model, args.repo) as version:
        return _serve(args, version, options)


def _serve(args, version, options, following: bool = False) -> int:
    import signal
    import sys
    import threading

    from tfpersist import serving
    from tfpersist.serving import signatures

    def opener(path):  # a SavedModel with every signature, as TF Serving loads it
        return signatures.open_model(
            path,
            args.output_nodes,
            args.signature,
            trust_from(args),
            architecture=args.architecture,
        )

    def say(line: str) -> None:
        print(f"serve: {line}", file=sys.stderr, flush=True)

    # before any port opens: a signal during loading or start-up drains once up (a second
    # Ctrl-C stops at once), it never kills a server that has taken requests
    stop, signals = threading.Event(), []

    def on_signal(signum, frame) -> None:
        if signals and signum == signal.SIGINT:
            raise KeyboardInterrupt
        signals.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if following:  # version.path: the scratch directory versions are fetched into
        catalog = serving.catalog_following(
            version.spec, args.repo, version.path, opener, options, say
        )
    else:
        catalog = serving.catalog_for(version.path, opener, options, say)
    if stop.is_set():  # the signal came while the model loaded: nothing to drain, no port
        catalog.close()
        say(f"{signals[0]} while loading: stopped before serving")
        return 0
    running = serving.start(catalog, options)
    latest = catalog.latest()
    inputs = ", ".join(f"{t.name} {t.dtype}" for t in latest.model.inputs)
    grpc = f" and gRPC on {options.host}:{running.grpc_port}" if running.grpc_port else ""
    print(
        f"serving {version.spec} ({inputs}) as '{options.name}' version {latest.version} on "
        f"http://{options.host}:{running.port}/v1/models/{options.name}:predict and "
        f"/v2/models/{options.name}/infer{grpc} (Ctrl-C stops)",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        why = signals[0] if signals else "stopping"

        def refusing() -> None:
            say(f"{why}: new connections refused; answering every request received")

        left = running.stop(args.drain_seconds, refusing)
    if left:
        say(f"stopped with {left} requests unanswered after {args.drain_seconds:g} s")
        return 1
    if not running.closed:
        say(
            f"drained: every request begun was answered; connections still open after "
            f"{args.drain_seconds:g} s were closed (idle, or a client stalled mid-request)"
        )
        return 0
    say("drained: every request answered; stopped")
    return 0
