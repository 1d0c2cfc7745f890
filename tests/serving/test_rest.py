"""tfpersist serve: a real server (Granian) on 127.0.0.1, real HTTP requests (urllib), the
request bodies TF Serving's REST API documentation shows."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tfpersist import serving
from tfpersist.core import layout
from tfpersist.freezing import freeze
from tfpersist.running import loaders

from helpers import X
from helpers import two_layer as build


def call(url: str, body=None, method: str | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def half_plus_two(tf, tmp_path_factory):
    """TF Serving's documented example model: y = 0.5 x + 2 on a vector of floats."""
    v1 = tf.compat.v1
    root = tmp_path_factory.mktemp("hp2")
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        tf.add(tf.multiply(x, 0.5), 2.0, name="y")
    freeze.write(graph.as_graph_def(), root / "half_plus_two.pb", ["y"])
    model = loaders.open_model(root / "half_plus_two.pb", ["y"])
    server = serving.serve_model(model, "half_plus_two", max_request_bytes=4096)
    yield f"http://127.0.0.1:{server.port}/v1/models/half_plus_two"
    server.stop()


def test_the_documented_requests_get_the_documented_answers(half_plus_two):
    # https://www.tensorflow.org/tfx/serving/api_rest — "Make REST API calls to ModelServer"
    assert call(f"{half_plus_two}:predict", {"instances": [1.0, 2.0, 5.0]}) == (
        200,
        {"predictions": [2.5, 3.0, 4.5]},
    )
    assert call(f"{half_plus_two}:predict", {"inputs": [1.0, 2.0, 5.0]}) == (
        200,
        {"outputs": [2.5, 3.0, 4.5]},
    )
    body = {"signature_name": "serving_default", "instances": [1.0, 2.0, 5.0]}
    assert call(f"{half_plus_two}/versions/1:predict", body)[1] == {"predictions": [2.5, 3.0, 4.5]}
    code, status = call(half_plus_two)
    assert code == 200 and status["model_version_status"][0]["state"] == "AVAILABLE"
    code, meta = call(f"{half_plus_two}/metadata")
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["x"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{not json", 400, "JSON Parse error"),
        (b"[1, 2]", 400, "JSON Value: [1, 2] Is not object"),
        ({"instances": []}, 400, "No values in 'instances' array"),
        ({"instances": [1.0], "inputs": [1.0]}, 400, "expecting only one of 'inputs' or 'inst"),
        ({"instances": ["a", "b"]}, 400, '"a" Type: String is not of expected type: float'),
        ({"instances": [[1.0, 2.0], [3.0]]}, 400, "Expecting tensor size: 2 but got: 1"),
        ({"instances": [[1.0, 2.0]]}, 400, "takes 1-d arrays"),
        ({"inputs": {"z": [1.0]}}, 400, "Missing named input: x in 'inputs' object."),
        ({"signature_name": "train", "instances": [1.0]}, 400, 'name: "train" not found in'),
        (json.dumps({"instances": [1.0] * 2000}).encode(), 413, "over 4096 bytes"),
    ],
)
def test_bad_requests_get_a_json_error_and_the_server_lives_on(half_plus_two, body, code, message):
    got, answer = call(f"{half_plus_two}:predict", body)
    assert got == code and message in answer["error"], answer
    assert call(f"{half_plus_two}:predict", {"instances": [2.0]})[1] == {"predictions": [3.0]}


def test_unknown_model_or_version_is_404(half_plus_two):
    base = half_plus_two.rsplit("/", 1)[0]
    code, answer = call(f"{base}/other:predict", {"instances": [1.0]})
    assert code == 404 and "Servable not found" in answer["error"]
    assert call(f"{half_plus_two}/versions/7:predict", {"instances": [1.0]})[0] == 404
    assert call(f"{base}/other")[0] == 404


def test_every_format_serves_the_same_answers_to_concurrent_clients(tf, tmp_path):
    """The frozen .pb and its SavedModel, TFLite, ONNX and OpenCV exports behind five servers, 32
    concurrent requests each: every answer equals the in-process predict of its rows."""
    from tfpersist import cli

    build(tf, tmp_path / "model.pb")
    every = ",".join(layout.EXPORT_FORMATS)
    assert (
        cli.main(
            ["export", str(tmp_path / "model.pb"), "--out", str(tmp_path / "e"), "--to", every]
        )
        == 0
    )
    paths = [tmp_path / "model.pb"] + [
        layout.exported(tmp_path / "e", f) for f in layout.EXPORT_FORMATS
    ]
    reference = loaders.open_model(tmp_path / "model.pb")
    want = reference.run({"x": X})
    reference.close()
    for path in paths:
        model = loaders.open_model(path)
        server = serving.serve_model(model, "m")
        url = f"http://127.0.0.1:{server.port}/v1/models/m:predict"
        try:

            def ask(i, url=url):
                rows = X[i : i + 1 + i % 3]
                return i, call(url, {"instances": rows.tolist()})

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(ask, range(len(X))))
            for i, (code, answer) in answers:
                assert code == 200, (path, answer)
                rows = len(X[i : i + 1 + i % 3])
                got = answer["predictions"]
                assert [p["classes"] for p in got] == want["classes"][i : i + rows].tolist()
                np.testing.assert_allclose(
                    [p["probabilities"] for p in got],
                    want["probabilities"][i : i + rows],
                    atol=1e-5,
                )
            code, answer = call(url, {"inputs": {"x": X[:3].tolist()}})
            assert code == 200 and sorted(answer["outputs"]) == ["classes", "probabilities"]
            tensor = {"name": "x", "shape": [3, 4], "datatype": "FP32", "data": X[:3].tolist()}
            v2 = f"http://127.0.0.1:{server.port}/v2/models/m/infer"  # KServe's v2 (test_v2.py)
            code, answer = call(v2, {"inputs": [tensor]})
            got = {o["name"]: o["data"] for o in answer["outputs"]}
            assert code == 200 and got["classes"] == want["classes"][:3].tolist(), (path, answer)
            np.testing.assert_allclose(
                np.reshape(got["probabilities"], (3, -1)), want["probabilities"][:3], atol=1e-5
            )
        finally:
            server.stop()


