"""The model behind both APIs: the catalog of versions, a batcher per version, the metrics
and the count of requests in flight. REST (server.py) and gRPC (grpc_api.py) both predict
through ``Service.predict`` on the server's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time

from tfpersist import formats
from tfpersist.core.errors import TfpersistError
from tfpersist.serving import batching, rest, signatures
from tfpersist.serving.metrics import Metrics
from tfpersist.serving.servables import Catalog, NotFound, Unavailable

INLINE_FORMATS = (formats.TFLITE, formats.ONNX)  # microseconds a run: no thread hop
INLINE_SECONDS = 0.002  # a model whose warm run took less runs on the loop too


class Overloaded(TfpersistError):
    """More requests queued than allowed (HTTP 429, gRPC RESOURCE_EXHAUSTED)."""


class TimedOut(TfpersistError):
    """The answer took longer than the request timeout (HTTP 504, gRPC DEADLINE_EXCEEDED)."""


# TF Serving's error codes, their HTTP statuses (its http_server.cc mapping) and gRPC names
CODES = {
    rest.FailedPrecondition: ("FAILED_PRECONDITION", 400),
    rest.Unimplemented: ("UNIMPLEMENTED", 501),
    rest.BadRequest: ("INVALID_ARGUMENT", 400),
    TfpersistError: ("INVALID_ARGUMENT", 400),  # a model that refused its feeds
    NotFound: ("NOT_FOUND", 404),
    Overloaded: ("RESOURCE_EXHAUSTED", 429),
    Unavailable: ("UNAVAILABLE", 503),
    TimedOut: ("DEADLINE_EXCEEDED", 504),
}


def code_of(error: Exception) -> tuple[str, int]:
    for kind in type(error).__mro__:
        if kind in CODES:
            return CODES[kind]
    return "INTERNAL", 500


class Service:
    def __init__(
        self,
        catalog: Catalog,
        *,
        batching_mode: str = "auto",
        max_batch_size: int = 32,
        batch_timeout_micros: int = 0,
        max_queued: int = 1024,
        request_timeout: float = 60.0,
        metrics: Metrics | None = None,
    ):
        self.catalog = catalog
        self.metrics = metrics or Metrics()
        self._mode, self._max_batch = batching_mode, max_batch_size
        self._timeout_micros = batch_timeout_micros
        self.max_queued, self.request_timeout = max_queued, request_timeout
        self._batchers: dict[int, tuple[object, batching.Batcher]] = {}
        self.in_flight = 0
        self.arriving = 0  # REST requests begun, bodies not yet parsed (batching._gather)
        self._children: dict = {}  # labelled metrics, looked up once
        self.metrics.in_flight.set_function(lambda: self.in_flight)

    @property
    def name(self) -> str:
        return self.catalog.name

    def _batcher(self, servable, signature: str | None = None) -> batching.Batcher:
        """The version's batcher; for a signature other than its model's default
        (signatures.py: a SavedModel's every signature), one of that signature's own."""
        key = servable.version if signature is None else (servable.version, signature)
        known = self._batchers.get(key)
        if known is not None and known[0] is servable.model:
            return known[1]
        model = servable.model
        runs = model if signature is None else model.signatures[signature]
        on = self._mode == "on" or (self._mode == "auto" and batching.batchable(runs))
        version = str(servable.version)
        runtime = getattr(model, "format", "TensorFlow graph")

        run_micros = self.metrics.runtime.labels(self.name, version, "predict", runtime)
        batch_requests = self.metrics.batch_requests.labels(self.name)
        batch_rows = self.metrics.batch_rows.labels(self.name)

        def observe(requests, rows, seconds):
            run_micros.observe(seconds * 1e6)
            batch_requests.observe(requests)
            batch_rows.observe(rows)

        batcher = batching.Batcher(
            runs.run,
            max_batch_size=self._max_batch if on and batching.batchable(runs) else 1,
            timeout_micros=self._timeout_micros,
            inline=runtime in INLINE_FORMATS or servable.run_seconds < INLINE_SECONDS,
            observe=observe,
            arriving=lambda: self.arriving,
        )
        if known is not None:
            known[1].close()
        self._batchers[key] = (model, batcher)
        return batcher

    def _counter(self, version: str, api: str, entrypoint: str, status: str):
        key = ("count", version, api, entrypoint, status)
        if key not in self._children:
            self._children[key] = self.metrics.requests.labels(
                self.name, version, api, entrypoint, status
            )
        return self._children[key]

    def _latency(self, version: str, api: str, entrypoint: str):
        key = ("latency", version, api, entrypoint)
        if key not in self._children:
            self._children[key] = self.metrics.latency.labels(self.name, version, api, entrypoint)
        return self._children[key]

    def begin(self, api: str, entrypoint: str, version=None, label=None):
        """A request starts: its servable held and counted in flight (``end`` with the
        outcome); an error (no such version, too many in flight) is counted and raised."""
        try:
            if self.in_flight >= self.max_queued:
                raise Overloaded(f"more than {self.max_queued} requests in flight; try again")
            servable = self.catalog.acquire(version, label)
        except Exception as e:
            self._counter("", api, entrypoint, code_of(e)[0]).inc()
            raise
        self.in_flight += 1
        return servable

    def end(self, servable, api: str, entrypoint: str, start: float, error=None) -> None:
        self.in_flight -= 1
        self.catalog.release(servable)
        version = str(servable.version)
        self._counter(version, api, entrypoint, code_of(error)[0] if error else "OK").inc()
        if error is None:
            self._latency(version, api, entrypoint).observe((time.perf_counter() - start) * 1e6)

    @contextlib.contextmanager
    def request(self, api: str, entrypoint: str, version=None, label=None):
        """``begin`` … ``end`` around a block (gRPC)."""
        start = time.perf_counter()
        servable = self.begin(api, entrypoint, version, label)
        error = None
        try:
            yield servable
        except Exception as e:
            error = e
            raise
        finally:
            self.end(servable, api, entrypoint, start, error)

    async def predict(self, servable, feeds, signature: str | None = None):
        """The outputs of ``signature`` (default: the model's own) for ``feeds``."""
        deadline = asyncio.get_running_loop().time() + self.request_timeout
        if signature == signatures.default_key(servable.model):
            signature = None
        try:
            return await self._batcher(servable, signature).submit(feeds, deadline)
        except TfpersistError as e:  # the model's message, without the server's paths
            where = (getattr(servable.model, "source", ""), servable.path)
            e.args = (signatures._private(str(e), *where),)
            raise
        except TimeoutError:
            raise TimedOut(
                f"no answer within {self.request_timeout:g} s (--request-timeout)"
            ) from None

    def close(self) -> None:
        for _, batcher in self._batchers.values():
            batcher.close()
        self.catalog.close()
