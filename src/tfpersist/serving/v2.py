"""The Open Inference Protocol (KServe v2) beside TF Serving's API: its tensors, metadata and
REST routes, on the same Service (catalog, batcher, metrics) as ``/v1``.

- ``GET /v2``: the server's name, version and extensions; ``GET /v2/health/live``;
  ``GET /v2/health/ready``: 200 only while every version the server holds is loaded and warmed
  (none still loading) and it is not draining, else 400;
- ``GET /v2/models/NAME[/versions/V]``: the model's metadata (inputs and outputs with their
  datatype and shape, -1 for a free dimension; the versions that serve); ``…/ready``;
- ``POST /v2/models/NAME[/versions/V]/infer``: inference. V is a version number or one of the
  server's labels.

Tensors: ``{"name", "shape", "datatype", "data"}`` with the spec's datatypes (BOOL, UINT8 …
UINT64, INT8 … INT64, FP16, FP32, FP64, BYTES), ``data`` flat or nested, row-major; the
request's ``datatype`` must be the input's (no silent casts); JSON numbers are checked against
the datatype (kind and, for integers, range). Triton's binary tensor data extension, what
tritonclient sends by default, both ways: a body of JSON (``Inference-Header-Content-Length``
bytes long) then each binary input's bytes (``parameters.binary_data_size``; BYTES elements
each prefixed by its 4-byte little-endian length); outputs come back binary when the request
says so (``parameters.binary_data_output``, or an output's ``parameters.binary_data``), JSON
otherwise. ``id`` is echoed; ``outputs`` selects. JSON cannot hold NaN: orjson writes it
``null`` (tritonclient reads ``null`` back as NaN); ask for binary outputs to keep the bits.

Errors are ``{"error": "…"}`` with the statuses of TF Serving's API (service.CODES): 400 for a
request the model cannot take, 404 for no such model or version, 503 while nothing serves.
"""

from __future__ import annotations

import functools
import re
import struct
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import orjson

from tfpersist import __version__, formats
from tfpersist.core.errors import TfpersistError
from tfpersist.serving import rest
from tfpersist.serving.servables import AVAILABLE, LOADING, START

BadRequest = rest.BadRequest
DATATYPES = {  # numpy dtype name → the spec's datatype
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bfloat16": "BF16",  # metadata only: no input of this datatype is read (docs/kserve.md)
    "string": "BYTES",
    "object": "BYTES",
}
_NUMERIC = {k: v for k, v in DATATYPES.items() if v not in ("BYTES", "BF16")}
NUMPY = {v: np.dtype(k).newbyteorder("<") for k, v in _NUMERIC.items()}
BY_DTYPE = {np.dtype(k): v for k, v in _NUMERIC.items()}  # dtype.name: 3 µs
KINDS = {"BOOL": "b", "FP16": "iuf", "FP32": "iuf", "FP64": "iuf"}  # else integers: "iu"
EXTENSIONS = ["binary_tensor_data"]
HEADER = "inference-header-content-length"
BINARY = "application/octet-stream"
MODEL = re.compile(
    r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<tail>/ready|/infer)?"
)
_LENGTH = struct.Struct("<I")


# -- metadata and health ---------------------------------------------------------------------


def server_metadata() -> dict:
    return {"name": "tfpersist", "version": __version__, "extensions": EXTENSIONS}


@functools.cache
def datatype(dtype: str) -> str:
    """A model's dtype name (numpy's, or a runtime's own: onnxruntime says ``double``) as
    the spec's datatype."""
    if dtype not in DATATYPES:
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            return dtype.upper()
    return DATATYPES.get(dtype, dtype.upper())


def shape_of(t) -> list[int]:
    """The tensor's shape, -1 for a free dimension; an unknown rank is written ``[-1]``
    (the protocol has no word for it)."""
    return [-1] if t.shape is None else [-1 if d is None else d for d in t.shape]


