"""KServe's v2 protocol (the Open Inference Protocol) beside TF Serving's API, called with its
official clients — tritonclient's HTTP client (binary tensors by default, JSON on request) and
gRPC client — and held to TF Serving's REST answer for the same request on the same server."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from tfpersist import serving
from tfpersist.freezing import freeze
from tfpersist.running import loaders
from tfpersist.serving import v2_proto

from helpers import W2, X

SCALES = {1: 1.0, 2: 3.0}


def onnx_model(path, scale: float) -> None:
    """x FP32 [-1, 4] → y = x @ (W2[:4] * scale) FP32 [-1, 3], classes = argmax INT64 [-1]."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], (W2[:4] * scale).ravel().tolist())
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("ArgMax", ["y"], ["classes"], axis=1, keepdims=0),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3]),
            helper.make_tensor_value_info("classes", TensorProto.INT64, [None]),
        ],
        initializer=[w],
    )
    path.parent.mkdir(parents=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def start(base, opener=loaders.open_model, **fields):
    options = serving.Options(name="digits", port=0, grpc_port=0, poll_seconds=0.05, **fields)
    return serving.start(serving.catalog_for(base, opener, options, say=lambda line: None), options)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Two ONNX versions under a base directory, 1 labelled stable (so both serve)."""
    base = tmp_path_factory.mktemp("v2") / "digits"
    for version, scale in SCALES.items():
        onnx_model(base / str(version) / "model.onnx", scale)
    running = start(base, labels=(("stable", 1),))
    http = triton_http.InferenceServerClient(f"127.0.0.1:{running.port}")
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{running.grpc_port}")
    yield running, http, grpc
    http.close()
    grpc.close()
    running.stop()


@pytest.fixture(scope="module")
def texts(tf, tmp_path_factory):
    """A TF graph taking BYTES: s string [?] → echo (the same bytes), length int32."""
    v1 = tf.compat.v1
    root = tmp_path_factory.mktemp("v2text")
    graph = tf.Graph()
    with graph.as_default():
        s = v1.placeholder(tf.string, [None], name="s")
        tf.identity(s, name="echo")
        tf.strings.length(s, name="length")
    freeze.write(graph.as_graph_def(), root / "text.pb", ["echo", "length"])
    model = loaders.open_model(root / "text.pb", ["echo", "length"])
    running = serving.serve_model(model, "text", grpc_port=0)
    yield running
    running.stop()


def call(url: str, body=None, method=None, headers=None) -> tuple[int, dict, bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def tf_serving(port: int, rows, name="digits", version=None) -> dict:
    """TF Serving's REST answer for the same rows (columnar)."""
    where = f"/versions/{version}" if version else ""
    url = f"http://127.0.0.1:{port}/v1/models/{name}{where}:predict"
    code, _, body = call(url, {"inputs": rows.tolist()})
    assert code == 200, body
    return json.loads(body)["outputs"]


def http_input(rows, binary=True, name="x", kind="FP32"):
    given = triton_http.InferInput(name, list(rows.shape), kind)
    given.set_data_from_numpy(rows, binary_data=binary)
    return given


def grpc_input(rows, name="x", kind="FP32"):
    given = triton_grpc.InferInput(name, list(rows.shape), kind)
    given.set_data_from_numpy(rows)
    return given


def test_tritonclient_http_and_grpc_answer_as_tf_serving_does(digits):
    running, http, grpc = digits
    rows = X[:5]
    want = tf_serving(running.port, rows)
    answers = [
        http.infer("digits", [http_input(rows)]),  # binary in, binary out (the default)
        http.infer(
            "digits",
            [http_input(rows, binary=False)],
            outputs=[
                triton_http.InferRequestedOutput("y", binary_data=False),
                triton_http.InferRequestedOutput("classes", binary_data=False),
            ],
        ),
        grpc.infer("digits", [grpc_input(rows)]),
    ]
    for answer in answers:
        np.testing.assert_allclose(answer.as_numpy("y"), want["y"], rtol=1e-5, atol=1e-6)
        assert answer.as_numpy("classes").tolist() == want["classes"]
        assert answer.as_numpy("classes").dtype == np.int64
    assert answers[0].get_response()["model_version"] == "2"
    assert answers[2].get_response().model_version == "2"


def test_versions_labels_outputs_and_metadata(digits):
    running, http, grpc = digits
    rows = X[:3]
    old = tf_serving(running.port, rows, version=1)["y"]
    chosen = [triton_http.InferRequestedOutput("y")]
    for version in ("1", "stable"):
        answer = http.infer("digits", [http_input(rows)], model_version=version, outputs=chosen)
        assert [o["name"] for o in answer.get_response()["outputs"]] == ["y"]
        assert answer.as_numpy("classes") is None
        np.testing.assert_allclose(answer.as_numpy("y"), old, rtol=1e-5, atol=1e-6)
    by_grpc = grpc.infer(
        "digits",
        [grpc_input(rows)],
        model_version="1",
        outputs=[triton_grpc.InferRequestedOutput("classes")],
        request_id="r-7",
    )
    assert [o.name for o in by_grpc.get_response().outputs] == ["classes"]
    assert by_grpc.get_response().id == "r-7"
    assert by_grpc.as_numpy("classes").tolist() == np.argmax(old, 1).tolist()
    new = http.infer("digits", [http_input(rows)]).as_numpy("y")
    np.testing.assert_allclose(new, np.asarray(old) * SCALES[2], rtol=1e-5, atol=1e-5)

    meta = http.get_model_metadata("digits")
    assert meta == {
        "name": "digits",
        "versions": ["1", "2"],
        "platform": "onnx_onnxv1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "classes", "datatype": "INT64", "shape": [-1]},
        ],
    }
    assert http.get_model_metadata("digits", "1") == meta
    by_grpc = grpc.get_model_metadata("digits", "2", as_json=True)
    assert by_grpc["versions"] == ["1", "2"] and by_grpc["platform"] == "onnx_onnxv1"
    assert by_grpc["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "4"]}]


def test_health_server_metadata_and_ready_per_version(digits):
    _, http, grpc = digits
    for client in (http, grpc):
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("digits") and client.is_model_ready("digits", "1")
        assert not client.is_model_ready("digits", "7")
        assert not client.is_model_ready("digits", "nolabel")  # TF Serving's 400, not ready
        assert (
            "binary_tensor_data"
            in client.get_server_metadata(**({"as_json": True} if client is grpc else {}))[
                "extensions"
            ]
        )
    assert not http.is_model_ready("nothing")
    with pytest.raises(InferenceServerException, match="no model 'nothing'"):
        grpc.is_model_ready("nothing")
    deep = {"inputs": [{"name": "x", "shape": [1] * 65, "datatype": "FP32", "data": [0.0]}]}
    code, _, body = call(f"http://127.0.0.1:{digits[0].port}/v2/models/digits/infer", deep)
    assert code == 400 and b"rank 65; at most 64 dimensions" in body, body
    given = triton_grpc.InferInput("x", [1] * 65, "FP32")  # numpy cannot hold it: raw bytes
    given._raw_content = np.float32(0).tobytes()  # what set_data_from_numpy would set
    with pytest.raises(InferenceServerException, match="rank 65; at most 64"):
        grpc.infer("digits", [given])


def test_bytes_in_and_out_as_tf_serving(texts):
    words = np.array([b"hello", "w\u00f6rld".encode(), b""], dtype=object)
    code, _, body = call(
        f"http://127.0.0.1:{texts.port}/v1/models/text:predict",
        {"inputs": [w.decode() for w in words]},
    )
    want = json.loads(body)["outputs"]
    assert code == 200 and want["length"] == [5, 6, 0]
    http = triton_http.InferenceServerClient(f"127.0.0.1:{texts.port}")
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{texts.grpc_port}")
    try:
        json_out = [
            triton_http.InferRequestedOutput(n, binary_data=False) for n in ("echo", "length")
        ]
        answers = [
            http.infer("text", [http_input(words, True, "s", "BYTES")]),
            http.infer("text", [http_input(words, False, "s", "BYTES")], outputs=json_out),
            grpc.infer("text", [grpc_input(words, "s", "BYTES")]),
        ]
        for answer in answers:  # binary BYTES come back as bytes, JSON ones as str
            echo = [e if isinstance(e, bytes) else e.encode() for e in answer.as_numpy("echo")]
            assert echo == [w.encode() for w in want["echo"]]
            assert answer.as_numpy("length").tolist() == want["length"]
        assert http.get_model_metadata("text")["inputs"] == [
            {"name": "s", "datatype": "BYTES", "shape": [-1]}
        ]
        mixed = {"inputs": [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["a", 1]}]}
        code, _, body = call(f"http://127.0.0.1:{texts.port}/v2/models/text/infer", mixed)
        assert code == 400 and b"'data' must hold strings" in body  # numpy: ["a", "1"]
    finally:
        http.close()
        grpc.close()


