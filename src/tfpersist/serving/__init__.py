"""``tfpersist serve``: TF Serving's REST and gRPC APIs for any model format.

- servables.py: a model's versions (one model, or a base directory of numbered versions
  polled for new ones), loaded and warmed before they take traffic;
- service.py: what both APIs share — a batcher per version (batching.py), the metrics
  (metrics.py), the count of requests in flight, TF Serving's error codes;
- signatures.py: a SavedModel's every signature, run by its TensorInfos' tensor names;
- rest.py, jsontensor.py (TF Serving's JSON tensors and their checks), examples.py
  (Classify, Regress, MultiInference), server.py: the REST API (Granian); grpc_api.py: gRPC;
- v2.py (REST), v2_grpc.py, v2_proto.py (gRPC): KServe's v2 protocol (the Open Inference
  Protocol) beside TF Serving's, on the same ports and the same Service.

``start`` brings it all up; ``Running.stop`` is the graceful stop SIGTERM triggers.

Imports: core, tfapi, safety, formats, freezing, running, versions (TensorFlow only for gRPC
and TF models).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from tfpersist.core.errors import TfpersistError
from tfpersist.serving.options import DEFAULT_PORT, MAX_REQUEST_BYTES, Options

if TYPE_CHECKING:
    from tfpersist.serving import servables
    from tfpersist.serving.server import Server
    from tfpersist.serving.service import Service

__all__ = ["DEFAULT_PORT", "MAX_REQUEST_BYTES", "Options", "Running", "Server", "make_app", "start"]


def __getattr__(name: str):
    """The server's modules (Granian, the runtimes) load when first used, not with the
    package: the CLI's parser reads only options.py."""
    if name in ("Server", "make_app"):
        from tfpersist.serving import server

        return getattr(server, name)
    raise AttributeError(f"module 'tfpersist.serving' has no attribute '{name}'")


class Running:
    """A server up: ``port``, ``grpc_port``; ``stop(drain_seconds)`` stops gracefully and
    returns how many requests were still in flight when the bound ran out (``closed``: False
    when connections were still open then, though none had a request the server had begun)."""

    def __init__(self, service: Service, server: Server, grpc, poller):
        self.service, self.server, self.grpc, self.poller = service, server, grpc, poller
        self.port, self.grpc_port = server.port, grpc.port if grpc else None
        self.closed = False

    def stop(self, drain_seconds: float = 30.0, refusing=None) -> int:
        """Both APIs stop taking new connections and calls at once (then ``refusing()`` is
        called), every request already received is answered, within ``drain_seconds`` in all
        (server.py's ``quiesce``)."""
        deadline = time.monotonic() + drain_seconds
        if self.poller is not None:  # first: no version begins loading during the drain
            self.poller.stop(wait=False)  # (one under way ends; the listener closes now)
        grpc_done = None
        if self.grpc is not None:  # new calls refused from here, calls received run on
            grpc_done = self.grpc.stop(grace=drain_seconds, wait=False)
        self.closed = self.server.quiesce(drain_seconds, refusing)
        if grpc_done is not None:
            grpc_done.wait(timeout=max(0.0, deadline - time.monotonic()) + 1)
        left = self.service.in_flight
        self.server.stop()
        if self.poller is not None:
            self.poller.stop()
        self.service.close()
        return left


def catalog_for(path: Path, opener, options: Options, say=print) -> servables.Catalog:
    """A base directory of numbered versions, or one model (version 1); the first version
    loaded and warmed before this returns."""
    from tfpersist.serving import servables

    labels = dict(options.labels)
    if servables.is_base_dir(path):
        catalog = servables.Catalog(options.name, opener, base=path, labels=labels, on_change=say)
        catalog.refresh()
        if catalog.latest() is None:
            errors = "; ".join(f"{s.version}: {s.error}" for s in catalog.states() if s.error)
            raise TfpersistError(f"{path}: no version loads ({errors or 'none found'})")
    else:
        model = opener(path)
        catalog = servables.Catalog(options.name, opener, model=model, labels=labels)
    unknown = [
        f"{k}={v}" for k, v in labels.items() if v not in {s.version for s in catalog.states()}
    ]
    if unknown:
        catalog.close()
        raise TfpersistError(f"--label {unknown[0]}: no such version under {path}")
    return catalog


def catalog_following(
    spec: str, repo, scratch: Path, opener, options: Options, say=print
) -> servables.Catalog:
    """A registry stage (``digits#prod``) served as it moves: the stage's version loaded
    now, and whatever it answers later loaded and warmed before it takes over."""
    from tfpersist.serving import servables

    source = servables.registry_source(spec, repo, scratch, say)
    catalog = servables.Catalog(
        options.name, opener, source=source, labels=dict(options.labels), on_change=say
    )
    catalog.refresh()
    if catalog.latest() is None:
        errors = "; ".join(s.error for s in catalog.states() if s.error)
        raise TfpersistError(f"{spec}: nothing to serve ({errors or 'see above'})")
    return catalog


def start(catalog: servables.Catalog, options: Options) -> Running:
    from tfpersist.serving import servables
    from tfpersist.serving.server import Server, make_app
    from tfpersist.serving.service import Service

    service = Service(
        catalog,
        batching_mode=options.batching,
        max_batch_size=options.max_batch_size,
        batch_timeout_micros=options.batch_timeout_micros,
        max_queued=options.max_queued,
        request_timeout=options.request_timeout,
    )
    server = Server(
        make_app(service, options.max_request_bytes), options.host, options.port, service
    )
    server.start()
    grpc = poller = None
    try:
        if options.grpc_port is not None:
            from tfpersist.serving.grpc_api import GrpcServer

            grpc = GrpcServer(service, server.loop, options.host, options.grpc_port)
            grpc.start()
        if catalog.polled:
            poller = servables.Poller(catalog, options.poll_seconds).start()
    except Exception:
        server.stop()
        raise
    return Running(service, server, grpc, poller)


def serve_model(model, name: str = "model", **fields) -> Running:
    """``model`` (loaders.open_model) served as version 1 of ``name`` on a free port unless
    ``port`` says otherwise; no gRPC unless ``grpc_port`` is given."""
    from tfpersist.serving import servables

    options = Options(name=name, **{"port": 0, **fields})
    return start(servables.Catalog(name, None, model=model, labels=dict(options.labels)), options)