def platform(model) -> str:
    """The spec's ``<framework>_<format>`` name for what ``model`` was loaded from."""
    kind = getattr(model, "format", "")
    if kind == formats.ONNX:
        return "onnx_onnxv1"
    if kind == formats.TFLITE:
        return "tensorflow_tflite"
    source = Path(getattr(model, "source", ""))
    return (
        "tensorflow_savedmodel" if (source / "saved_model.pb").is_file() else "tensorflow_graphdef"
    )


def model_metadata(catalog, servable) -> dict:
    model = servable.model
    available = sorted(s.version for s in catalog.states() if s.state == AVAILABLE)

    def tensor(t) -> dict:
        return {"name": t.name, "datatype": datatype(t.dtype), "shape": shape_of(t)}

    return {
        "name": catalog.name,
        "versions": [str(v) for v in available],
        "platform": platform(model),
        "inputs": [tensor(t) for t in [*model.inputs, *model.optional_inputs]],
        "outputs": [tensor(t) for t in model.outputs],
    }


def server_ready(catalog) -> bool:
    """Every version the catalog holds is loaded and warmed (none starting or loading), at
    least one serves, and the server is not draining."""
    states = catalog.states()
    return (
        not catalog.draining
        and any(s.state == AVAILABLE for s in states)
        and not any(s.state in (START, LOADING) for s in states)
    )


def model_ready(catalog, version, label) -> bool:
    try:
        servable = catalog.acquire(version, label)
    except TfpersistError:  # no such version (404), an unknown label (400), nothing yet (503)
        return False
    catalog.release(servable)
    return True


target = rest.target  # a version: a number, or else a label (one rule with /v1's)


# -- tensors ---------------------------------------------------------------------------------


MAX_RANK = 64  # numpy's (and TensorFlow's TensorShape's) limit


def _shape(name: str, shape) -> list[int]:
    if not isinstance(shape, list | tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"input '{name}': 'shape' must be a list of sizes (integers ≥ 0)")
    if len(shape) > MAX_RANK:
        raise BadRequest(f"input '{name}': rank {len(shape)}; at most {MAX_RANK} dimensions")
    return list(shape)


def _count(shape: list[int]) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def fit(name: str, array: np.ndarray, shape: list[int]) -> np.ndarray:
    if array.size != _count(shape):
        raise BadRequest(
            f"input '{name}': shape {shape} holds {_count(shape)} elements; the data has "
            f"{array.size}"
        )
    return array.reshape(shape)


@functools.cache
def _range(kind: str) -> np.iinfo:
    return np.iinfo(NUMPY[kind])


def narrow(name: str, array: np.ndarray, kind: str) -> np.ndarray:
    """``array`` (numbers as given) as ``kind``, refused when a value does not fit it."""
    target = NUMPY[kind]
    if array.size and target.kind in "iu":
        info = _range(kind)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise BadRequest(f"input '{name}': {bad} is out of the range of {kind}")
    return array.astype(target, copy=False)


def _big_ints(name: str, kind: str, data, array: np.ndarray) -> np.ndarray:
    """Integers numpy would not read as integers (one past int64 makes them all floats),
    exactly: ``array`` as it was when they are not all integers."""
    exact = np.array(data, dtype=object).ravel().tolist()
    if not exact or not all(type(v) is int for v in exact):
        return array
    info = _range(kind)
    for v in (min(exact), max(exact)):
        if not info.min <= v <= info.max:
            raise BadRequest(f"input '{name}': {v} is out of the range of {kind}")
    return np.array(data, dtype=NUMPY[kind])