def test_json_bodies_nested_data_id_and_binary_outputs_by_hand(digits):
    running = digits[0]
    url = f"http://127.0.0.1:{running.port}/v2/models/digits/versions/1/infer"
    rows = X[:2]
    nested = {
        "id": "42",
        "parameters": {"anything": 1},
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": rows.tolist()}],
        "outputs": [{"name": "y"}],
    }
    code, headers, body = call(url, nested)
    answer = json.loads(body)
    assert code == 200 and answer["id"] == "42" and answer["model_version"] == "1"
    (y,) = answer["outputs"]
    assert y["shape"] == [2, 3] and y["datatype"] == "FP32"
    want = tf_serving(running.port, rows, version=1)["y"]
    np.testing.assert_allclose(np.reshape(y["data"], (2, 3)), want, rtol=1e-5, atol=1e-6)

    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 32},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    code, headers, body = call(
        url,
        header + rows.astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    length = int({k.lower(): v for k, v in headers.items()}["inference-header-content-length"])
    described = json.loads(body[:length])["outputs"]
    assert [(o["name"], o["parameters"]["binary_data_size"]) for o in described] == [
        ("y", 24),
        ("classes", 16),
    ]
    np.testing.assert_allclose(
        np.frombuffer(body[length : length + 24], "<f4").reshape(2, 3), want, rtol=1e-5, atol=1e-6
    )
    assert np.frombuffer(body[length + 24 :], "<i8").tolist() == np.argmax(want, 1).tolist()


def v2_input(**fields):
    return {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4], **fields}
        ]
    }


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        ("/infer", b"{not json", 400, "the body is not JSON"),
        ("/infer", {"inputs": []}, 400, "'inputs' must be a non-empty list"),
        ("/infer", v2_input(datatype="FP64"), 400, "input 'x' is FP32; the request gives FP64"),
        ("/infer", v2_input(name="z"), 400, "no input 'z'; the inputs are x"),
        ("/infer", v2_input(shape=[2, 4]), 400, "shape [2, 4] holds 8 elements; the data has 4"),
        ("/infer", v2_input(data=[[1, 2], [3]]), 400, "'data' is not a regular array"),
        ("/infer", v2_input(data=[True, False, True, True]), 400, "FP32: 'data' must hold numbers"),
        ("/infer", v2_input(data=["1", "2", "3", "4"]), 400, "FP32: 'data' must hold numbers"),
        (
            "/infer",
            {**v2_input(), "outputs": [{"name": "z"}]},
            400,
            "no output 'z'; the outputs are y, classes",
        ),
        (
            "/infer",
            v2_input(parameters={"binary_data_size": 16}),
            400,
            "no Inference-Header-Content-Length",
        ),
        ("/versions/7/infer", v2_input(), 404, "Specific(digits, 7)"),
        ("/versions/%C2%B2/infer", v2_input(), 400, "Unrecognized servable version label: ²"),
        ("/versions/9223372036854775808/infer", v2_input(), 400, "Failed to convert version"),
        ("/versions/99999999999999999999", None, 400, "99999999999999999999 to numeric"),
        ("/infer", None, 405, "GET /v2/models/digits/infer: this path takes POST"),
        ("/ready", b"{}", 405, "this path takes GET"),
        ("/stats", None, 404, "no such path"),
    ],
)
def test_errors_say_what_is_wrong_in_one_line(digits, path, body, code, message):
    url = f"http://127.0.0.1:{digits[0].port}/v2/models/digits{path}"
    got, _, answer = call(url, body)
    assert got == code and message in json.loads(answer)["error"], answer


