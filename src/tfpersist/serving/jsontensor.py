"""TF Serving's JSON tensors (its util/json_tensor.cc): a predict request's ``instances`` or
``inputs`` to arrays, with its type, range and shape checks and its messages.

The signature's TensorInfo dtype decides: floats take any JSON number (not ``true``,
``null`` or ``"1"``), integers only integer tokens in range (not ``1.5`` nor ``1.0``), bools
only ``true``/``false``, strings a JSON string or ``{"b64": "…"}`` (decoded). A request of
numbers pays nothing for the checks: numpy converts the lists as before, and the values are
walked one by one (Python) only where that conversion failed or could have coerced — the
body holds ``true``, ``false``, ``null`` or more quotes than its keys account for, or numpy
read an integer input as something else. The walk is TF Serving's and gives its message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json

import numpy as np

from tfpersist.serving import signatures
from tfpersist.serving.rest import BadRequest

MAX_RANK = 64  # numpy's (TensorFlow's TensorShape takes up to 254)
TF_NAMES = {  # numpy → TensorFlow's DataTypeString, as TF Serving's messages name them
    "float32": "float",
    "float64": "double",
    "float16": "half",
    "object": "string",
}
INT_RANGES = {
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int16": (-(2**31), 2**31 - 1),  # TF Serving: IsInt(), no narrower check
    "int8": (-(2**31), 2**31 - 1),
    "uint8": (-(2**31), 2**31 - 1),
    "uint16": (0, 2**32 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


def debug(value) -> str:
    """A JSON value as TF Serving's messages show it (single line, at most 256 bytes)."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = str(value)
    return text[:256]


def json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def format_error(doc, what: str) -> BadRequest:
    return BadRequest(f"JSON Value: {debug(doc)} {what}")


def is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def b64_bytes(value) -> bytes:
    if not is_b64(value):
        raise BadRequest(f"JSON Value: {debug(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Unable to base64 decode") from None


@functools.cache
def _numpy(dtype: str) -> np.dtype:
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _tf_name(dtype: str) -> str:
    return TF_NAMES.get(dtype, dtype)


def _type_error(value, dtype: str) -> BadRequest:
    return BadRequest(
        f"JSON Value: {debug(value)} Type: {json_type(value)} is not of expected type: "
        f"{_tf_name(dtype)}"
    )


def _converter(dtype: str):
    """One JSON value → the Python value an array of ``dtype`` holds, or TF's TypeError."""
    if dtype in ("string", "object"):

        def string(v):
            if isinstance(v, str):
                return v.encode()
            if isinstance(v, dict):
                return b64_bytes(v)
            raise _type_error(v, dtype)

        return string
    if dtype == "bool":

        def boolean(v):
            if type(v) is not bool:
                raise _type_error(v, dtype)
            return v

        return boolean
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]

        def integer(v):
            if type(v) is not int or not low <= v <= high:
                raise _type_error(v, dtype)
            return v

        return integer

    def number(v):  # float, double, and what TF Serving lacks (half, bfloat16): numbers
        if type(v) is float:
            return v
        if type(v) is not int:
            raise _type_error(v, dtype)
        try:
            return float(v)
        except OverflowError:  # past a double: rapidjson reads it as ±inf
            return float("inf") if v > 0 else float("-inf")

    return number


def _shape(value) -> list[int]:
    shape, v = [], value
    while isinstance(v, list):
        shape.append(len(v))
        if len(shape) > MAX_RANK:
            raise BadRequest(f"too many dimensions: must be <= {MAX_RANK}")
        if not v:
            break
        v = v[0]
    return shape


