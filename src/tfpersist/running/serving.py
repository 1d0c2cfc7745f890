"""``tfpersist serve``: TensorFlow Serving's REST predict API for any model loaders.py opens.

- ``GET /v1/models/NAME`` (and ``/versions/1``): the version status TF Serving reports;
- ``GET /v1/models/NAME/metadata``: the signature (inputs and outputs, dtypes, shapes);
- ``POST /v1/models/NAME:predict`` (and ``/versions/1:predict``): ``{"instances": [...]}``
  (row format → ``{"predictions": [...]}``) or ``{"inputs": ...}`` (columnar →
  ``{"outputs": ...}``), as TF Serving's REST API documents them.

On aiohttp (a maintained HTTP server; DVC already depends on it). Safe by default: the model
passes the same checks as ``predict`` before the port opens, the server binds to 127.0.0.1
unless told otherwise, bodies over ``max_request_bytes`` get 413, and a bad request gets a
4xx with ``{"error": "..."}``, never a traceback. Requests run one at a time on a worker
thread (TFLite's interpreter is not thread-safe), so the event loop keeps accepting.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tfpersist.errors import TfpersistError

VERSION = "1"
SIGNATURE = "serving_default"
DEFAULT_PORT = 8501  # TF Serving's REST port
MAX_REQUEST_BYTES = 16 * 1024 * 1024
DTYPES = {  # numpy → TF Serving's DataType names (metadata)
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "bool": "DT_BOOL",
    "string": "DT_STRING",
    "object": "DT_STRING",
}


class BadRequest(Exception):
    pass


def _array(value, tensor, what: str) -> np.ndarray:
    dtype = object if tensor.dtype in ("string", "object") else tensor.dtype
    try:
        if dtype is object:
            return np.array(value, dtype=object)
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"{what}: not a {tensor.dtype} tensor ({e})") from None


def parse(body: dict, model) -> tuple[dict[str, np.ndarray], str]:
    """The feeds of a predict request and its format ("row" or "columnar")."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with 'instances' or 'inputs'")
    signature = body.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise BadRequest(f"signature_name '{signature}': this server serves '{SIGNATURE}'")
    inputs = {t.name: t for t in model.inputs}
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest("give exactly one of 'instances' (row format) or 'inputs' (columnar)")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("'instances' must be a non-empty list, one item per example")
        if all(isinstance(r, dict) for r in rows):
            names = set(rows[0])
            if any(set(r) != names for r in rows):
                raise BadRequest("every instance must name the same inputs")
            columns = {n: [r[n] for r in rows] for n in names}
        elif len(inputs) == 1:
            columns = {next(iter(inputs)): rows}
        else:
            raise BadRequest(
                f"the model has {len(inputs)} inputs ({', '.join(inputs)}): give each "
                "instance as an object naming them"
            )
        kind = "row"
    else:
        given = body["inputs"]
        if isinstance(given, dict) and given:
            columns = given
        elif len(inputs) == 1:
            columns = {next(iter(inputs)): given}
        else:
            raise BadRequest(f"'inputs' must be an object naming {', '.join(inputs)}")
        kind = "columnar"
    known = {**inputs, **{t.name: t for t in model.optional_inputs}}
    unknown = sorted(set(columns) - set(known))
    if unknown:
        raise BadRequest(f"no input '{unknown[0]}'; the inputs are {', '.join(known)}")
    return {n: _array(v, known[n], f"input '{n}'") for n, v in columns.items()}, kind


def respond(outputs: dict[str, np.ndarray], kind: str) -> dict:
    """TF Serving's response: row format → per-example predictions (a value when the model
    has one output, else an object per example); columnar → outputs."""
    from tfpersist.running.prediction import jsonable

    values = {n: jsonable(np.asarray(v).tolist()) for n, v in outputs.items()}
    if kind == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{n: v[i] for n, v in values.items()} for i in range(count)]}


def metadata(model, name: str) -> dict:
    def tensor(t):
        dims = [{"size": str(-1 if d is None else d), "name": ""} for d in (t.shape or [])]
        shape = {"dim": dims, "unknown_rank": t.shape is None}
        return {"dtype": DTYPES.get(t.dtype, t.dtype), "tensor_shape": shape, "name": t.name}

    signature = {
        "inputs": {t.name: tensor(t) for t in [*model.inputs, *model.optional_inputs]},
        "outputs": {t.name: tensor(t) for t in model.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": VERSION},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }


def status() -> dict:
    return {
        "model_version_status": [
            {
                "version": VERSION,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def make_app(model, name: str, max_request_bytes: int = MAX_REQUEST_BYTES):
    """The aiohttp application serving ``model`` (loaders.open_model) as ``name``."""
    from aiohttp import web

    lock = threading.Lock()
    pool = ThreadPoolExecutor(1, thread_name_prefix="tfpersist-serve")

    def error(status: int, message: str):
        return web.json_response({"error": message}, status=status)

    def run(feeds):
        with lock:
            return model.run(feeds)

    async def predict(request):
        if request.match_info["name"] != name:
            return error(
                404, f"Servable not found for request: Latest({request.match_info['name']})"
            )
        version = request.match_info.get("version")
        if version not in (None, VERSION):
            return error(404, f"Servable not found for request: Specific({name}, {version})")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"the request is over {max_request_bytes} bytes")
        try:
            body = json.loads(raw)
            feeds, kind = parse(body, model)
        except json.JSONDecodeError as e:
            return error(400, f"the body is not JSON ({e})")
        except BadRequest as e:
            return error(400, str(e))
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(pool, run, feeds)
        except TfpersistError as e:
            return error(400, str(e))
        return web.json_response(respond(outputs, kind))

    def describing(answer):
        async def handler(request):
            asked = request.match_info["name"]
            if asked != name:
                return error(404, f"Could not find any versions of model {asked}")
            return web.json_response(answer())

        return handler

    model_status = describing(status)
    model_metadata = describing(lambda: metadata(model, name))

    async def close(app):
        pool.shutdown(wait=False)

    app = web.Application(client_max_size=max_request_bytes)
    app.router.add_post("/v1/models/{name}:predict", predict)
    app.router.add_post("/v1/models/{name}/versions/{version}:predict", predict)
    app.router.add_get("/v1/models/{name}", model_status)
    app.router.add_get("/v1/models/{name}/versions/{version}", model_status)
    app.router.add_get("/v1/models/{name}/metadata", model_metadata)
    app.on_cleanup.append(close)
    return app


class Server:
    """The app on ``host:port`` (port 0: a free one) in a thread of its own: ``start()``
    returns the port, ``stop()`` shuts it down."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.app, self.host, self.port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None

    def start(self) -> int:
        from aiohttp import web

        async def up():
            self._runner = web.AppRunner(self.app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(up(), self._loop).result()
        except OSError as e:
            self.stop()
            raise TfpersistError(
                f"cannot listen on {self.host}:{self.port} ({e.strerror})"
            ) from None
        return self.port

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