def from_json(name: str, kind: str, shape: list[int], data, booleans: bool = True) -> np.ndarray:
    """A tensor from JSON ``data`` (flat or nested), checked against ``kind``; ``booleans``:
    whether the body may hold ``true``/``false`` at all (numpy reads ``[1, true]`` as the
    integers ``[1, 1]``: only then is every element's type looked at)."""
    try:
        array = np.array(data)
    except (ValueError, TypeError, OverflowError) as e:
        raise BadRequest(f"input '{name}': 'data' is not a regular array ({e})") from None
    if kind == "BYTES":
        items = np.array(data, dtype=object).ravel().tolist() if array.size else []
        if array.dtype.kind != "U" or not all(type(item) is str for item in items):
            raise BadRequest(f"input '{name}' is BYTES: 'data' must hold strings")
        flat = np.empty(array.size, dtype=object)
        flat[:] = [item.encode() for item in items]
        return fit(name, flat, shape)
    if (
        booleans
        and kind != "BOOL"
        and array.dtype.kind in "iuf"
        and any(type(v) is bool for v in np.array(data, dtype=object).ravel().tolist())
    ):
        what = "numbers" if kind[0] == "F" else "integers"
        raise BadRequest(f"input '{name}' is {kind}: 'data' must hold {what}, not true/false")
    if kind not in KINDS and array.dtype.kind in "fO":  # ints past int64: floats or objects
        array = _big_ints(name, kind, data, array)
    if array.size and array.dtype.kind not in KINDS.get(kind, "iu"):
        what = "true/false" if kind == "BOOL" else "numbers" if kind[0] == "F" else "integers"
        raise BadRequest(f"input '{name}' is {kind}: 'data' must hold {what}")
    return fit(name, narrow(name, array, kind), shape)


def unpack_bytes(name: str, raw) -> list[bytes]:
    """BYTES elements from their binary form: each a 4-byte little-endian length, then it."""
    items, at, end = [], 0, len(raw)
    while at < end:
        if at + 4 > end:
            raise BadRequest(f"input '{name}': BYTES data ends inside an element's length")
        (size,) = _LENGTH.unpack_from(raw, at)
        at += 4
        if at + size > end:
            raise BadRequest(f"input '{name}': BYTES data ends inside an element")
        items.append(bytes(raw[at : at + size]))
        at += size
    return items


def from_bytes(name: str, kind: str, shape: list[int], raw) -> np.ndarray:
    """A tensor from its binary form (little-endian, row-major; BOOL one byte each)."""
    if kind == "BYTES":
        items = unpack_bytes(name, raw)
        flat = np.empty(len(items), dtype=object)
        flat[:] = items
        return fit(name, flat, shape)
    dtype = NUMPY[kind]
    if len(raw) != _count(shape) * dtype.itemsize:
        raise BadRequest(
            f"input '{name}': {len(raw)} bytes of data; shape {shape} of {kind} takes "
            f"{_count(shape) * dtype.itemsize}"
        )
    if kind == "BOOL":  # any byte but 0 is true, as a C bool would read it
        return (np.frombuffer(raw, dtype=np.uint8) != 0).reshape(shape)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def kind_of(array: np.ndarray, name: str) -> str:
    if array.dtype.kind in "OSU":
        return "BYTES"
    kind = BY_DTYPE.get(array.dtype)
    if kind is None:
        raise BadRequest(f"output '{name}' is {array.dtype.name}: the v2 protocol has no datatype")
    return kind


def to_bytes(array: np.ndarray, kind: str) -> bytes:
    """A tensor in its binary form (what ``from_bytes`` reads)."""
    if kind == "BYTES":
        parts = []
        for item in array.ravel().tolist():
            item = item if isinstance(item, bytes) else str(item).encode()
            parts += (_LENGTH.pack(len(item)), item)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=NUMPY[kind]).tobytes()


def _json_data(array: np.ndarray, kind: str, name: str):
    """``data`` for a JSON answer: flat, as orjson writes it from the array."""
    if kind == "BYTES":
        try:
            return [i.decode() if isinstance(i, bytes) else str(i) for i in array.ravel().tolist()]
        except UnicodeDecodeError:
            raise BadRequest(
                f"output '{name}' holds bytes that are not UTF-8: ask for it as binary data"
            ) from None
    return rest.orjsonable(array.reshape(-1))


# -- requests --------------------------------------------------------------------------------


