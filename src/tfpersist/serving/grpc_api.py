"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` (Predict, Classify,
Regress, MultiInference, GetModelMetadata: every signature, signatures.py and examples.py)
and ``tensorflow.serving.ModelService`` (GetModelStatus), from the protos and stubs of PyPI's
``tensorflow-serving-api`` — what TF Serving's own Python client uses. gRPC's Python server
sets SO_REUSEPORT by default, which lets a second server share a taken port and the kernel
split clients between them: it is turned off, and every address the host resolves to is
checked before binding (gRPC binds a host name's addresses one by one and serves on those it
got). On the same port: KServe's v2 ``inference.GRPCInferenceService`` (v2_grpc.py).

Tensors cross as TensorProto: read by ``tf.make_ndarray`` (the protos import TensorFlow
anyway), written as TF Serving writes them, every value in the typed field (``float_val`` …)
that clients read. Each call is handed to the server's event
loop, so gRPC and REST share one batcher, one count of requests in flight and one set of
metrics. Errors are gRPC status codes named as TF Serving's (service.CODES).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from tfpersist.core.errors import TfpersistError
from tfpersist.serving import examples, rest, servables, signatures, v2_grpc
from tfpersist.serving.options import DEFAULT_GRPC_PORT
from tfpersist.serving.service import Service, code_of
from tfpersist.tfapi import tensors

