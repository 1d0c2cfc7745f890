"""TF Serving's REST API formats: predict requests and responses, model status, metadata.

``{"instances": [...]}`` (row format → ``{"predictions": [...]}``) or ``{"inputs": ...}``
(columnar → ``{"outputs": ...}``), as TF Serving's REST API documents them. Bodies are read
with orjson (a 64-float body: 4.5 µs against the standard library's 35 µs); a body holding
TF Serving's ``NaN``/``Infinity`` tokens, which orjson refuses, is read by the standard
library. Answers are written by orjson straight from the arrays, or by the standard library
when an output holds a non-finite number (written ``NaN``, as TF Serving does) or strings.
"""

from __future__ import annotations

import json

import numpy as np
import orjson

SIGNATURE = "serving_default"
DTYPES = {  # numpy → TF Serving's DataType names (metadata)
    "float16": "DT_HALF",
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "bool": "DT_BOOL",
    "string": "DT_STRING",
    "object": "DT_STRING",
}


class BadRequest(Exception):
    """A request the model cannot take (HTTP 400, gRPC INVALID_ARGUMENT)."""


def decode(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # NaN, Infinity, -Infinity: TF Serving takes them


def _array(value, tensor, what: str) -> np.ndarray:
    dtype = object if tensor.dtype in ("string", "object") else tensor.dtype
    try:
        if dtype is object:
            return np.array(value, dtype=object)
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"{what}: not a {tensor.dtype} tensor ({e})") from None


def parse(body, model, signature: str | None = None) -> tuple[dict[str, np.ndarray], str]:
    """The feeds of a predict request and its format ("row" or "columnar")."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object with 'instances' or 'inputs'")
    signature = body.get("signature_name", SIGNATURE) if signature is None else signature
    if signature not in (SIGNATURE, ""):
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


def _shaped(outputs: dict[str, np.ndarray], kind: str, values: dict) -> dict:
    if kind == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{n: v[i] for n, v in values.items()} for i in range(count)]}


def respond(outputs: dict[str, np.ndarray], kind: str) -> dict:
    """TF Serving's response as plain lists: row format → per-example predictions (a value
    when the model has one output, else an object per example); columnar → outputs."""
    from tfpersist.running.prediction import jsonable

    values = {n: jsonable(np.asarray(v).tolist()) for n, v in outputs.items()}
    return _shaped(outputs, kind, values)


def encode(outputs: dict[str, np.ndarray], kind: str) -> bytes:
    """``respond`` as JSON bytes: orjson from the arrays of numbers, the standard library
    otherwise — strings, bytes (``{"b64": …}``), and non-finite numbers, which orjson would
    write as ``null`` and TF Serving writes ``NaN``/``Infinity``."""
    values = {}
    for name, value in outputs.items():
        a = value if isinstance(value, np.ndarray) else np.asarray(value)
        if a.dtype.kind not in "biuf":
            return json.dumps(respond(outputs, kind)).encode()
        char = a.dtype.char
        if char in "qQ":  # orjson writes int64, not its alias longlong: the same bytes
            a = a.view(np.int64 if char == "q" else np.uint64)
        elif char == "e":  # nor float16
            a = a.astype(np.float32)
        values[name] = a if a.flags.c_contiguous else np.ascontiguousarray(a)
    text = orjson.dumps(_shaped(values, kind, values), option=orjson.OPT_SERIALIZE_NUMPY)
    if b"null" in text:  # a NaN or an infinity: numbers alone never write null
        return json.dumps(respond(outputs, kind)).encode()
    return text


def error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def tensor_metadata(t) -> dict:
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in (t.shape or [])]
    shape = {"dim": dims, "unknown_rank": t.shape is None}
    return {"dtype": DTYPES.get(t.dtype, t.dtype), "tensor_shape": shape, "name": t.name}


def metadata(model, name: str, version: int | str = 1) -> dict:
    signature = {
        "inputs": {t.name: tensor_metadata(t) for t in [*model.inputs, *model.optional_inputs]},
        "outputs": {t.name: tensor_metadata(t) for t in model.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }


def status(servables) -> dict:
    """``GET /v1/models/NAME``: each version's state (AVAILABLE only once loaded and warmed)."""
    return {
        "model_version_status": [
            {
                "version": str(s.version),
                "state": s.state,
                "status": {
                    "error_code": "UNKNOWN" if s.error else "OK",
                    "error_message": s.error,
                },
            }
            for s in servables
        ]
    }
