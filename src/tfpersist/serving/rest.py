"""TF Serving's REST API formats: predict responses, model status, metadata (requests:
jsontensor.py, examples.py).

``{"instances": [...]}`` (row format → ``{"predictions": [...]}``, every output with the same
number of rows; a 0-d one is TF Serving's 400) or ``{"inputs": ...}`` (columnar →
``{"outputs": ...}``, a 0-d output a bare value), as TF Serving's REST API documents them; a
string output named ``…_bytes`` is written ``{"b64": …}``. Bodies are read
with orjson (a 64-float body: 4.5 µs against the standard library's 35 µs); a body holding
TF Serving's ``NaN``/``Infinity`` tokens, which orjson refuses, is read by the standard
library. Answers are written by orjson straight from the arrays, or by the standard library
when an output holds a non-finite number (written ``NaN``, as TF Serving does) or strings.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import orjson

SIGNATURE = "serving_default"
JSON = [("content-type", "application/json")]


class BadRequest(Exception):
    """A request the model cannot take (HTTP 400, gRPC INVALID_ARGUMENT)."""


class FailedPrecondition(BadRequest):
    """TF Serving's FAILED_PRECONDITION (HTTP 400): gRPC Predict's unknown signature."""


class Unimplemented(BadRequest):
    """TF Serving's UNIMPLEMENTED (HTTP 501): MultiInference's unsupported method."""


def decode(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)  # NaN, Infinity, -Infinity: TF Serving takes them
        except RecursionError:  # nested past the standard library's depth: bad JSON too
            raise ValueError("nested too deeply") from None


def _check_rows(outputs: dict) -> None:
    """TF Serving's row format: every output has rows, the same number of them."""
    batch = None
    for name, value in outputs.items():
        shape = np.shape(value)
        if not shape:
            raise BadRequest(f"Tensor name: {name} has no shape information ")
        if batch is not None and shape[0] != batch:
            raise BadRequest(
                f"Tensor name: {name} has inconsistent batch size: {shape[0]} expecting: {batch}"
            )
        batch = shape[0]


def _b64(value):
    if isinstance(value, list):
        return [_b64(v) for v in value]
    return {"b64": base64.b64encode(value).decode()}


def _plain(name: str, value):
    """An output as lists; a string output named ``…_bytes`` as ``{"b64": …}`` each."""
    from tfpersist.running.prediction import jsonable

    a = np.asarray(value)
    if a.dtype.kind in "OSa" and name.endswith("_bytes"):
        return _b64(a.tolist())
    return jsonable(a.tolist())


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
    if kind == "row":
        _check_rows(outputs)
    return _shaped(outputs, kind, {n: _plain(n, v) for n, v in outputs.items()})


def encode(outputs: dict[str, np.ndarray], kind: str) -> bytes:
    """``respond`` as JSON bytes: orjson from the arrays of numbers, the standard library
    otherwise — strings, bytes (``{"b64": …}``), and non-finite numbers, which orjson would
    write as ``null`` and TF Serving writes ``NaN``/``Infinity``."""
    values, rows = {}, None
    for name, value in outputs.items():
        a = value if isinstance(value, np.ndarray) else np.asarray(value)
        if a.dtype.kind not in "biuf" or not a.ndim:  # a 0-d output: a bare value or a 400
            return json.dumps(respond(outputs, kind)).encode()
        if kind == "row" and rows != a.shape[0]:
            if rows is not None:
                _check_rows(outputs)  # raises: not one number of rows
            rows = a.shape[0]
        values[name] = orjsonable(a)
    text = orjson.dumps(_shaped(values, kind, values), option=orjson.OPT_SERIALIZE_NUMPY)
    if b"null" in text:  # a NaN or an infinity: numbers alone never write null
        return json.dumps(respond(outputs, kind)).encode()
    return text


def error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def orjsonable(a: np.ndarray) -> np.ndarray:
    """``a`` as orjson's OPT_SERIALIZE_NUMPY writes it: C-contiguous, and the same numbers in a
    dtype it takes (int64 for its alias longlong, float32 for float16)."""
    char = a.dtype.char
    if char in "qQ":  # the same bytes
        a = a.view(np.int64 if char == "q" else np.uint64)
    elif char == "e":
        a = a.astype(np.float32)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def answer(proto, body: bytes, status: int = 200) -> None:
    """A JSON ``body`` written on an RSGI ``proto``."""
    proto.response_bytes(status, JSON, body)


def not_allowed(proto, method: str, path: str, allowed: str) -> None:
    body = error(f"{method} {path}: this path takes {allowed}")
    proto.response_bytes(405, [*JSON, ("allow", allowed)], body)


def target(version: str | None, label: str | None = None) -> tuple[int | None, str | None]:
    """The servable a request names, for ``/v1``, ``/v2`` and v2's gRPC: (version, None) when
    ``version`` is a number (decimal digits, within TF Serving's int64: past it 400 "Failed to
    convert version"), else (None, the label): ``label``, or ``version`` itself when it is not
    a number (v2 names both in one place). URL callers pass them %-decoded."""
    if version is not None and version.isdecimal():
        if len(version) > 19 or int(version) >= 2**63:
            raise BadRequest(f"Failed to convert version: {version} to numeric.")
        return int(version), None
    return None, version or label or None


def metadata(model, name: str, version: int | str = 1) -> dict:
    """``GET …/metadata``: the whole signature_def map, as TF Serving writes it (proto3 JSON,
    field names as in the proto, fields at their defaults written)."""
    from google.protobuf import json_format

    from tfpersist.serving import signatures

    found = {
        key: json_format.MessageToDict(
            sig, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for key, sig in signatures.defs(model).items()
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": found}},
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