STATES = {"START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}


def _protos():
    from tfpersist.tfapi.tfcompat import import_tf

    tf = import_tf()  # quietly, before the protos import it
    from tensorflow.core.framework import tensor_shape_pb2, types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import (
        classification_pb2,
        get_model_metadata_pb2,
        get_model_status_pb2,
        inference_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
        regression_pb2,
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
        (classification_pb2, regression_pb2, inference_pb2),
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
            (self._classify_pb2, self._regress_pb2, self._inference_pb2),
        ) = _protos()
        self.service, self.loop, self.host, self.port = service, loop, host, port
        self._grpc = grpc
        self._server = grpc.server(
            ThreadPoolExecutor(8, thread_name_prefix="tfpersist-grpc"),
            options=[("grpc.so_reuseport", 0)],  # a taken port is an error, not shared
        )
        outer = self

        class Prediction(prediction_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                return outer._call(context, outer._predict(request))

            def GetModelMetadata(self, request, context):
                return outer._call(context, outer._metadata(request))

            def Classify(self, request, context):
                return outer._call(context, outer._classify(request, signatures.CLASSIFY))

            def Regress(self, request, context):
                return outer._call(context, outer._classify(request, signatures.REGRESS))

            def MultiInference(self, request, context):
                return outer._call(context, outer._multi(request))

        class Models(model_grpc.ModelServiceServicer):
            def GetModelStatus(self, request, context):
                return outer._call(context, outer._status(request))

        prediction_grpc.add_PredictionServiceServicer_to_server(Prediction(), self._server)
        model_grpc.add_ModelServiceServicer_to_server(Models(), self._server)
        v2_grpc.add_to(self._server, service, loop)  # KServe's v2 protocol on the same port

    def start(self) -> int:
        taken = _taken(self.host, self.port)
        try:
            port = 0 if taken else self._server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError:
            port = 0
        if not port:
            why = f" ({taken})" if taken else ""
            raise TfpersistError(f"cannot listen for gRPC on {self.host}:{self.port}{why}")
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
            key = request.model_spec.signature_name or signatures.DEFAULT
            sig = signatures.table(model).get(key)
            if sig is None:
                raise rest.FailedPrecondition(f'Serving signature key "{key}" not found.')
            if isinstance(sig, signatures.Broken):
                sig.run({})  # raises why it cannot run here
            feeds = self._feeds(request, sig)
            wanted = list(request.output_filter)
            names = [t.name for t in sig.outputs]
            for i, alias in enumerate(wanted):
                if alias not in names:
                    raise rest.BadRequest(
                        f"output tensor alias not found in signature: {alias} Outputs expected "
                        f"to be in the set {{{','.join(sorted(names))}}}."
                    )
                if alias in wanted[:i]:
                    raise rest.BadRequest(f"duplicate output tensor alias: {alias}")
            outputs = await self.service.predict(servable, feeds, key)
            response = self._predict_pb2.PredictResponse()
            self._spec(response.model_spec, servable, key)
            for name in wanted or outputs:
                response.outputs[name].CopyFrom(tensors.as_proto_field(outputs[name]))
            return response

    def _spec(self, spec, servable, key: str) -> None:
        spec.name = self.service.name
        spec.version.value = servable.version
        spec.signature_name = key

    def _feeds(self, request, sig) -> dict:
        known = {t.name: t for t in [*sig.inputs, *sig.optional_inputs]}
        given = set(request.inputs)
        if len(given) > len(known) or not {t.name for t in sig.inputs} <= given:
            required = sorted(t.name for t in sig.inputs)
            raise rest.BadRequest(
                f"input size does not match signature: {len(given)}!={len(known)} "
                f"len({{{','.join(sorted(given))}}}) != len({{{','.join(sorted(known))}}}). "
                f"Sent extra: {{{','.join(sorted(given - set(known)))}}}. Missing but "
                f"required: {{{','.join(n for n in required if n not in given)}}}."
            )
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
        return feeds

    async def _classify(self, request, method: str):
        """Classify or Regress: the request's tf.Examples through a signature's ``inputs``."""
        version, label = self._target(request.model_spec)
        what = "classify" if method == signatures.CLASSIFY else "regress"
        with self.service.request(what, "gRPC", version, label) as servable:
            feed = self._examples(request.input)
            key, _ = examples.signature(servable.model, request.model_spec.signature_name, method)
            outputs = await self.service.predict(servable, {"inputs": feed}, key)
            if method == signatures.CLASSIFY:
                response = self._classify_pb2.ClassificationResponse()
                self._classifications(response.result, outputs, len(feed))
            else:
                response = self._regress_pb2.RegressionResponse()
                self._regressions(response.result, outputs, len(feed))
            self._spec(response.model_spec, servable, key)
            return response

    def _examples(self, given):
        if given.HasField("example_list_with_context"):
            listed = given.example_list_with_context
            return examples.serialized(listed.context, list(listed.examples))
        return examples.serialized(None, list(given.example_list.examples))

    def _classifications(self, result, outputs, count: int) -> None:
        for row in examples.classifications(outputs, count):
            found = result.classifications.add()
            for name, score in row:
                found.classes.add(label=name, score=score)

    def _regressions(self, result, outputs, count: int) -> None:
        for value in examples.regressions(outputs, count):
            result.regressions.add(value=value)

    async def _multi(self, request):
        """MultiInference: classify and regress tasks of one model on the same examples."""
        spec = request.tasks[0].model_spec if request.tasks else None
        if spec is None:
            raise servables.NotFound("Servable not found for request: Latest()")
        version, label = self._target(spec)
        with self.service.request("multi_inference", "gRPC", version, label) as servable:
            tasks = examples.multi_tasks(servable.model, request.tasks, self.service.name)
            feed = self._examples(request.input)
            response = self._inference_pb2.MultiInferenceResponse()
            for (method, key, _), task in zip(tasks, request.tasks, strict=True):
                outputs = await self.service.predict(servable, {"inputs": feed}, key)
                result = response.results.add()
                if method == signatures.CLASSIFY:
                    self._classifications(result.classification_result, outputs, len(feed))
                else:
                    self._regressions(result.regression_result, outputs, len(feed))
                result.model_spec.name = task.model_spec.name
                result.model_spec.signature_name = key
                result.model_spec.version.value = servable.version
            return response

    async def _metadata(self, request):
        version, label = self._target(request.model_spec)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            shown = fields[0] if fields else "(none)"
            raise rest.BadRequest(f"Metadata field {shown} is not supported")
        with self.service.catalog.use(version, label) as servable:
            found = self._metadata_pb2.SignatureDefMap()
            for key, sig in signatures.defs(servable.model).items():
                found.signature_def[key].ParseFromString(sig.SerializeToString())
            response = self._metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = self.service.name
            response.model_spec.version.value = servable.version
            response.metadata["signature_def"].Pack(found)
            return response

    async def _status(self, request):
        version, _ = self._target(request.model_spec)  # a label is read past, as TF Serving's
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


def _taken(host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on ("" when it can): every address the host
    resolves to bound by a plain socket first — gRPC binds a host name's addresses one by one
    and serves on the ones it got (``localhost`` on [::1] while 127.0.0.1 is taken)."""
    import socket

    if not port:
        return ""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return e.strerror or str(e)
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not REUSEPORT
            try:
                probe.bind(address)
            except OSError as e:
                return f"{address[0]}: {e.strerror or e}"
    return ""