class Request:
    """An inference request read: ``feeds`` for the model, ``outputs`` [(name, binary)] to
    answer, ``id`` to echo."""

    __slots__ = ("feeds", "id", "outputs")

    def __init__(self, feeds, outputs, id_):
        self.feeds, self.outputs, self.id = feeds, outputs, id_


def input_of(model, name, kind) -> None:
    """The model's input ``name`` takes ``kind``, or one line saying why not."""
    tensors = [*model.inputs, *model.optional_inputs]
    for t in tensors:
        if t.name == name:
            want = datatype(t.dtype)
            if kind != want:
                raise BadRequest(f"input '{name}' is {want}; the request gives {kind}")
            return
    if not isinstance(name, str):
        raise BadRequest("every input needs a 'name'")
    raise BadRequest(f"no input '{name}'; the inputs are {', '.join(t.name for t in tensors)}")


def check_feeds(model, feeds: dict) -> None:
    missing = [t.name for t in model.inputs if t.name not in feeds]
    if missing:
        raise BadRequest(f"input '{missing[0]}' not given")


def output_names(model, wanted: list[str]) -> None:
    names = [t.name for t in model.outputs]
    for name in wanted:
        if name not in names:
            raise BadRequest(f"no output '{name}'; the outputs are {', '.join(names)}")


def _flag(parameters, key: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if type(value) is not bool:
        raise BadRequest(f"parameter '{key}' must be true or false")
    return value


# Triton's extensions this server does not have: a request asking for one is refused, not
# answered as if it had not asked (top-k class labels, tensors in shared memory)
UNSUPPORTED = ("classification", "shared_memory_region")


def _parameters(holder: dict, what: str) -> dict:
    found = holder.get("parameters", {})
    if not isinstance(found, dict):
        raise BadRequest(f"{what}'s 'parameters' must be an object")
    for key in UNSUPPORTED:
        if key in found:
            raise BadRequest(f"{what}: parameter '{key}' (Triton's extension) is not supported")
    return found


def parse(raw: bytes, header: str | None, model) -> Request:
    """An HTTP inference request: the JSON, then (with the header) the binary tensors."""
    view = memoryview(raw)
    binary = None
    if header is not None:
        if not header.strip().isdigit():
            raise BadRequest(f"Inference-Header-Content-Length '{header}' is not a number")
        length = int(header)
        if length == 0:
            raise BadRequest(
                "a raw binary request (Inference-Header-Content-Length 0) is not supported"
            )
        if length > len(raw):
            raise BadRequest(
                f"Inference-Header-Content-Length {length}: the body has {len(raw)} bytes"
            )
        view, binary = view[:length], view[length:]
    try:
        body = orjson.loads(view)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON ({e})") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with 'inputs'")
    given = body.get("inputs")
    if not isinstance(given, list) or not given or not all(isinstance(i, dict) for i in given):
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    binary_default = _flag(_parameters(body, "the request"), "binary_data_output", False)
    end = len(view)  # the JSON part: a cheap scan, most bodies hold no true/false at all
    booleans = raw.find(b"true", 0, end) >= 0 or raw.find(b"false", 0, end) >= 0
    feeds, at = {}, 0
    for tensor in given:
        name, kind = tensor.get("name"), tensor.get("datatype")
        input_of(model, name, kind)
        if name in feeds:
            raise BadRequest(f"input '{name}' is given twice")
        shape = _shape(name, tensor.get("shape"))
        size = _parameters(tensor, f"input '{name}'").get("binary_data_size")
        if size is None:
            if "data" not in tensor:
                raise BadRequest(f"input '{name}' has no 'data' (nor binary_data_size)")
            feeds[name] = from_json(name, kind, shape, tensor["data"], booleans)
            continue
        if binary is None:
            raise BadRequest(
                f"input '{name}' has binary_data_size but the request has no "
                "Inference-Header-Content-Length header"
            )
        if type(size) is not int or size < 0 or at + size > len(binary):
            raise BadRequest(f"input '{name}': binary_data_size {size} is past the body's end")
        feeds[name] = from_bytes(name, kind, shape, binary[at : at + size])
        at += size
    if binary is not None and at != len(binary):
        raise BadRequest(f"{len(binary) - at} bytes of binary data belong to no input")
    check_feeds(model, feeds)
    outputs = body.get("outputs")
    if outputs is None:
        return Request(feeds, [(t.name, binary_default) for t in model.outputs], request_id)
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise BadRequest("'outputs' must be a list of objects naming outputs")
    wanted = []
    for o in outputs:
        name = o.get("name")
        flag = _flag(_parameters(o, f"output '{name}'"), "binary_data", binary_default)
        wanted.append((name, flag))
    output_names(model, [n for n, _ in wanted])
    return Request(feeds, wanted, request_id)


