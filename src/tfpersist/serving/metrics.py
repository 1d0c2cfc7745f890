"""Prometheus metrics at TF Serving's path (``/monitoring/prometheus/metrics``), with TF
Serving's names and labels where it has them (latencies in microseconds, as it reports them),
from the Prometheus project's own client library, in a registry of each server's own.

- ``:tensorflow:serving:request_count_total{model_name, version, API, entrypoint, status}``
- ``:tensorflow:serving:request_latency{model_name, version, API, entrypoint}`` (µs histogram)
- ``:tensorflow:serving:runtime_latency{model_name, version, API, runtime}`` (µs: the model
  itself)
- ``:tensorflow:serving:batching_session:processed_batch_size{model_name}`` (requests per
  model run) and ``…:batch_rows{model_name}`` (rows per run)
- ``:tensorflow:serving:in_flight_requests`` and ``…:model_version_available{model_name,
  version}`` (1 while the version takes traffic)
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

prometheus_client.disable_created_metrics()

PATH = "/monitoring/prometheus/metrics"
PREFIX = ":tensorflow:serving:"
_MICROS = tuple(10.0 * 2**i for i in range(21))  # 10 µs … ~10 s
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}request_count",
            "Requests, by outcome (a TF Serving error code name: OK, INVALID_ARGUMENT, …)",
            ["model_name", "version", "API", "entrypoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            f"{PREFIX}request_latency",
            "Request latency in microseconds, from the body read to the answer",
            ["model_name", "version", "API", "entrypoint"],
            buckets=_MICROS,
            registry=r,
        )
        self.runtime = Histogram(
            f"{PREFIX}runtime_latency",
            "The model's own run in microseconds (one batch)",
            ["model_name", "version", "API", "runtime"],
            buckets=_MICROS,
            registry=r,
        )
        self.batch_requests = Histogram(
            f"{PREFIX}batching_session:processed_batch_size",
            "Requests run together in one model run",
            ["model_name"],
            buckets=_SIZES,
            registry=r,
        )
        self.batch_rows = Histogram(
            f"{PREFIX}batching_session:batch_rows",
            "Rows in one model run",
            ["model_name"],
            buckets=_SIZES,
            registry=r,
        )
        self.in_flight = Gauge(f"{PREFIX}in_flight_requests", "Requests being answered", registry=r)
        self.available = Gauge(
            f"{PREFIX}model_version_available",
            "1 while the version takes traffic",
            ["model_name", "version"],
            registry=r,
        )

    def text(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    def versions(self, name: str, servables) -> None:
        for s in servables:
            self.available.labels(name, str(s.version)).set(1 if s.state == "AVAILABLE" else 0)


CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