def test_errors_reach_the_clients(digits):
    running, http, grpc = digits
    wrong = http_input(X[:2].astype(np.float64), kind="FP64")
    with pytest.raises(InferenceServerException, match="input 'x' is FP32; the request gives FP64"):
        http.infer("digits", [wrong])
    with pytest.raises(InferenceServerException, match="no model 'other'") as caught:
        grpc.infer("other", [grpc_input(X[:2])])
    assert caught.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException, match="no output 'z'") as caught:
        grpc.infer("digits", [grpc_input(X[:2])], outputs=[triton_grpc.InferRequestedOutput("z")])
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    code, _, _ = call(f"http://127.0.0.1:{running.port}/v2/models/other/infer", v2_input())
    assert code == 404
    # one rule for a version with /v1: decimal digits within int64, else a label (%-decoded)
    by_label = http.infer("digits", [http_input(X[:2])], model_version="st%61ble")
    assert by_label.get_response()["model_version"] == "1"
    for version, message in [
        ("²", "Unrecognized servable version label: ²"),  # isdigit(), but no number
        ("9223372036854775808", "Failed to convert version: 9223372036854775808 to numeric."),
    ]:
        with pytest.raises(InferenceServerException, match=message) as caught:
            grpc.infer("digits", [grpc_input(X[:2])], model_version=version)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_typed_grpc_contents(digits):
    """``contents`` instead of raw bytes: what other v2 clients send."""
    import grpc as grpcio

    running = digits[0]
    request = v2_proto.MESSAGES["ModelInferRequest"](model_name="digits", model_version="1")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[2, 4])
    tensor.contents.fp32_contents.extend(X[:2].ravel().tolist())
    with grpcio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
        infer = channel.unary_unary(
            f"/{v2_proto.SERVICE}/ModelInfer",
            request_serializer=type(request).SerializeToString,
            response_deserializer=v2_proto.MESSAGES["ModelInferResponse"].FromString,
        )
        answer = infer(request, timeout=30)
    y = np.frombuffer(answer.raw_output_contents[0], "<f4").reshape(list(answer.outputs[0].shape))
    np.testing.assert_allclose(
        y, tf_serving(running.port, X[:2], version=1)["y"], rtol=1e-5, atol=1e-6
    )


