"""The Open Inference Protocol's gRPC service, ``inference.GRPCInferenceService`` (ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer), on the gRPC port of TF
Serving's PredictionService (grpc_api.py registers it).

Inputs come as ``raw_input_contents`` (what tritonclient sends: one little-endian buffer per
input, BYTES elements length-prefixed) or as typed ``contents``; outputs go back as
``raw_output_contents`` (what tritonclient reads). Inference runs on the server's event loop
through the same Service as REST: one batcher, one count of requests in flight, one set of
metrics (API ``infer``, entrypoint ``gRPC``). Errors are gRPC status codes (service.CODES).
The messages are v2_proto's, in a descriptor pool of their own.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from tfpersist.serving import v2
from tfpersist.serving.servables import NotFound
from tfpersist.serving.service import code_of
from tfpersist.serving.v2_proto import MESSAGES, RPCS, SERVICE

BadRequest = v2.BadRequest
CONTENTS = {  # datatype → the InferTensorContents field that carries it
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def add_to(server, service, loop) -> None:
    """Serve the v2 service for ``service`` on the ``grpc.server`` ``server``."""
    inference = Inference(service, loop)
    handlers = {}
    for rpc, (request, response) in RPCS.items():
        handlers[rpc] = grpc.unary_unary_rpc_method_handler(
            getattr(inference, rpc),
            request_deserializer=MESSAGES[request].FromString,
            response_serializer=MESSAGES[response].SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def from_contents(name: str, kind: str, shape: list[int], contents) -> np.ndarray:
    field = CONTENTS.get(kind)
    if field is None:
        raise BadRequest(f"input '{name}' is {kind}: send it in raw_input_contents")
    values = getattr(contents, field)
    if kind == "BYTES":
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    elif kind in ("BOOL", "FP32", "FP64"):
        flat = np.array(values, dtype=v2.NUMPY[kind])
    else:  # int_contents and uint_contents carry the narrower integers: checked
        flat = v2.narrow(
            name, np.array(values, dtype=np.int64 if kind[0] == "I" else np.uint64), kind
        )
    return v2.fit(name, flat, shape)


class Inference:
    """The six calls, each on a gRPC worker thread; inference hops onto the event loop."""

    def __init__(self, service, loop):
        self.service, self.loop = service, loop

    def _catalog(self, name: str):
        if name != self.service.name:
            raise NotFound(f"no model '{name}'; this server serves '{self.service.name}'")
        return self.service.catalog

    @staticmethod
    def _abort(context, error: Exception):
        context.abort(getattr(grpc.StatusCode, code_of(error)[0]), str(error))

    def ServerLive(self, request, context):
        return MESSAGES["ServerLiveResponse"](live=True)

    def ServerReady(self, request, context):
        return MESSAGES["ServerReadyResponse"](ready=v2.server_ready(self.service.catalog))

    def ModelReady(self, request, context):
        try:
            catalog = self._catalog(request.name)
            version, label = v2.target(request.version or None)  # past int64: INVALID_ARGUMENT
        except Exception as e:
            return self._abort(context, e)
        ready = v2.model_ready(catalog, version, label)
        return MESSAGES["ModelReadyResponse"](ready=ready)

    def ServerMetadata(self, request, context):
        return MESSAGES["ServerMetadataResponse"](**v2.server_metadata())

    def ModelMetadata(self, request, context):
        try:
            catalog = self._catalog(request.name)
            with catalog.use(*v2.target(request.version or None)) as servable:
                found = v2.model_metadata(catalog, servable)
        except Exception as e:
            return self._abort(context, e)
        response = MESSAGES["ModelMetadataResponse"](
            name=found["name"], versions=found["versions"], platform=found["platform"]
        )
        for key in ("inputs", "outputs"):
            for t in found[key]:
                getattr(response, key).add(**t)
        return response

    def ModelInfer(self, request, context):
        try:
            return asyncio.run_coroutine_threadsafe(self._infer(request), self.loop).result()
        except Exception as e:
            return self._abort(context, e)

    async def _infer(self, request):
        service = self.service
        self._catalog(request.model_name)
        version, label = v2.target(request.model_version or None)
        with service.request("infer", "gRPC", version, label) as servable:
            model = servable.model
            feeds = self._feeds(request, model)
            for part in (*request.inputs, *request.outputs):
                _supported(part)
            wanted = [o.name for o in request.outputs]
            v2.output_names(model, wanted)
            outputs = await service.predict(servable, feeds)
            response = MESSAGES["ModelInferResponse"](
                model_name=service.name, model_version=str(servable.version), id=request.id
            )
            for key in wanted or [t.name for t in model.outputs]:
                array = np.asarray(outputs[key])
                kind = v2.kind_of(array, key)
                response.outputs.add(name=key, datatype=kind, shape=array.shape)
                response.raw_output_contents.append(v2.to_bytes(array, kind))
            return response

    @staticmethod
    def _feeds(request, model) -> dict:
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise BadRequest(
                f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs: one each"
            )
        feeds = {}
        for i, tensor in enumerate(request.inputs):
            name, kind = tensor.name, tensor.datatype
            v2.input_of(model, name, kind)
            if name in feeds:
                raise BadRequest(f"input '{name}' is given twice")
            shape = list(tensor.shape)
            if any(d < 0 for d in shape):
                raise BadRequest(f"input '{name}': 'shape' must be a list of sizes (≥ 0)")
            if len(shape) > v2.MAX_RANK:
                rank = f"rank {len(shape)}; at most {v2.MAX_RANK} dimensions"
                raise BadRequest(f"input '{name}': {rank}")
            if raw:
                if tensor.HasField("contents"):
                    raise BadRequest(f"input '{name}': contents and raw_input_contents both given")
                feeds[name] = v2.from_bytes(name, kind, shape, raw[i])
            else:
                feeds[name] = from_contents(name, kind, shape, tensor.contents)
        v2.check_feeds(model, feeds)
        return feeds


def _supported(part) -> None:
    """A tensor's parameters asking for what this server lacks (v2.UNSUPPORTED) refused."""
    for key in v2.UNSUPPORTED:
        if key in part.parameters:  # a map read that inserts nothing
            what = f"parameter '{key}' (Triton's extension) is not supported"
            raise BadRequest(f"{part.name}: {what}")
