"""Prometheus metrics at TF Serving's path (``/monitoring/prometheus/metrics``), with TF
Serving's names and labels where it has them (latencies in microseconds, as it reports them),
written by the Prometheus project's own client library, in a registry of each server's own.

- ``:tensorflow:serving:request_count_total{model_name, version, API, entrypoint, status}``
- ``:tensorflow:serving:request_latency{model_name, version, API, entrypoint}`` (µs histogram)
- ``:tensorflow:serving:runtime_latency{model_name, version, API, runtime}`` (µs: the model
  itself)
- ``:tensorflow:serving:batching_session:processed_batch_size{model_name}`` (requests per
  model run) and ``…:batch_rows{model_name}`` (rows per run)
- ``:tensorflow:serving:in_flight_requests`` and ``…:model_version_available{model_name,
  version}`` (1 while the version takes traffic)

The values are plain numbers counted on the server's event loop, the one thread that answers
requests (REST handlers and gRPC calls both run there), and handed to the client library as a
collector when scraped: the library's own metric objects take a lock per update (five
histogram observations and a count per request cost ~12 µs of a ~200 µs request).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

PATH = "/monitoring/prometheus/metrics"
PREFIX = ":tensorflow:serving:"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
_MICROS = tuple(10.0 * 2**i for i in range(21))  # 10 µs … ~10 s
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Count:
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


class _Buckets:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds, self.counts, self.sum = bounds, [0] * (len(bounds) + 1), 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: value ≤ bound
        self.sum += value


class _Family:
    """A metric's labelled children: ``labels(*values)`` → one child, made once."""

    def __init__(self, kind, name: str, documentation: str, labels: list[str], make):
        self.kind, self.name, self.documentation, self.label_names = (
            kind,
            name,
            documentation,
            labels,
        )
        self._make, self.children = make, {}

    def labels(self, *values: str):
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self._make()
        return child

    def family(self):
        out = self.kind(self.name, self.documentation, labels=self.label_names)
        for values, child in list(self.children.items()):
            if isinstance(child, _Buckets):
                total, cumulative = 0, []
                for bound, count in zip((*child.bounds, float("inf")), child.counts, strict=True):
                    total += count
                    cumulative.append((floatToGoString(bound), total))
                out.add_metric(list(values), cumulative, child.sum)
            else:
                out.add_metric(list(values), child.value)
        return out


class _Gauge:
    """The count of requests in flight, read when scraped."""

    def __init__(self, name: str, documentation: str):
        self.name, self.documentation = name, documentation
        self.read: Callable[[], float] = lambda: 0

    def set_function(self, read: Callable[[], float]) -> None:
        self.read = read

    def family(self):
        return GaugeMetricFamily(self.name, self.documentation, value=self.read())


class Metrics:
    def __init__(self):
        def histogram(name, documentation, labels, bounds):
            return _Family(
                HistogramMetricFamily, name, documentation, labels, lambda: _Buckets(bounds)
            )

        self.requests = _Family(
            CounterMetricFamily,
            f"{PREFIX}request_count",
            "Requests, by outcome (a TF Serving error code name: OK, INVALID_ARGUMENT, …)",
            ["model_name", "version", "API", "entrypoint", "status"],
            _Count,
        )
        self.latency = histogram(
            f"{PREFIX}request_latency",
            "Request latency in microseconds, from the body read to the answer",
            ["model_name", "version", "API", "entrypoint"],
            _MICROS,
        )
        self.runtime = histogram(
            f"{PREFIX}runtime_latency",
            "The model's own run in microseconds (one batch)",
            ["model_name", "version", "API", "runtime"],
            _MICROS,
        )
        self.batch_requests = histogram(
            f"{PREFIX}batching_session:processed_batch_size",
            "Requests run together in one model run",
            ["model_name"],
            _SIZES,
        )
        self.batch_rows = histogram(
            f"{PREFIX}batching_session:batch_rows", "Rows in one model run", ["model_name"], _SIZES
        )
        self.in_flight = _Gauge(f"{PREFIX}in_flight_requests", "Requests being answered")
        self.available = _Family(
            GaugeMetricFamily,
            f"{PREFIX}model_version_available",
            "1 while the version takes traffic",
            ["model_name", "version"],
            _Count,
        )
        metrics = [
            self.requests,
            self.latency,
            self.runtime,
            self.batch_requests,
            self.batch_rows,
            self.in_flight,
            self.available,
        ]

        class Collector:
            def collect(self):
                return [m.family() for m in metrics]

        self.registry = CollectorRegistry()
        self.registry.register(Collector())

    def text(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    def versions(self, name: str, servables) -> None:
        for s in servables:
            self.available.labels(name, str(s.version)).set(1 if s.state == "AVAILABLE" else 0)
