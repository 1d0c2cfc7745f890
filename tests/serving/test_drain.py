"""The drain (`tfpersist serve` as a process, real sockets): after SIGTERM or Ctrl-C every
request the server had received is answered 200 with its result — read and waiting for its
turn, queued in a batch that has not run, its body still arriving, or a gRPC call — new
connections are refused, and the process exits 0 within --drain-seconds. A signal that lands
while the server is still starting (gRPC importing TensorFlow) drains too instead of killing it.
"""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import env
from helpers import two_layer as build

DRAIN = 10.0  # --drain-seconds: the bound every scenario must stop within
IN_FLIGHT = ":tensorflow:serving:in_flight_requests"
BATCHES = ":tensorflow:serving:batching_session:processed_batch_size_count"


class Served:
    """``tfpersist serve …`` as a process; its stderr lines collected as they come."""

    def __init__(self, *args: str, drain: float = DRAIN):
        self.proc = subprocess.Popen(
            [f"{sys.prefix}/bin/tfpersist", "serve", *args, "--drain-seconds", f"{drain:g}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)

    def ports(self) -> tuple[int, int | None]:
        """(REST, gRPC or None) from the line the server prints once up."""
        line = self.proc.stdout.readline()
        assert line.startswith("serving "), line + self.wait_for("\0", 1)
        rest = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        grpc = int(line.split("gRPC on 127.0.0.1:")[1].split()[0]) if "gRPC on" in line else None
        return rest, grpc

    def wait_for(self, text: str, seconds: float = 30.0) -> str:
        """The log up to the line holding ``text``."""
        deadline = time.monotonic() + seconds
        while not any(text in line for line in self.log) and time.monotonic() < deadline:
            try:
                self.log.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return "".join(self.log)

    def signal(self, sig) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Client:
    """One keep-alive connection, seen answered once (GET /healthz) so that the server has
    accepted it; then a predict request written whole, or ``part`` of it."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert self.answer() == (200, b"ok\n")

    def send(self, path: str, rows: np.ndarray, part: float = 1.0) -> None:
        self.body = json.dumps({"instances": rows.tolist()}).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode()
        self.sent = int(len(self.body) * part)
        self.sock.sendall(head + self.body[: self.sent])

    def rest(self) -> None:
        self.sock.sendall(self.body[self.sent :])

    def answer(self) -> tuple[int, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self._recv()
        return int(head.split()[1]), body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection without an answer")
        return chunk


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def rows(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def frozen(tf, tmp_path_factory):
    """The two-layer frozen graph (a TensorFlow model: runs on a worker thread) and the model
    loaded in this process, for the answers."""
    from tfpersist.running import loaders

    path = tmp_path_factory.mktemp("drain") / "model.pb"
    build(tf, path)
    model = loaders.open_model(path)
    yield path, model
    model.close()


def test_sigterm_answers_requests_read_queued_and_mid_body_and_refuses_new_ones(frozen):
    """Six requests written whole the moment before SIGTERM (the server still reading and
    parsing them: most have not reached the model) and two whose bodies are finished after it,
    all in a batch that waits 0.3 s for more: eight 200s with the model's own answers."""
    path, model = frozen
    served = Served(
        str(path), "--name", "m", "--port", "0", "--grpc-port", "-1",
        "--max-batch-size", "100000", "--batch-timeout-micros", "300000",
    )  # fmt: skip
    try:
        port, _ = served.ports()
        clients = [Client(port) for _ in range(8)]
        sent = [rows(i, 2000) for i in range(8)]
        for i, (client, x) in enumerate(zip(clients, sent, strict=True)):
            client.send("/v1/models/m:predict", x, part=0.5 if i >= 6 else 1.0)
        start = served.signal(signal.SIGTERM)
        served.wait_for("new connections refused")
        assert refused(port)  # a connection opened after the signal
        for client in clients[6:]:
            client.rest()  # bodies finished after the signal
        for client, x in zip(clients, sent, strict=True):
            code, body = client.answer()
            assert code == 200, body
            got = [p["probabilities"] for p in json.loads(body)["predictions"]]
            np.testing.assert_allclose(got, model.run({"x": x})["probabilities"], 1e-5, 1e-6)
        assert served.proc.wait(timeout=DRAIN + 5) == 0
        assert time.monotonic() - start < DRAIN
        assert "drained: every request answered" in served.wait_for("drained")
    finally:
        served.close()


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """x [n, 4] → MatMul → Softmax as ONNX (runs on the event loop), and its weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "drain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("drain-onnx") / "model.onnx"
    onnx.save(model, path)
    return path, w


def softmax(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    logits = x.astype(np.float64) @ w
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def gauges(port: int) -> dict[str, float]:
    """Each metric's value, labels dropped (one model): requests in flight, batches run."""
    client = Client(port)
    client.sock.sendall(b"GET /monitoring/prometheus/metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    text = client.answer()[1].decode()
    client.sock.close()
    return {
        line.split()[0].split("{")[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(":tensorflow:serving:") and len(line.split()) == 2
    }


def test_ctrl_c_with_grpc_answers_a_queued_batch_of_rest_and_grpc_requests(tf, onnx_model):
    """The default set-up (gRPC on) with an ONNX model: REST requests, a gRPC call, and a v2
    infer over each of HTTP and gRPC (tritonclient's) queued in a batch that has not run yet
    (it waits 1 s for more) and a REST body half written when Ctrl-C lands: all answered; a
    gRPC call made after it is refused (UNAVAILABLE)."""
    import grpc
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    path, w = onnx_model
    served = Served(
        str(path), "--name", "m", "--port", "0", "--grpc-port", "0",
        "--max-batch-size", "100000", "--batch-timeout-micros", "1000000",
    )  # fmt: skip
    channel = v2_grpc = None
    v2_sent = {"http": rows(98, 50), "grpc": rows(97, 50)}
    v2_got: queue.Queue = queue.Queue()

    def v2_http(port: int) -> None:  # tritonclient's HTTP client (gevent's) blocks: a thread
        client = triton_http.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=30)
        try:
            given = triton_http.InferInput("x", [50, 4], "FP32")
            given.set_data_from_numpy(v2_sent["http"])  # binary, as tritonclient sends it
            v2_got.put(("http", client.infer("m", [given]).as_numpy("probabilities")))
        except Exception as e:
            v2_got.put(("http", e))
        finally:
            client.close()

    try:
        port, grpc_port = served.ports()
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows(99, 50)))
        clients = [Client(port) for _ in range(4)]
        sent = [rows(i, 500) for i in range(4)]
        for i, (client, x) in enumerate(zip(clients, sent, strict=True)):
            client.send("/v1/models/m:predict", x, part=0.5 if i == 3 else 1.0)
        call = stub.Predict.future(request, timeout=30)
        threading.Thread(target=v2_http, args=(port,), daemon=True).start()
        v2_grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        given = triton_grpc.InferInput("x", [50, 4], "FP32")
        given.set_data_from_numpy(v2_sent["grpc"])
        v2_grpc.async_infer(
            "m", [given], lambda result, error: v2_got.put(("grpc", error or result)),
            client_timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (now := gauges(port))[IN_FLIGHT] < 7 and time.monotonic() < deadline:
            time.sleep(0.02)  # until all seven have begun: four REST (one mid-body), one gRPC,
        assert now[IN_FLIGHT] == 7 and now.get(BATCHES, 0) == 0  # two v2; none run yet
        start = served.signal(signal.SIGINT)
        served.wait_for("new connections refused")
        assert refused(port)
        with pytest.raises(grpc.RpcError) as late:
            stub.Predict(request, timeout=10)
        assert late.value.code() == grpc.StatusCode.UNAVAILABLE
        clients[3].rest()
        for client, x in zip(clients, sent, strict=True):
            code, body = client.answer()
            assert code == 200, body
            got = json.loads(body)["predictions"]  # one output: its rows
            np.testing.assert_allclose(got, softmax(x, w), rtol=1e-5, atol=1e-6)
        answer = tf.make_ndarray(call.result().outputs["probabilities"])
        np.testing.assert_allclose(answer, softmax(rows(99, 50), w), rtol=1e-5, atol=1e-6)
        for _ in v2_sent:
            via, got = v2_got.get(timeout=10)
            assert not isinstance(got, Exception), f"v2 {via}: {got}"
            got = got if via == "http" else got.as_numpy("probabilities")
            np.testing.assert_allclose(got, softmax(v2_sent[via], w), rtol=1e-5, atol=1e-6)
        assert served.proc.wait(timeout=DRAIN + 5) == 0
        assert time.monotonic() - start < DRAIN
        assert "drained: every request answered" in served.wait_for("drained")
    finally:
        if channel is not None:
            channel.close()
        if v2_grpc is not None:
            v2_grpc.close()
        served.close()


def test_sigterm_while_grpc_starts_drains_instead_of_killing(onnx_model):
    """The REST port opens before gRPC has imported TensorFlow: a probe that waits for the port
    and a SIGTERM right after its request used to kill the process (exit 143, the connection
    reset). Now the request is answered and the process exits 0."""
    path, w = onnx_model
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = Served(str(path), "--name", "m", "--port", str(port), "--grpc-port", "0")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = Client(port)
                break
            except OSError:
                assert time.monotonic() < deadline and served.proc.poll() is None, served.log
                time.sleep(0.005)
        x = rows(5, 3)
        client.send("/v1/models/m:predict", x)
        served.signal(signal.SIGTERM)
        code, body = client.answer()
        assert code == 200, body
        got = json.loads(body)["predictions"]
        np.testing.assert_allclose(got, softmax(x, w), rtol=1e-5, atol=1e-6)
        assert served.proc.wait(timeout=DRAIN + 30) == 0
        assert "drained: every request answered" in served.wait_for("drained")
    finally:
        served.close()


def test_sigterm_while_the_model_loads_stops_without_opening_a_port(frozen):
    """A SIGTERM that lands while the model loads (a TensorFlow graph: TensorFlow imports
    first, seconds) stops the process once loaded, exit 0 and one line, no port ever opened
    and nothing to drain."""
    path, _ = frozen
    served = Served(str(path), "--name", "m", "--port", "0", "--grpc-port", "0")
    try:
        deadline = time.monotonic() + 30
        while not caught(served.proc.pid, signal.SIGTERM):  # its handler is in: loading
            assert time.monotonic() < deadline and served.proc.poll() is None, served.log
            time.sleep(0.005)
        served.signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0
        assert served.proc.stdout.read() == ""  # no "serving … on http://…" line: no port
        log = served.wait_for("before serving", 10)
        assert log == "serve: SIGTERM while loading: stopped before serving\n", log
    finally:
        served.close()


def caught(pid: int, sig) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (Linux: /proc's SigCgt mask)."""
    with open(f"/proc/{pid}/status") as status:
        mask = next(line for line in status if line.startswith("SigCgt:")).split()[1]
    return bool(int(mask, 16) & 1 << (sig - 1))


def test_a_client_stalled_mid_body_is_counted_unanswered_at_the_bound(onnx_model):
    """The bound holds: a body that never finishes is cut at --drain-seconds, the log says one
    request went unanswered (not "every request answered") and the exit code is 1; an idle
    keep-alive connection is closed at once."""
    path, _ = onnx_model
    served = Served(str(path), "--name", "m", "--port", "0", "--grpc-port", "-1", drain=1.0)
    try:
        port, _ = served.ports()
        idle, stalled = Client(port), Client(port)
        stalled.send("/v1/models/m:predict", rows(1, 10), part=0.5)
        start = served.signal(signal.SIGTERM)
        assert idle.sock.recv(10) == b""  # closed, nothing in flight on it
        assert served.proc.wait(timeout=10) == 1
        assert time.monotonic() - start < 1.0 + 1.0
        log = served.wait_for("unanswered")
        assert "stopped with 1 requests unanswered after 1 s" in log and "drained" not in log
    finally:
        served.close()