def test_metrics_count_v2_requests_by_entrypoint(digits):
    running, http, grpc = digits
    http.infer("digits", [http_input(X[:1])])
    grpc.infer("digits", [grpc_input(X[:1])])
    _, _, text = call(f"http://127.0.0.1:{running.port}/monitoring/prometheus/metrics")
    lines = text.decode().splitlines()
    for entrypoint in ("REST", "gRPC"):
        assert any(
            line.startswith(":tensorflow:serving:request_count_total")
            and 'API="infer"' in line
            and f'entrypoint="{entrypoint}"' in line
            and 'status="OK"' in line
            for line in lines
        ), entrypoint


def test_server_is_ready_only_once_every_version_is_loaded_and_warmed(tmp_path):
    base = tmp_path / "digits"
    onnx_model(base / "1" / "model.onnx", 1.0)
    release = threading.Event()

    def opener(path):
        if path.parent.name == "2":
            release.wait(30)
        return loaders.open_model(path)

    running = start(base, opener)
    http = triton_http.InferenceServerClient(f"127.0.0.1:{running.port}")
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{running.grpc_port}")
    try:
        assert http.is_server_ready()
        onnx_model(base / "2" / "model.onnx", 2.0)
        deadline = time.monotonic() + 10
        while http.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not http.is_server_ready() and not grpc.is_server_ready()  # 2 is loading …
        assert http.is_model_ready("digits", "1") and not http.is_model_ready("digits", "2")
        release.set()
        while not http.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert http.is_server_ready() and http.is_model_ready("digits", "2")  # … warmed: ready
        # as Server.quiesce sets it when a drain begins (gRPC has stopped taking calls by
        # then: its answer is checked here on a server not draining otherwise)
        running.service.catalog.draining = True
        assert not http.is_server_ready() and not grpc.is_server_ready()
        assert http.is_server_live() and grpc.is_server_live()
    finally:
        release.set()
        http.close()
        grpc.close()
        running.stop()


def test_the_messages_are_tritonclients_on_the_wire():
    """Every field of our v2 messages has tritonclient's number, type and cardinality (its
    grpc_service.proto is a superset of KServe's grpc_predict_v2.proto)."""
    from tritonclient.grpc import service_pb2

    def fields(descriptor):
        return {
            f.number: (
                f.name,
                f.type,
                f.is_repeated,
                f.message_type.full_name if f.message_type else None,
                f.containing_oneof.name if f.containing_oneof else None,
            )
            for f in descriptor.fields
        }

    pool = service_pb2.DESCRIPTOR.pool
    for path, message in v2_proto.MESSAGES.items():
        theirs = fields(pool.FindMessageTypeByName(f"inference.{path}"))
        ours = fields(message.DESCRIPTOR)
        assert {n: theirs.get(n) for n in ours} == ours, path
    assert set(v2_proto.RPCS) <= {
        m.name for m in service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
    }


