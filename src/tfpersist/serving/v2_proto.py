"""The Open Inference Protocol's gRPC messages (``package inference``), built at import from
the table below into a descriptor pool of their own — no generated code, no protoc.

The table is KServe's ``docs/predict-api/v2/grpc_predict_v2.proto`` (kserve/kserve @ aaac4e2,
Copyright 2022 The KServe Authors, Apache License 2.0) field for field: each line is the
proto's own field line. A pool of our own, not protobuf's default one, because the clients
register the same full names from another file (tritonclient's ``grpc_service.proto``,
kserve's ``grpc_predict_v2.proto``): two files defining ``inference.ModelInferRequest`` in
one pool is an import error, so a generated module would break any process that also
imports a client. The wire format depends only on the field numbers and types, which
tests/serving/test_v2.py holds to tritonclient's own descriptors.

``MESSAGES[name]`` is the message class (``ModelInferRequest``, ``ModelMetadataResponse``…);
``RPCS`` the service's methods with their request and response names.
"""

from __future__ import annotations

import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = "inference.GRPCInferenceService"
RPCS = {
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
}
PARAMETERS = "map<string, InferParameter> parameters"
CONTENTS = "InferTensorContents contents = 5"
# message (a nested one after its parent's name and a dot) → its fields, as the proto writes them
TABLE = {
    "ServerLiveRequest": [],
    "ServerLiveResponse": ["bool live = 1"],
    "ServerReadyRequest": [],
    "ServerReadyResponse": ["bool ready = 1"],
    "ModelReadyRequest": ["string name = 1", "string version = 2"],
    "ModelReadyResponse": ["bool ready = 1"],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [
        "string name = 1",
        "string version = 2",
        "repeated string extensions = 3",
    ],
    "ModelMetadataRequest": ["string name = 1", "string version = 2"],
    "ModelMetadataResponse.TensorMetadata": [
        "string name = 1",
        "string datatype = 2",
        "repeated int64 shape = 3",
    ],
    "ModelMetadataResponse": [
        "string name = 1",
        "repeated string versions = 2",
        "string platform = 3",
        "repeated ModelMetadataResponse.TensorMetadata inputs = 4",
        "repeated ModelMetadataResponse.TensorMetadata outputs = 5",
    ],
    "ModelInferRequest.InferInputTensor": [
        "string name = 1",
        "string datatype = 2",
        "repeated int64 shape = 3",
        f"{PARAMETERS} = 4",
        CONTENTS,
    ],
    "ModelInferRequest.InferRequestedOutputTensor": ["string name = 1", f"{PARAMETERS} = 2"],
    "ModelInferRequest": [
        "string model_name = 1",
        "string model_version = 2",
        "string id = 3",
        f"{PARAMETERS} = 4",
        "repeated ModelInferRequest.InferInputTensor inputs = 5",
        "repeated ModelInferRequest.InferRequestedOutputTensor outputs = 6",
        "repeated bytes raw_input_contents = 7",
    ],
    "ModelInferResponse.InferOutputTensor": [
        "string name = 1",
        "string datatype = 2",
        "repeated int64 shape = 3",
        f"{PARAMETERS} = 4",
        CONTENTS,
    ],
    "ModelInferResponse": [
        "string model_name = 1",
        "string model_version = 2",
        "string id = 3",
        f"{PARAMETERS} = 4",
        "repeated ModelInferResponse.InferOutputTensor outputs = 5",
        "repeated bytes raw_output_contents = 6",
    ],
    "InferParameter": [
        "oneof parameter_choice bool bool_param = 1",
        "oneof parameter_choice int64 int64_param = 2",
        "oneof parameter_choice string string_param = 3",
    ],
    "InferTensorContents": [
        "repeated bool bool_contents = 1",
        "repeated int32 int_contents = 2",
        "repeated int64 int64_contents = 3",
        "repeated uint32 uint_contents = 4",
        "repeated uint64 uint64_contents = 5",
        "repeated float fp32_contents = 6",
        "repeated double fp64_contents = 7",
        "repeated bytes bytes_contents = 8",
    ],
}
_F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
}
FIELD = re.compile(
    r"(?:(?P<repeated>repeated )|oneof (?P<oneof>\w+) )?"
    r"(?:map<string, (?P<map>[\w.]+)>|(?P<type>[\w.]+)) (?P<name>\w+) = (?P<number>\d+)"
)


def _field(message, path: str, line: str) -> None:
    found = FIELD.fullmatch(line)
    if found is None:
        raise ValueError(f"v2_proto: not a field line: {line}")
    field = message.field.add(name=found["name"], number=int(found["number"]))
    field.label = _F.LABEL_REPEATED if found["repeated"] or found["map"] else _F.LABEL_OPTIONAL
    kind = found["type"]
    if found["map"]:  # a map is a repeated nested ``…Entry`` message {key = 1, value = 2}
        entry = message.nested_type.add(name=f"{found['name'].title()}Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        value = f".{PACKAGE}.{found['map']}"
        entry.field.add(
            name="value", number=2, type=_F.TYPE_MESSAGE, type_name=value, label=_F.LABEL_OPTIONAL
        )
        field.type, field.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{path}.{entry.name}"
    elif kind in SCALARS:
        field.type = SCALARS[kind]
    else:
        field.type, field.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"
    if found["oneof"]:
        names = [o.name for o in message.oneof_decl]
        if found["oneof"] not in names:
            message.oneof_decl.add(name=found["oneof"])
            names.append(found["oneof"])
        field.oneof_index = names.index(found["oneof"])


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfpersist/grpc_predict_v2.proto", package=PACKAGE, syntax="proto3"
    )
    made = {}

    def message(path: str):
        if path not in made:
            parent, _, name = path.rpartition(".")
            made[path] = (message(parent).nested_type if parent else proto.message_type).add(
                name=name
            )
        return made[path]

    for path, fields in TABLE.items():
        made_here = message(path)
        for line in fields:
            _field(made_here, path, line)
    service = proto.service.add(name=SERVICE.rpartition(".")[2])
    for rpc, (request, response) in RPCS.items():
        service.method.add(
            name=rpc, input_type=f".{PACKAGE}.{request}", output_type=f".{PACKAGE}.{response}"
        )
    return proto


def _messages() -> dict:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    return {
        path: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{path}"))
        for path in TABLE
    }


MESSAGES = _messages()