def respond(request: Request, outputs: dict, name: str, version: int) -> tuple[bytes, int | None]:
    """The answer's body and, when it carries binary tensors, the length of its JSON part."""
    described, blobs = [], []
    for key, binary in request.outputs:
        array = np.asarray(outputs[key])
        kind = kind_of(array, key)
        tensor = {"name": key, "datatype": kind, "shape": list(array.shape)}
        if binary:
            blob = to_bytes(array, kind)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _json_data(array, kind, key)
        described.append(tensor)
    answer = {"model_name": name, "model_version": str(version)}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = described
    text = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return text, None
    return b"".join([text, *blobs]), len(text)


# -- the REST routes -------------------------------------------------------------------------


class Rest:
    """``/v2`` on the REST server (server.App hands it every path under ``/v2``): ``run`` is
    the App's inference over REST (the body, the batcher, the metrics; v2 brings its parse and
    answer), ``failure(proto, e)`` answers an error as the ``/v1`` routes do."""

    def __init__(self, service, run, failure):
        self.service, self.name = service, service.name
        self._run, self._failure = run, failure

    async def dispatch(self, scope, proto) -> None:
        path, method = scope.path, scope.method
        found = MODEL.fullmatch(path)
        tail = found["tail"] if found else None
        allowed = "POST" if tail == "/infer" else "GET"
        if found is None and path not in ("/v2", "/v2/", "/v2/health/live", "/v2/health/ready"):
            return rest.answer(proto, rest.error(f"no such path: {path}"), 404)
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            return rest.not_allowed(proto, method, path, allowed)
        catalog = self.service.catalog
        if found is None:
            if path.endswith("/live"):
                return proto.response_bytes(200, [], b"")
            if path.endswith("/ready"):
                return proto.response_bytes(200 if server_ready(catalog) else 400, [], b"")
            return rest.answer(proto, orjson.dumps(server_metadata()))
        name = unquote(found["name"])
        if name != self.name:
            return rest.answer(
                proto, rest.error(f"no model '{name}'; this server serves '{self.name}'"), 404
            )
        try:
            version, label = target(unquote(found["version"]) if found["version"] else None)
        except Exception as e:
            return self._failure(proto, e)
        if tail == "/infer":
            return await self._infer(scope, proto, version, label)
        if tail == "/ready":
            ready = model_ready(catalog, version, label)
            return proto.response_bytes(200 if ready else 400, [], b"")
        try:
            with catalog.use(version, label) as servable:
                body = orjson.dumps(model_metadata(catalog, servable))
        except Exception as e:
            return self._failure(proto, e)
        rest.answer(proto, body)

    def _infer(self, scope, proto, version, label):
        """The App's inference (a coroutine to await) with v2's parse and answer."""
        return self._run(scope, proto, "infer", version, label, _parse, self._answer)

    def _answer(self, proto, outputs: dict, request: Request, servable) -> None:
        body, length = respond(request, outputs, self.name, servable.version)
        if length is None:
            return rest.answer(proto, body)
        proto.response_bytes(200, [("content-type", BINARY), (HEADER, str(length))], body)


def _parse(raw: bytes, scope, model) -> tuple[None, dict, Request]:
    request = parse(raw, scope.headers.get(HEADER), model)
    return None, request.feeds, request  # the model's own signature