def walk(value, dtype: str) -> np.ndarray:
    """TF Serving's FillTensorProto: the shape from the first elements, then every value
    checked against its level, its list's size and the dtype."""
    shape = _shape(value)
    rank, flat, convert = len(shape), [], _converter(dtype)

    def fill(v, level: int) -> None:
        if not isinstance(v, list):
            if level != rank:
                raise BadRequest(
                    f"JSON Value: {debug(v)} found at incorrect level: {level + 1} in the JSON "
                    f"DOM. Expected at level: {rank}"
                )
            flat.append(convert(v))
            return
        if level >= rank:
            raise BadRequest(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(v) != shape[level]:
            raise BadRequest(
                f"Encountered list at unexpected size: {len(v)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for x in v:
            fill(x, level + 1)

    fill(value, 0)
    if dtype in ("string", "object"):
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    target = _numpy(dtype)
    if target.kind in "iu" and dtype != "uint64":  # int8/uint8 wrap as TF's int_val does
        return np.array(flat, dtype=np.int64).astype(target).reshape(shape)
    return np.array(flat, dtype=target).reshape(shape)


def fast(value, dtype: str, suspicious: bool) -> np.ndarray | None:
    """numpy's conversion where it cannot have coerced anything; None: walk instead."""
    if dtype in ("string", "object"):
        return None
    target = _numpy(dtype)
    try:
        if target.kind == "b":
            a = np.asarray(value)
            return a if a.dtype.kind == "b" else None
        if suspicious:
            return None
        if target.kind in "iu":
            a = np.asarray(value)
            if a.dtype.kind not in "iu":
                return None
            low, high = INT_RANGES.get(dtype, (None, None))
            if a.size and low is not None and (a.min() < low or a.max() > high):
                return None
            return a.astype(target, copy=False)
        return np.asarray(value, dtype=target)
    except (ValueError, TypeError, OverflowError):
        return None


# Bytes a body of numbers holds only in its keys and objects: quotes, and bytes past "e" —
# letters f to z (every JSON literal has some: t r u, f l s, n u l; numbers none: digits
# . - + e E), braces (two an object), non-ASCII (UTF-8, in strings only).
_ODD = bytes([34, *range(102, 256)])
_PLAIN = bytes(b for b in range(256) if b not in _ODD)


def _odd(data: bytes) -> int:
    if len(data) < 8192:
        return len(data.translate(None, _PLAIN))
    a = np.frombuffer(data, np.uint8)  # ~0.05 ns a byte
    return int(np.count_nonzero(a > 101)) + int(np.count_nonzero(a == 34))


@functools.lru_cache(maxsize=1024)
def _object(keys: tuple[str, ...]) -> int:
    """An object's braces and its keys' quotes and letters."""
    return 2 + sum(_odd(f'"{k}"'.encode()) for k in keys)


def _keys(body: dict) -> int:
    """The odd bytes a body of numbers holds: its objects' braces and keys, and
    signature_name's value."""
    count = _object(tuple(body))
    name = body.get("signature_name")
    if type(name) is str:
        count += _object((name,)) - 2
    given = body.get("inputs")
    if type(given) is dict:
        count += _object(tuple(given))
    rows = body.get("instances")
    if type(rows) is list and rows and type(rows[0]) is dict:
        for row in rows:
            if type(row) is dict:
                count += _object(tuple(row))
    return count


def suspicious(raw: bytes | None, body: dict) -> bool:
    """Whether numpy could have coerced a value: the body holds a literal (``true``,
    ``false``, ``null``) or a string value — more odd bytes than its keys account for (an
    escape anywhere: walk). A count over the bytes, no walk of the values: ~0.3 µs for one
    row of 64 floats, ~75 µs for 1,000 (numpy's conversion of them: ~1 ms)."""
    if raw is None or b"\\" in raw:
        return True
    return _odd(raw) != _keys(body)


def _specs(signature) -> dict:
    """{input name: Tensor}, required and optional, made once per signature."""
    try:
        return signature.json_specs
    except AttributeError:
        specs = {t.name: t for t in [*signature.inputs, *signature.optional_inputs]}
        with contextlib.suppress(AttributeError):
            signature.json_specs = specs
        return specs


def signature_name(body) -> str:
    """A request body's ``signature_name`` ("" when absent), as TF Serving checks it."""
    if not isinstance(body, dict):
        raise format_error(body, "Is not object")
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise format_error(
            body, "not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def parse(body, raw: bytes | None, model) -> tuple[str, dict[str, np.ndarray], str]:
    """(signature key, feeds by input name, "row" or "columnar") of a predict request."""
    name = signature_name(body)
    key = name or signatures.DEFAULT
    signature = signatures.table(model).get(key)
    if signature is None:
        raise BadRequest(f'Serving signature name: "{key}" not found in signature def')
    if isinstance(signature, signatures.Broken):
        signature.run({})  # raises why it cannot run here
    required, specs = signature.inputs, _specs(signature)
    if not specs:
        raise BadRequest(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    odd = None if raw is None else suspicious(raw, body)
    if "instances" in body:
        if "inputs" in body:
            raise format_error(
                body,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
                "to exist ",
            )
        rows = body["instances"]
        if not isinstance(rows, list):
            raise format_error(body, "Expecting 'instances' to be an list/array")
        if not rows:
            raise format_error(body, "No values in 'instances' array")
        return key, _rows(rows, required, specs, odd is not False), "row"
    if "inputs" in body:
        return key, _columns(body["inputs"], required, specs, odd is not False), "columnar"
    raise BadRequest("Missing 'inputs' or 'instances' key")


def _rows(rows: list, required, specs: dict, odd: bool) -> dict[str, np.ndarray]:
    first = rows[0]
    if not isinstance(first, dict) and len(required) > 1:
        raise BadRequest(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    if not isinstance(first, dict) or is_b64(first):
        only = (required or list(specs.values()))[0]
        array = fast(rows, only.dtype, odd)
        if array is None:
            array = _row_walk(rows, only, None)
        return {only.name: array}
    names = {t.name for t in required}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or is_b64(row):
            raise BadRequest(f"Expecting object but got list at item {i} of input list")
        for k in row:
            if k not in specs:
                raise BadRequest(
                    f"Failed to process element: {i} key: {k} of 'instances' list. Error: "
                    f"INVALID_ARGUMENT: JSON object: does not have named input: {k}"
                )
        if row.keys() != first.keys() or not names <= row.keys():
            want = ",".join(sorted(names | first.keys()))
            raise BadRequest(
                f"Failed to process element: {i} of 'instances' list. JSON object: "
                f"{debug(row)} keys must be equal to: {want}"
            )
    feeds = {}
    for k in first:
        column = [row[k] for row in rows]
        array = fast(column, specs[k].dtype, odd)
        feeds[k] = array if array is not None else _row_walk(column, specs[k], k)
    return feeds


def _row_walk(items: list, spec, key: str | None) -> np.ndarray:
    """The instances one by one, as TF Serving reads them: each its own tensor, all of one
    size and shape, stacked."""
    where = "" if key is None else f" key: {key}"
    arrays, size, shape = [], None, None
    for i, item in enumerate(items):
        try:
            if key is None and isinstance(item, dict) and not is_b64(item):
                raise BadRequest(f"Expecting value/list but got object at item {i} of input list")
            array = walk(item, spec.dtype)
            if size is None:
                size, shape = array.size, array.shape
            elif array.size != size:
                raise BadRequest(f"Expecting tensor size: {size} but got: {array.size}")
            elif array.shape != shape:
                raise BadRequest(f"Expecting shape {_dims(shape)} but got: {_dims(array.shape)}")
        except BadRequest as e:
            if str(e).startswith("Expecting value/list"):
                raise
            raise BadRequest(
                f"Failed to process element: {i}{where} of 'instances' list. Error: "
                f"INVALID_ARGUMENT: {e}"
            ) from None
        arrays.append(array)
    return np.stack(arrays)


def _dims(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _columns(given, required, specs: dict, odd: bool) -> dict[str, np.ndarray]:
    if not isinstance(given, dict) or is_b64(given):
        if len(required) > 1:
            raise BadRequest(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        columns = {(required or list(specs.values()))[0].name: given}
    else:
        for t in required:
            if t.name not in given:
                raise BadRequest(f"Missing named input: {t.name} in 'inputs' object.")
        columns = {k: v for k, v in given.items() if k in specs}  # others: ignored, as TF's
    feeds = {}
    for k, value in columns.items():
        array = fast(value, specs[k].dtype, odd)
        feeds[k] = array if array is not None else walk(value, specs[k].dtype)
    return feeds
