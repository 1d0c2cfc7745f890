"""TF Serving to the letter: its own test SavedModels (rebuilt: tests/ported/tfserving_models.py)
behind ``tfpersist serve``, asked as TF Serving's REST page and tests ask them — plain HTTP,
and TF Serving's official gRPC client (PyPI ``tensorflow-serving-api``) — and held to the
answers TF Serving gives (its api_rest.md, http_rest_api_handler_test.cc,
tensorflow_model_server_test.py, json_tensor_test.cc; the golden
tests/ported/tfserving_2_versions_metadata.json is its
saved_model_half_plus_two_2_versions_metadata.json)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfpersist import serving
from tfpersist.core.errors import TfpersistError
from tfpersist.serving import grpc_api, servables, signatures

from conftest import env

HERE = Path(__file__).parent
TWO = "saved_model_half_plus_two_2_versions"


def call(url: str, body=None, method: str | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text.startswith(b"{") else {"error": text.decode()}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tfserving")
    script = HERE.parent / "ported" / "tfserving_models.py"
    args = [str(root / "two"), "+", str(root / "three"), "--flavor", "three", "+"]
    args += [str(root / "types"), "--flavor", "types", "--versions", "1", "+"]
    args += [str(root / "unsafe"), "--flavor", "unsafe", "--versions", "1"]
    subprocess.run(
        [sys.executable, str(script), *args],
        env=env(),
        check=True,
        timeout=300,
        capture_output=True,
    )
    return root


def _serve(base: Path, name: str, **fields):
    options = serving.Options(name=name, port=0, **fields)
    catalog = serving.catalog_for(base, signatures.open_model, options, say=lambda line: None)
    return serving.start(catalog, options)


@pytest.fixture(scope="module")
def two(models):
    """half_plus_two_2_versions: both versions (a label keeps 123), REST and gRPC."""
    running = _serve(models / "two", TWO, grpc_port=0, labels=(("stable", 123),))
    channel = grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}")
    yield running, f"http://127.0.0.1:{running.port}", channel
    channel.close()
    running.stop()


@pytest.fixture(scope="module")
def three(models):
    running = _serve(models / "three", "saved_model_half_plus_three")
    yield f"http://127.0.0.1:{running.port}/v1/models/saved_model_half_plus_three"
    running.stop()


@pytest.fixture(scope="module")
def types(models):
    running = _serve(models / "types", "types")
    yield f"http://127.0.0.1:{running.port}/v1/models/types"
    running.stop()


def example(**features):
    from tensorflow.core.example import example_pb2

    found = example_pb2.Example()
    for name, value in features.items():
        found.features.feature[name].float_list.value.append(value)
    return found


def test_the_documented_requests_get_tf_servings_answers(two, three):
    _, base, _ = two
    m = f"{base}/v1/models/{TWO}"
    # api_rest.md and http_rest_api_handler_test.cc: x is an Identity of tf.Example parsing
    assert call(f"{three}:predict", {"instances": [1.0, 2.0, 5.0]}) == (
        200,
        {"predictions": [3.5, 4.0, 5.5]},
    )
    assert call(f"{m}:predict", {"instances": [1.0, 2.0, 5.0]})[1] == {
        "predictions": [2.5, 3.0, 4.5]
    }
    assert call(f"{m}:predict", {"instances": [[1.0, 2.0], [3.0, 4.0]]})[1] == {
        "predictions": [[2.5, 3.0], [3.5, 4.0]]
    }
    body = {"signature_name": "serving_default", "inputs": [3.0, 4.0]}
    assert call(f"{m}/versions/123:predict", body)[1] == {"outputs": [3.5, 4.0]}
    assert call(f"{m}/labels/stable:predict", {"inputs": 5.0})[1] == {"outputs": 4.5}  # 0-d
    code, answer = call(f"{m}:predict", {"instances": 5.0})
    assert code == 400 and answer["error"].endswith("Expecting 'instances' to be an list/array")
    code, answer = call(
        f"{m}:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]}
    )
    assert (code, answer) == (200, {"results": [42.0]})
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}, {"x": 10.0}]}
    assert call(f"{m}:classify", body)[1] == {"results": [[["", 12.0]], [["", 7.0]]]}
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    assert call(f"{three}:regress", body)[1] == {"results": [3.5, 4.0]}
    # a context's features, the example's own winning (TF Serving concatenates the two)
    body = {"signature_name": "regress_x_to_y", "context": {"x": 1.0}, "examples": [{}, {"x": 3.0}]}
    assert call(f"{m}:regress", body)[1] == {"results": [2.5, 3.5]}
    # classify/regress on a predict-only signature, an int where the model parses floats
    code, answer = call(f"{three}:classify", {"examples": [{"x": 1.0}]})
    assert code == 400 and answer["error"].startswith("No classification inputs found in Sig")
    code, answer = call(
        f"{m}:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 80}]}
    )
    assert code == 400 and "Data types don't match" in answer["error"]
    assert str(two[0].service.catalog.base) not in answer["error"]  # no server paths


def test_metadata_lists_every_signature_as_tf_serving_does(two):
    _, base, channel = two
    golden = json.loads((HERE.parent / "ported" / "tfserving_2_versions_metadata.json").read_text())
    assert call(f"{base}/v1/models/{TWO}/versions/123/metadata") == (200, golden)
    code, latest = call(f"{base}/v1/models/{TWO}/metadata")
    assert code == 200 and latest["model_spec"]["version"] == "124"
    assert latest["metadata"] == golden["metadata"]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = TWO
    request.model_spec.version.value = 123
    answer = stub.GetModelMetadata(request, timeout=30)
    found = get_model_metadata_pb2.SignatureDefMap()
    answer.metadata["signature_def"].Unpack(found)
    as_json = json_format.MessageToDict(
        found, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert as_json == golden["metadata"]["signature_def"]
    request.metadata_field[:] = ["other"]
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModelMetadata(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_predict_classify_regress_multi_inference_with_the_official_client(tf, two):
    _, _, channel = two
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = TWO
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0], [2.0], [5.0]], np.float32)))
    answer = stub.Predict(request, timeout=30)
    assert answer.model_spec.signature_name == "serving_default"
    assert answer.model_spec.version.value == 124
    np.testing.assert_allclose(tf.make_ndarray(answer.outputs["y"]), [[2.5], [3.0], [4.5]])
    assert answer.outputs["y"].float_val == [2.5, 3.0, 4.5]  # as TF Serving writes them
    # any signature by name: regress_x_to_y's tf.Example input, predicted
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = TWO, "regress_x_to_y"
    serialized = [example(x=1.0).SerializeToString(), example(x=2.0).SerializeToString()]
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(serialized))
    got = tf.make_ndarray(stub.Predict(request, timeout=30).outputs["outputs"])
    np.testing.assert_allclose(got, [[2.5], [3.0]])
    request.output_filter.append("z")
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=30)
    assert raised.value.details() == (
        "output tensor alias not found in signature: z Outputs expected to be in the set {outputs}."
    )
    request.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.details() == 'Serving signature key "nope" not found.'

    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name, classify.model_spec.signature_name = TWO, "classify_x_to_y"
    classify.input.example_list.examples.add().CopyFrom(example(x=20.0))
    answer = stub.Classify(classify, timeout=30)
    assert [(c.label, c.score) for c in answer.result.classifications[0].classes] == [("", 12.0)]
    assert answer.model_spec.signature_name == "classify_x_to_y"
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name, regress.model_spec.signature_name = TWO, "regress_x_to_y"
    listed = regress.input.example_list_with_context
    listed.context.CopyFrom(example(x=1.0))
    listed.examples.add().CopyFrom(example(x=80.0))
    listed.examples.add()  # x from the context
    answer = stub.Regress(regress, timeout=30)
    assert [r.value for r in answer.result.regressions] == [42.0, 2.5]
    regress.model_spec.signature_name = ""  # serving_default: predict only
    with pytest.raises(grpc.RpcError) as raised:
        stub.Regress(regress, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("No regression inputs found in SignatureDef")

    multi = inference_pb2.MultiInferenceRequest()  # tensorflow_model_server_test.py's
    for key, method in [
        ("regress_x_to_y", signatures.REGRESS),
        ("classify_x_to_y", signatures.CLASSIFY),
    ]:
        task = multi.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = TWO, key
    multi.input.example_list.examples.add().CopyFrom(example(x=2.0))
    results = stub.MultiInference(multi, timeout=30).results
    assert results[0].regression_result.regressions[0].value == 3.0
    assert results[1].classification_result.classifications[0].classes[0].score == 3.0
    assert [r.model_spec.signature_name for r in results] == ["regress_x_to_y", "classify_x_to_y"]
    multi.tasks[1].method_name = "tensorflow/serving/predict"
    with pytest.raises(grpc.RpcError) as raised:
        stub.MultiInference(multi, timeout=30)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert raised.value.details() == "Unsupported signature method_name: tensorflow/serving/predict"


@pytest.mark.parametrize(
    ("signature", "body", "message"),
    [  # json_tensor.cc's checks, with its messages (json_tensor_test.cc)
        (
            "ints",
            {"instances": [1.5]},
            "JSON Value: 1.5 Type: Number is not of expected type: int64",
        ),
        (
            "ints",
            {"instances": [1.0]},
            "JSON Value: 1.0 Type: Number is not of expected type: int64",
        ),
        ("ints", {"inputs": ["1"]}, 'JSON Value: "1" Type: String is not of expected type: int64'),
        (
            "ints",
            {"instances": [2**63]},
            f"JSON Value: {2**63} Type: Number is not of expected type: int64",
        ),
        (
            "int32s",
            {"instances": [2**31]},
            f"JSON Value: {2**31} Type: Number is not of expected type: int32",
        ),
        ("flags", {"instances": [1]}, "JSON Value: 1 Type: Number is not of expected type: bool"),
        (
            "flags",
            {"inputs": [True, "true"]},
            'JSON Value: "true" Type: String is not of expected type: bool',
        ),
        (
            "strings",
            {"instances": [1]},
            "JSON Value: 1 Type: Number is not of expected type: string",
        ),
        ("strings", {"instances": [{"b64": "%%%"}]}, "Unable to base64 decode"),
        (
            "strings",
            {"inputs": [{"b65": "aGk="}]},
            'JSON Value: {"b65": "aGk="} not formatted correctly for base64 data',
        ),
        (
            "ints",
            {"inputs": [[1], 2]},
            "JSON Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        ),
        (
            "ints",
            {"inputs": [[1, 2], [3]]},
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        ),
        ("total", {"instances": [1.0, 2.0]}, "Tensor name: total has no shape information "),
        ("ints", {"instances": [{"m": 1}]}, "JSON object: does not have named input: m"),
    ],
)
def test_json_type_and_range_checks_are_tf_servings(types, signature, body, message):
    code, answer = call(f"{types}:predict", {"signature_name": signature, **body})
    assert code == 400 and message in answer["error"], answer


def test_types_b64_bytes_and_scalars_come_back_as_tf_serving_writes_them(two, types):
    _, base, _ = two
    m = f"{base}/v1/models/{TWO}:predict"
    for body, shown in [
        ({"instances": [True]}, "true Type: True"),
        ({"inputs": [[1.0], [None]]}, "null Type: Null"),
        ({"instances": ["1"]}, '"1" Type: String'),
    ]:
        code, answer = call(m, body)  # half_plus_two's x is a float
        assert code == 400 and f"{shown} is not of expected type: float" in answer["error"]
    code, answer = call(f"{types}:predict", {"instances": [1]})  # it has no serving_default
    assert (code, answer["error"]) == (
        400,
        'Serving signature name: "serving_default" not found in signature def',
    )
    assert call(f"{types}:predict", {"signature_name": "ints", "instances": [1, -(2**63) // 2]})[
        1
    ] == {"predictions": [2, -(2**63)]}
    assert call(f"{types}:predict", {"signature_name": "flags", "inputs": [True, False]})[1] == {
        "outputs": [False, True]
    }
    body = {"signature_name": "strings", "instances": [{"b64": "aGVsbG8="}, "wörld"]}
    assert call(f"{types}:predict", body)[1] == {
        "predictions": [
            {"text": "hello", "text_bytes": {"b64": "aGVsbG8="}},
            {"text": "wörld", "text_bytes": {"b64": "d8O2cmxk"}},
        ]
    }
    body = {"signature_name": "total", "inputs": [1.0, 2.0, 5.0]}
    assert call(f"{types}:predict", body)[1] == {"outputs": 8.0}
    code, answer = call(m, b"[" * 100_000 + b"]" * 100_000)  # past every parser's depth
    assert code == 400 and answer["error"].startswith("JSON Parse error"), answer
    deep = {"instances": json.loads("[" * 100 + "1.0" + "]" * 100)}
    code, answer = call(m, deep)
    assert code == 400 and "too many dimensions" in answer["error"], answer


@pytest.mark.parametrize(
    ("method", "path", "code", "message"),
    [  # TF Serving's http_rest_api_handler_test.cc and server_core.cc
        ("GET", "/v1/foo", 400, "Malformed request: GET /v1/foo"),
        ("POST", "/v1/foo", 400, "Malformed request: POST /v1/foo"),
        ("GET", "/v1/models", 400, "Missing model name in request."),
        ("POST", "/v1/models", 400, "Malformed request: POST /v1/models"),
        (
            "GET",
            f"/v1/models/{TWO}:predict",
            400,
            f"Malformed request: GET /v1/models/{TWO}:predict",
        ),
        ("PUT", f"/v1/models/{TWO}", 400, f"Malformed request: PUT /v1/models/{TWO}"),
        ("DELETE", f"/v1/models/{TWO}", 400, "Malformed request: DELETE"),
        ("POST", f"/v1/models/{TWO}/metadata", 400, "Malformed request"),
        ("POST", f"/v1/models/{TWO}/version/50:predict", 400, "Malformed request"),
        ("POST", f"/v1/models/{TWO}/versions/HELLO:regress", 400, "Malformed request"),
        ("POST", f"/v1/models/{TWO}/versions/50/labels/l:regress", 400, "Malformed request"),
        ("POST", f"/v1/models/{TWO}:PREDICT", 400, "Malformed request"),
        (
            "POST",
            f"/v1/models/{TWO}/versions/18446744073709551615:regress",
            400,
            "Failed to convert version: 18446744073709551615 to numeric.",
        ),
        (
            "POST",
            f"/v1/models/{TWO}/labels/nope:predict",
            400,
            "Unrecognized servable version label: nope",
        ),
        (
            "GET",
            f"/v1/models/{TWO}/labels/nope/metadata",
            400,
            "Unrecognized servable version label: nope",
        ),
        ("POST", "/v1/models/half:predict", 404, "Servable not found for request: Latest(half)"),
        (
            "POST",
            f"/v1/models/{TWO}/versions/99:predict",
            404,
            f"Servable not found for request: Specific({TWO}, 99)",
        ),
        ("GET", "/v1/models/unknown", 404, "Could not find any versions of model unknown"),
        ("GET", f"/v1/models/{TWO}/versions/7", 404, f"Could not find version 7 of model {TWO}"),
        ("GET", "/v2/models/x", 404, ""),
        ("POST", f"/v1/models/{TWO[:5]}%5F{TWO[6:]}:predict", 400, "Missing 'inputs' or 'inst"),
    ],
)
def test_urls_and_methods_get_tf_servings_status_codes(two, method, path, code, message):
    _, base, _ = two
    body = b"{}" if method in ("POST", "PUT") else None
    got, answer = call(f"{base}{path}", body, method)
    assert got == code and message in answer["error"], answer


def test_a_label_is_read_past_by_the_status_as_tf_serving_does(two):
    _, base, _ = two
    code, answer = call(f"{base}/v1/models/{TWO}/labels/anything")
    assert code == 200 and [s["version"] for s in answer["model_version_status"]] == ["124", "123"]


def test_a_taken_grpc_port_is_refused_in_one_line(two):
    running, _, _ = two
    taken = running.grpc_port
    for host in ("127.0.0.1", "localhost"):  # localhost: gRPC alone would bind [::1] and go on
        with pytest.raises(TfpersistError, match=f"cannot listen for gRPC on {host}:{taken}"):
            grpc_api.GrpcServer(running.service, running.server.loop, host, taken).start()
    with socket.socket() as held:  # and held by anything else
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(TfpersistError, match=f"gRPC on 127.0.0.1:{port}"):
            grpc_api.GrpcServer(running.service, running.server.loop, "127.0.0.1", port).start()


def test_tf2_savedmodels_serve_every_signature_and_other_formats_one(tf, tmp_path):
    """A TF2 SavedModel's signatures are functions, each frozen on its own; a .pb is one
    serving_default signature whose metadata names its inputs as the model does."""

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def double(self, x):
            return {"y": 2.0 * x}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n")])
        def succ(self, n):
            return {"m": n + 1}

    module = Model()
    tf.saved_model.save(
        module,
        str(tmp_path / "tf2"),
        signatures={"serving_default": module.double, "succ": module.succ},
    )
    model = signatures.open_model(tmp_path / "tf2")
    running = serving.start(
        servables.Catalog("m", None, model=model), serving.Options(name="m", port=0)
    )
    url = f"http://127.0.0.1:{running.port}/v1/models/m"
    try:
        assert call(f"{url}:predict", {"instances": [[1.0, 2.0]]})[1] == {
            "predictions": [[2.0, 4.0]]
        }
        assert call(f"{url}:predict", {"signature_name": "succ", "inputs": [1, 2]})[1] == {
            "outputs": [2, 3]
        }
        code, answer = call(f"{url}:predict", {"instances": [1.0]})  # x is [None, 2]
        assert code == 400 and "takes 2-d arrays" in answer["error"], answer
        assert str(tmp_path) not in answer["error"]  # TF Serving's errors name no server path
        found = call(f"{url}/metadata")[1]["metadata"]["signature_def"]["signature_def"]
        assert {"serving_default", "succ"} <= set(found)
        assert found["succ"]["inputs"]["n"]["dtype"] == "DT_INT64"
    finally:
        running.stop()


def test_a_signature_that_cannot_run_here_is_listed_and_refused_with_why(models):
    """The allowlist holds per signature: the safe one serves, the one reading files is
    listed by metadata and answers why it does not run."""
    running = _serve(models / "unsafe", "m")
    url = f"http://127.0.0.1:{running.port}/v1/models/m"
    try:
        assert call(f"{url}:predict", {"instances": [1.0, 2.5]})[1] == {"predictions": [2.0, 5.0]}
        code, answer = call(f"{url}:predict", {"signature_name": "read", "inputs": "/etc/passwd"})
        assert code == 400 and "signature 'read' cannot run on this server" in answer["error"]
        assert "ReadFile" in answer["error"] and str(models) not in answer["error"], answer
        found = call(f"{url}/metadata")[1]["metadata"]["signature_def"]["signature_def"]
        assert sorted(found) == ["read", "serving_default"]
    finally:
        running.stop()


def test_tf_servings_model_answers_kserves_v2_clients_as_its_own_api(two):
    """The same SavedModel through KServe's v2 protocol (tritonclient, HTTP and gRPC): its
    default signature's input ``x`` — not a Placeholder — and the same numbers."""
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    running, base, _ = two
    code, answer = call(f"{base}/v1/models/{TWO}:predict", {"instances": [1.0, 2.0, 5.0]})
    assert code == 200
    x = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)
    for module, url in (
        (triton_http, f"127.0.0.1:{running.port}"),
        (triton_grpc, f"127.0.0.1:{running.grpc_port}"),
    ):
        client = module.InferenceServerClient(url)
        meta = client.get_model_metadata(TWO)
        names = [i["name"] for i in meta["inputs"]] if isinstance(meta, dict) else None
        names = names or [i.name for i in meta.inputs]
        assert names == ["x"], names
        given = module.InferInput("x", list(x.shape), "FP32")
        given.set_data_from_numpy(x)
        got = client.infer(TWO, [given]).as_numpy("y")
        np.testing.assert_allclose(got.reshape(-1), answer["predictions"], rtol=1e-6, atol=1e-6)
        client.close()