KINDS = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    """An ONNX model echoing one input of every numeric datatype (Identity each)."""
    import onnx
    from onnx import helper

    def info(name, kind):
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(KINDS[kind]))
        return helper.make_tensor_value_info(name, elem, [None, 2])

    graph = helper.make_graph(
        [helper.make_node("Identity", [f"in_{k}"], [f"out_{k}"]) for k in KINDS],
        "echo",
        [info(f"in_{k}", k) for k in KINDS],
        [info(f"out_{k}", k) for k in KINDS],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("v2echo") / "echo.onnx"
    onnx.save(model, path)
    running = serving.serve_model(loaders.open_model(path), "echo", grpc_port=0)
    yield running
    running.stop()


def test_every_datatype_both_ways_and_as_tf_serving(echo):
    """Each numeric datatype through tritonclient's HTTP client (binary and JSON) and gRPC
    client, extremes included, and TF Serving's REST answer for the same columns."""
    rng = np.random.default_rng(3)
    values = {}
    for kind, dtype in KINDS.items():
        if kind.startswith("FP"):
            values[kind] = rng.normal(size=(3, 2)).astype(dtype)
        else:
            info = np.iinfo(dtype) if kind != "BOOL" else np.iinfo(np.uint8)
            values[kind] = rng.integers(0, 2, (3, 2)).astype(dtype)
            if kind != "BOOL":
                values[kind][0] = [info.min, info.max]
    http = triton_http.InferenceServerClient(f"127.0.0.1:{echo.port}")
    grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{echo.grpc_port}")
    as_json = [triton_http.InferRequestedOutput(f"out_{k}", binary_data=False) for k in KINDS]
    try:
        answers = {
            binary: http.infer(
                "echo",
                [http_input(v, binary, f"in_{k}", k) for k, v in values.items()],
                outputs=None if binary else as_json,
            )
            for binary in (True, False)
        }
        answers["grpc"] = grpc.infer(
            "echo", [grpc_input(v, f"in_{k}", k) for k, v in values.items()]
        )
    finally:
        http.close()
        grpc.close()
    code, _, body = call(
        f"http://127.0.0.1:{echo.port}/v1/models/echo:predict",
        {"inputs": {f"in_{k}": v.tolist() for k, v in values.items()}},
    )
    assert code == 200, body
    by_tf_serving = json.loads(body)["outputs"]
    for how, answer in answers.items():
        for k, v in values.items():
            got = answer.as_numpy(f"out_{k}")
            assert got.dtype == v.dtype and got.shape == v.shape, (how, k)
            if k.startswith("FP"):
                np.testing.assert_allclose(got, v, rtol=1e-3 if k == "FP16" else 1e-6)
                np.testing.assert_allclose(got, by_tf_serving[f"out_{k}"], rtol=1e-3)
            else:
                assert got.tolist() == v.tolist() == by_tf_serving[f"out_{k}"], (how, k)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("UINT8", [300, 1], "300 is out of the range of UINT8"),
        ("INT8", [-129, 1], "-129 is out of the range of INT8"),
        ("INT64", [0, 2**63], "9223372036854775808 is out of the range of INT64"),
        ("UINT64", [-1, 2**64 - 1], "-1 is out of the range of UINT64"),
        ("UINT64", [1, 2**64], "UINT64: 'data' must hold integers"),
        ("INT64", [1.5, 1], "INT64: 'data' must hold integers"),
        ("BOOL", [1, 0], "BOOL: 'data' must hold true/false"),
        ("FP32", [None, 1.0], "FP32: 'data' must hold numbers"),
        ("FP32", [1, True], "FP32: 'data' must hold numbers, not true/false"),  # numpy: [1, 1]
        ("INT32", [[0], [False]], "INT32: 'data' must hold integers, not true/false"),
    ],
)
def test_json_data_is_checked_against_its_datatype(echo, kind, data, message):
    body = {
        "inputs": [
            {
                "name": f"in_{k}",
                "shape": [1, 2],
                "datatype": k,
                "data": data if k == kind else [0, 0] if k != "BOOL" else [False, True],
            }
            for k in KINDS
        ]
    }
    code, _, answer = call(f"http://127.0.0.1:{echo.port}/v2/models/echo/infer", body)
    assert code == 400 and message in json.loads(answer)["error"]


def test_tritons_extensions_this_server_lacks_are_refused_not_ignored(digits):
    """Top-k class labels (``classification``) asked of an output: 400 / INVALID_ARGUMENT,
    never the raw tensor as if the client had not asked."""
    _, http, grpc = digits
    x = X[:1]
    for client, module in ((http, triton_http), (grpc, triton_grpc)):
        given = module.InferInput("x", list(x.shape), "FP32")
        given.set_data_from_numpy(x)
        wanted = module.InferRequestedOutput("classes", class_count=2)
        with pytest.raises(InferenceServerException, match=r"'classification'.*not supported"):
            client.infer("digits", [given], outputs=[wanted])
