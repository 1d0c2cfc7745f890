"""gRPC: TF Serving's PredictionService and ModelService called with the official client —
tensorflow-serving-api's stubs and TensorFlow's make_tensor_proto, as TF Serving's own
example client does — and held to the REST API's answers on the same server."""

from __future__ import annotations

import json
import urllib.request

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfpersist import serving
from tfpersist.running import loaders

from helpers import X
from helpers import two_layer as build


@pytest.fixture(scope="module")
def served(tf, tmp_path_factory):
    root = tmp_path_factory.mktemp("grpc")
    build(tf, root / "model.pb")
    running = serving.serve_model(loaders.open_model(root / "model.pb"), "digits", grpc_port=0)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}")
    yield channel, f"http://127.0.0.1:{running.port}/v1/models/digits"
    channel.close()
    running.stop()


def rest(url: str, body=None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data), timeout=30) as answer:
        return json.loads(answer.read())


def predict_request(tf, rows, name="digits", **spec) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows))
    return request


def test_predict_with_the_official_stub_answers_as_rest_does(tf, served):
    channel, url = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(tf, X[:5]), timeout=30)
    assert response.model_spec.name == "digits" and response.model_spec.version.value == 1
    by_rest = rest(f"{url}:predict", {"inputs": {"x": X[:5].tolist()}})["outputs"]
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["probabilities"]), by_rest["probabilities"], rtol=1e-6
    )
    assert tf.make_ndarray(response.outputs["classes"]).tolist() == by_rest["classes"]
    only = predict_request(tf, X[:2], version=1)
    only.output_filter.append("classes")
    assert list(stub.Predict(only, timeout=30).outputs) == ["classes"]


def test_metadata_and_status_with_the_official_stubs(tf, served):
    channel, url = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "digits"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert signature.inputs["x"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in signature.inputs["x"].tensor_shape.dim] == [-1, 4]
    assert sorted(signature.outputs) == ["classes", "probabilities"]
    by_rest = rest(f"{url}/metadata")["metadata"]["signature_def"]["signature_def"]
    assert sorted(by_rest["serving_default"]["outputs"]) == sorted(signature.outputs)

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "digits"
    status = models.GetModelStatus(status_request, timeout=30).model_version_status
    assert [(s.version, s.state) for s in status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]
    assert rest(url)["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"name": "other"}, grpc.StatusCode.NOT_FOUND, "Servable not found"),
        ({"version": 7}, grpc.StatusCode.NOT_FOUND, "Specific(digits, 7)"),
        ({"version_label": "stable"}, grpc.StatusCode.INVALID_ARGUMENT, "version label: stable"),
        ({"signature_name": "train"}, grpc.StatusCode.FAILED_PRECONDITION, 'key "train" not'),
        ({"rows": X[:2].astype(np.float64)}, grpc.StatusCode.INVALID_ARGUMENT, "takes float32"),
        ({"rows": X[:2, :3]}, grpc.StatusCode.INVALID_ARGUMENT, "takes 4 features"),
    ],
)
def test_errors_are_tf_serving_status_codes(tf, served, change, code, message):
    channel, _ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    change = dict(change)
    rows = change.pop("rows", X[:2])
    name = change.pop("name", "digits")
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(predict_request(tf, rows, name, **change), timeout=30)
    assert raised.value.code() == code and message in raised.value.details()
    assert stub.Predict(predict_request(tf, X[:1]), timeout=30).outputs  # still serving