def test_serve_command_binds_loopback_and_refuses_hostile_models(tf, tmp_path):
    """The CLI as a process: it refuses a model that reads files before opening a port, and
    serves a good one on 127.0.0.1 until interrupted."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        secret = tf.strings.to_number(tf.io.read_file("/etc/hostname"))
        tf.identity(x * secret, name="y")
    (tmp_path / "hostile.pb").write_bytes(graph.as_graph_def().SerializeToString())
    tfpersist = f"{sys.prefix}/bin/tfpersist"
    refused = subprocess.run(
        [
            tfpersist,
            "serve",
            str(tmp_path / "hostile.pb"),
            "--output-nodes",
            "y",
            "--port",
            "0",
            "--grpc-port",
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "refusing to run" in refused.stderr
    assert "ReadFile" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    build(tf, tmp_path / "model.pb")
    proc = subprocess.Popen(
        [
            tfpersist,
            "serve",
            str(tmp_path / "model.pb"),
            "--port",
            "0",
            "--grpc-port",
            "-1",
            "--name",
            "digits",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving ") and "http://127.0.0.1:" in line, proc.stderr.read()
        url = line.split(" on ")[1].split()[0]
        code, answer = call(url, {"instances": X[:2].tolist()})
        assert code == 200 and len(answer["predictions"]) == 2
    finally:
        proc.send_signal(2)  # Ctrl-C
        proc.wait(timeout=30)
    assert proc.returncode == 0 and "drained: every request" in proc.stderr.read()  # Ctrl-C drains


def test_a_taken_port_is_one_line(half_plus_two):
    port = int(half_plus_two.split(":")[2].split("/")[0])
    from tfpersist.core.errors import TfpersistError

    with pytest.raises(TfpersistError, match=f"cannot listen on 127.0.0.1:{port}"):
        serving.Server(None, port=port).start()  # never serves: the port is taken


def test_http_edges_wrong_method_unknown_path_chunked_body_keep_alive(half_plus_two):
    """What the HTTP layer decides: under /v1/ TF Serving's 400 "Malformed request" for a
    method or path its grammar lacks, elsewhere 404; a chunked body counted against the limit
    as it comes, one connection kept alive across requests."""
    import http.client

    base = half_plus_two.split("/v1/")[0]
    code, answer = call(f"{half_plus_two}:predict", method="GET")
    assert (
        code == 400 and "Malformed request: GET /v1/models/half_plus_two:predict" in answer["error"]
    )
    assert call(half_plus_two, {"instances": [1.0]})[0] == 400
    code, answer = call(f"{base}/v3/models/half_plus_two")  # /v2 is KServe's: test_v2.py
    assert code == 404 and "no such path" in answer["error"]
    host = base.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=30)
    path = "/v1/models/half_plus_two:predict"
    big = iter([b'{"instances": [', b"1.0, " * 1000, b"1.0]}"])  # > 4096 bytes, no length
    connection.request("POST", path, body=big, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and b"over 4096 bytes" in response.read()
    connection.close()
    connection = http.client.HTTPConnection(host, timeout=30)
    for x in (1.0, 2.0, 5.0):  # one socket, three requests
        small = iter([b'{"instances": [', str(x).encode(), b"]}"])
        connection.request("POST", path, body=small, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {
            "predictions": [0.5 * x + 2]
        }
    connection.close()


def test_starting_a_server_leaves_the_processes_logging_handlers_alone():
    """Granian configures logging with a full dictConfig, which closes every handler the
    process has (pytest's captured stderr among them): the server asks it for levels only."""
    import io
    import logging
    import socket

    from tfpersist.serving import server

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tfpersist.test.handlers")
    logger.addHandler(handler)
    try:
        with socket.socket() as sock:
            server._embedded(None, sock, "127.0.0.1", 0, 128, None)  # Granian's constructor
        logger.warning("still here")
        assert logger.handlers == [handler] and "still here" in stream.getvalue()
        assert handler in logging._handlerList or any(h() is handler for h in logging._handlerList)
    finally:
        logger.removeHandler(handler)
