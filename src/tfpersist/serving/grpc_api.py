"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` (Predict,
GetModelMetadata) and ``tensorflow.serving.ModelService`` (GetModelStatus), from the protos
and stubs of PyPI's ``tensorflow-serving-api`` — what TF Serving's own Python client uses;
and on the same port KServe's v2 ``inference.GRPCInferenceService`` (v2_grpc.py).

Tensors cross as TensorProto (``tf.make_ndarray`` / ``tf.make_tensor_proto``: TensorFlow's own
conversions; the protos import TensorFlow anyway). Each call is handed to the server's event
loop, so gRPC and REST share one batcher, one count of requests in flight and one set of
metrics. Errors are gRPC status codes named as TF Serving's (service.CODES).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from tfpersist.core.errors import TfpersistError
from tfpersist.serving import rest, servables, v2_grpc
from tfpersist.serving.options import DEFAULT_GRPC_PORT
from tfpersist.serving.service import Service, code_of

STATES = {"START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}


def _protos():
    from tfpersist.tfapi.tfcompat import import_tf

    tf = import_tf()  # quietly, before the protos import it
    from tensorflow.core.framework import tensor_shape_pb2, types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    return (
        tf,
        tensor_shape_pb2,
        types_pb2,
        meta_graph_pb2,
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )


class GrpcServer:
    """The two services on ``host:port`` (0: a free one); ``start()`` returns the port."""

    def __init__(
        self, service: Service, loop, host: str = "127.0.0.1", port: int = DEFAULT_GRPC_PORT
    ):
        import grpc

        (
            self.tf,
            self._shape_pb2,
            self._types_pb2,
            self._meta_pb2,
            self._metadata_pb2,
            self._status_pb2,
            model_grpc,
            self._predict_pb2,
            prediction_grpc,
        ) = _protos()
        self.service, self.loop, self.host, self.port = service, loop, host, port
        self._grpc = grpc
        self._server = grpc.server(ThreadPoolExecutor(8, thread_name_prefix="tfpersist-grpc"))
        outer = self

        class Prediction(prediction_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                return outer._call(context, outer._predict(request))

            def GetModelMetadata(self, request, context):
                return outer._call(context, outer._metadata(request))

        class Models(model_grpc.ModelServiceServicer):
            def GetModelStatus(self, request, context):
                return outer._call(context, outer._status(request))

        prediction_grpc.add_PredictionServiceServicer_to_server(Prediction(), self._server)
        model_grpc.add_ModelServiceServicer_to_server(Models(), self._server)
        v2_grpc.add_to(self._server, service, loop)  # KServe's v2 protocol on the same port

    def start(self) -> int:
        try:
            port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError:
            port = 0
        if not port:
            raise TfpersistError(f"cannot listen for gRPC on {self.host}:{self.port}")
        self._server.start()
        self.port = port
        return port

    def stop(self, grace: float | None = None, wait: bool = True):
        """New calls refused at once; those received run on up to ``grace`` seconds. The
        event set once all have ended (``wait``: waited for here)."""
        done = self._server.stop(grace)
        if wait:
            done.wait(timeout=(grace or 0) + 5)
        return done

    # -- the calls, run on the event loop -------------------------------------------------

    def _call(self, context, coroutine):
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()
        except Exception as e:
            code = code_of(e)[0]
            context.abort(getattr(self._grpc.StatusCode, code), str(e))

    def _target(self, spec):
        name = self.service.name
        if spec.name != name:
            raise servables.NotFound(f"Servable not found for request: Latest({spec.name})")
        version = spec.version.value if spec.HasField("version") else None
        return version, spec.version_label or None

    async def _predict(self, request):
        version, label = self._target(request.model_spec)
        with self.service.request("predict", "gRPC", version, label) as servable:
            model = servable.model
            signature = request.model_spec.signature_name
            if signature not in ("", rest.SIGNATURE):
                raise rest.BadRequest(
                    f"signature_name '{signature}': this server serves '{rest.SIGNATURE}'"
                )
            feeds = self._feeds(request, model)
            outputs = await self.service.predict(servable, feeds)
            wanted = list(request.output_filter)
            unknown = [n for n in wanted if n not in outputs]
            if unknown:
                raise rest.BadRequest(
                    f"output_filter: no output '{unknown[0]}'; the outputs are {', '.join(outputs)}"
                )
            response = self._predict_pb2.PredictResponse()
            response.model_spec.name = self.service.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = rest.SIGNATURE
            for key in wanted or outputs:
                response.outputs[key].CopyFrom(self.tf.make_tensor_proto(outputs[key]))
            return response

    def _feeds(self, request, model) -> dict:
        known = {t.name: t for t in [*model.inputs, *model.optional_inputs]}
        feeds = {}
        for key, proto in request.inputs.items():
            if key not in known:
                raise rest.BadRequest(f"no input '{key}'; the inputs are {', '.join(known)}")
            try:
                array = self.tf.make_ndarray(proto)
            except Exception as e:
                raise rest.BadRequest(f"input '{key}': not a tensor ({e})") from None
            want = known[key].dtype
            got = "string" if array.dtype.kind in "OSU" else array.dtype.name
            if got != ("string" if want in ("string", "object") else want):
                raise rest.BadRequest(
                    f"input '{key}' takes {want}, the request gives {got} (make_tensor_proto("
                    f"..., dtype={want}))"
                )
            feeds[key] = array
        missing = [t.name for t in model.inputs if t.name not in feeds]
        if missing:
            raise rest.BadRequest(f"input '{missing[0]}' not given")
        return feeds

    def _tensor_info(self, t):
        info = self._meta_pb2.TensorInfo(name=t.name)
        if t.dtype in ("string", "object"):
            info.dtype = self._types_pb2.DT_STRING
        else:
            info.dtype = self.tf.as_dtype(t.dtype).as_datatype_enum
        if t.shape is None:
            info.tensor_shape.unknown_rank = True
        for d in t.shape or []:
            info.tensor_shape.dim.add(size=-1 if d is None else d)
        return info

    async def _metadata(self, request):
        version, label = self._target(request.model_spec)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise rest.BadRequest(
                f"metadata_field {fields}: only ['signature_def'] is supported (as TF Serving)"
            )
        with self.service.catalog.use(version, label) as servable:
            model = servable.model
            signature = self._meta_pb2.SignatureDef(method_name="tensorflow/serving/predict")
            for t in [*model.inputs, *model.optional_inputs]:
                signature.inputs[t.name].CopyFrom(self._tensor_info(t))
            for t in model.outputs:
                signature.outputs[t.name].CopyFrom(self._tensor_info(t))
            found = self._metadata_pb2.SignatureDefMap()
            found.signature_def[rest.SIGNATURE].CopyFrom(signature)
            response = self._metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = self.service.name
            response.model_spec.version.value = servable.version
            response.metadata["signature_def"].Pack(found)
            return response

    async def _status(self, request):
        version, label = self._target(request.model_spec)
        if label is not None:
            with self.service.catalog.use(label=label) as servable:
                version = servable.version
        states = self.service.catalog.states()
        if version is not None:
            states = [s for s in states if s.version == version]
            if not states:
                raise servables.no_version(self.service.name, version)
        response = self._status_pb2.GetModelStatusResponse()
        for s in states:
            status = response.model_version_status.add(version=s.version, state=STATES[s.state])
            status.status.error_code = 2 if s.error else 0  # tensorflow.error.UNKNOWN, OK
            status.status.error_message = s.error
        return response
