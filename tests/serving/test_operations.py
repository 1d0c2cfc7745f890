"""Running a server in production: Prometheus metrics parsed with the Prometheus client's own
parser, TF Serving's status codes, NaN and Infinity as TF Serving takes them, batching. The
drain SIGTERM starts: test_drain.py."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tfpersist import serving
from tfpersist.running import loaders

from helpers import X
from helpers import two_layer as build


def call(url: str, body=None) -> tuple[int, dict | str]:
    """(status, the JSON answer, or the text of a probe's)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=30) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()


def half_sent(port: int, path: str, body: bytes) -> socket.socket:
    """A request whose headers and first half of the body are on the wire: in flight."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    s.sendall(head + body[: len(body) // 2])
    return s


def finish(s: socket.socket, body: bytes) -> tuple[int, dict]:
    s.sendall(body[len(body) // 2 :])
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


@pytest.fixture(scope="module")
def model_file(tf, tmp_path_factory):
    path = tmp_path_factory.mktemp("ops") / "model.pb"
    build(tf, path)
    return path


@pytest.fixture(scope="module")
def served(model_file):
    running = serving.serve_model(loaders.open_model(model_file), "m", max_queued=4)
    yield running, f"http://127.0.0.1:{running.port}"
    running.stop()


def families(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/monitoring/prometheus/metrics", timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(found: dict, family: str, suffix: str = "", **labels) -> float:
    return sum(
        s.value
        for s in found[family].samples
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_count_requests_outcomes_latencies_and_versions(served):
    _, base = served
    before = families(base)
    ok_before = sample(before, ":tensorflow:serving:request_count", "_total", status="OK")
    for _ in range(5):
        assert call(f"{base}/v1/models/m:predict", {"instances": X[:3].tolist()})[0] == 200
    assert call(f"{base}/v1/models/m:predict", {"instances": [[1.0]]})[0] == 400
    found = families(base)
    counted = ":tensorflow:serving:request_count"
    assert sample(found, counted, "_total", status="OK", API="predict") - ok_before == 5
    assert sample(found, counted, "_total", status="INVALID_ARGUMENT", version="1") >= 1
    latency = ":tensorflow:serving:request_latency"
    assert sample(found, latency, "_count", entrypoint="REST") >= 5
    assert sample(found, latency, "_sum") > 0
    assert sample(found, ":tensorflow:serving:runtime_latency", "_count") >= 5
    available = ":tensorflow:serving:model_version_available"
    assert sample(found, available, model_name="m", version="1") == 1


def test_tf_serving_status_codes_and_probes(served, model_file):
    running, base = served
    m = f"{base}/v1/models/m"
    code, answer = call(f"{m}:classify", {"examples": [{"x": 1.0}]})  # a predict-only model
    assert code == 400 and "No classification inputs found in SignatureDef" in answer["error"]
    code, answer = call(f"{m}:regress", {"examples": [{"x": 1.0}]})
    assert (code, answer["error"]) == (400, "Expected one output Tensor.")  # it has two
    assert call(f"{base}/healthz")[0] == 200 and call(f"{base}/readyz")[0] == 200
    body = json.dumps({"instances": X[:1].tolist()}).encode()
    held = [half_sent(running.port, "/v1/models/m:predict", body) for _ in range(4)]
    time.sleep(0.3)
    code, answer = call(f"{m}:predict", body)  # a fifth while four are in flight
    assert code == 429 and "more than 4 requests in flight" in answer["error"]
    assert [finish(s, body)[0] for s in held] == [200] * 4

    slow = serving.serve_model(loaders.open_model(model_file), "m", request_timeout=0.0)
    try:
        code, answer = call(f"http://127.0.0.1:{slow.port}/v1/models/m:predict", body)
        assert code == 504 and "--request-timeout" in answer["error"]
        slow.service.catalog.draining = True  # not ready; a request that arrives is answered
        code, answer = call(f"http://127.0.0.1:{slow.port}/v1/models/m:predict", body)
        assert code == 504 and "--request-timeout" in answer["error"]
        assert call(f"http://127.0.0.1:{slow.port}/readyz")[0] == 503
    finally:
        slow.stop()


def test_nan_and_infinity_in_and_out_as_tf_serving_writes_them(tf, tmp_path):
    v1 = tf.compat.v1
    from tfpersist.freezing import freeze

    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        tf.add(tf.multiply(x, 0.5), 2.0, name="y")
    freeze.write(graph.as_graph_def(), tmp_path / "hp2.pb", ["y"])
    running = serving.serve_model(loaders.open_model(tmp_path / "hp2.pb"), "hp2")
    try:
        raw = b'{"instances": [1.0, NaN, Infinity, -Infinity]}'
        url = f"http://127.0.0.1:{running.port}/v1/models/hp2:predict"
        with urllib.request.urlopen(urllib.request.Request(url, raw), timeout=30) as answer:
            text = answer.read().decode()
        assert text == '{"predictions": [2.5, NaN, Infinity, -Infinity]}'
    finally:
        running.stop()


def test_concurrent_requests_batch_together_with_the_same_answers(model_file):
    model = loaders.open_model(model_file)
    want = model.run({"x": X})["probabilities"]
    running = serving.serve_model(model, "m", batch_timeout_micros=100_000, max_batch_size=64)
    base = f"http://127.0.0.1:{running.port}"
    try:

        def ask(i):
            return call(f"{base}/v1/models/m:predict", {"instances": X[i : i + 2].tolist()})

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, range(16)))
        for i, (code, answer) in enumerate(answers):
            assert code == 200
            got = [p["probabilities"] for p in answer["predictions"]]
            np.testing.assert_allclose(got, want[i : i + 2], rtol=1e-5, atol=1e-6)
        found = families(base)
        size = ":tensorflow:serving:batching_session:processed_batch_size"
        runs = sample(found, size, "_count")
        assert runs < 16 and sample(found, size, "_sum") == 16  # fewer runs than requests
    finally:
        running.stop()


def test_metrics_write_what_the_prometheus_client_writes_for_the_same_observations():
    """Our loop-owned tallies against the client library's own Counter and Histogram."""
    import prometheus_client

    from tfpersist.serving.metrics import _MICROS, Metrics

    ours = Metrics()
    registry = prometheus_client.CollectorRegistry()
    name = ":tensorflow:serving:request_latency"
    theirs = prometheus_client.Histogram(
        name, "h", ["model_name", "version"], buckets=_MICROS, registry=registry
    )
    count = prometheus_client.Counter(
        ":tensorflow:serving:request_count",
        "c",
        ["model_name", "version", "API", "entrypoint", "status"],
        registry=registry,
    )
    values = [0.0, 10.0, 10.000001, 19.9, 20.0, 1e3, 123456.0, 1e9, 7.5, 20.0]
    for i, value in enumerate(values):
        labels = ("m", str(i % 2))
        ours.latency.labels(*labels).observe(value)
        theirs.labels(*labels).observe(value)
        outcome = ("m", "1", "predict", "REST", "OK" if i % 3 else "NOT_FOUND")
        ours.requests.labels(*outcome).inc()
        count.labels(*outcome).inc()

    def samples(text: str, family: str) -> set:
        found = {f.name: f for f in text_string_to_metric_families(text)}[family]
        return {(s.name, tuple(sorted(s.labels.items())), s.value) for s in found.samples}

    mine, reference = ours.text().decode(), prometheus_client.generate_latest(registry).decode()
    assert samples(mine, name) == samples(reference, name)
    counted = ":tensorflow:serving:request_count"
    assert samples(mine, counted) == samples(reference, counted)

    def types(text: str) -> set:
        lines = text.splitlines()
        return {x for x in lines if x.startswith("# TYPE") and "_created " not in x}

    assert types(reference) <= types(mine)


def test_a_batch_leader_waits_for_requests_being_read_but_not_for_a_stalled_one():
    """batching._gather on a real loop: a request still reading its body joins the leader's
    run; one that never comes (a client stalled mid-body) holds the leader only a few turns."""
    import asyncio

    from tfpersist.serving import batching

    runs = []

    def run(feeds):
        return {"y": feeds["x"] * 2}

    async def scenario(arrives_after: int | None):
        pending = {"n": 1}  # one request begun, its body not read yet
        batcher = batching.Batcher(
            run,
            max_batch_size=8,
            inline=True,
            observe=lambda requests, rows, seconds: runs.append(requests),
            arriving=lambda: pending["n"],
        )

        async def late():
            for _ in range(arrives_after):
                await asyncio.sleep(0)
            pending["n"] -= 1
            return await batcher.submit({"x": np.ones((1, 2), np.float32)})

        loop = asyncio.get_running_loop()
        leader = batcher.submit({"x": np.zeros((1, 2), np.float32)})
        if arrives_after is None:  # stalled: never submits
            start = loop.time()
            got = await leader
            return [got], loop.time() - start
        return await asyncio.gather(leader, late()), None

    answers, _ = asyncio.run(scenario(arrives_after=batching.IDLE_TURNS - 2))
    assert runs == [2] and answers[1]["y"].tolist() == [[2.0, 2.0]]  # one run, both answered
    runs.clear()
    answers, seconds = asyncio.run(scenario(arrives_after=None))
    assert runs == [1] and answers[0]["y"].tolist() == [[0.0, 0.0]] and seconds < 0.5
