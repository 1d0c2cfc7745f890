"""NumPy arrays ↔ TensorProto without importing TensorFlow, as ``tf.make_tensor_proto`` and
``tf.make_ndarray`` do it.

Freezing writes Const nodes from checkpoint values: the bytes must be those TensorFlow's own
``make_tensor_proto`` writes (a tensor of more than one element as ``tensor_content``, else
the typed ``*_val`` field), so that every path gives the same .pb. The types a model holds
(floats, integers, bool, complex, strings) are built here — tests/test_tensors.py holds
each to TensorFlow's; any other type (quantized, float8, int4) goes to TensorFlow itself.
"""

from __future__ import annotations

import numpy as np

from tfpersist.core.errors import TfpersistError
from tfpersist.tfapi import dtypes, protos

# tensor_util._TENSOR_CONTENT_TYPES, of the types handled here
_CONTENT = frozenset({"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32"})
_CONTENT |= {"int64", "uint8", "uint32", "uint64"}
# the repeated field each type's values go to (tensor_util's append functions)
_FIELDS = {
    "float16": "half_val",
    "bfloat16": "half_val",
    "float32": "float_val",
    "float64": "double_val",
    "int8": "int_val",
    "int16": "int_val",
    "int32": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
    "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
    "string": "string_val",
}


def _type_of(array: np.ndarray) -> dtypes.DType | None:
    if array.dtype.kind in "OSU":
        return dtypes.by_name("string")
    try:
        return dtypes.by_name(str(array.dtype))
    except TfpersistError:  # a NumPy type TensorFlow has no name for
        return None


def shape_proto(shape) -> object:
    """A TensorShapeProto of known dimensions."""
    proto = protos.TensorShapeProto()
    for size in shape:
        proto.dim.add(size=int(size))
    return proto


def uses_content(dtype: int, size: int) -> bool:
    """Whether ``make_tensor_proto`` writes a tensor of this type and element count as raw
    ``tensor_content`` bytes (else a typed ``*_val`` field)."""
    return dtypes.as_dtype(dtype).name in _CONTENT and size > 1


def make_tensor_proto(values, dtype: int | None = None):
    """``tf.make_tensor_proto(values, dtype=dtype)`` for an array (``dtype``: a DataType
    enum), the same message."""
    array = np.asarray(values)
    if dtype is not None:
        wanted = dtypes.as_dtype(dtype)
        if wanted.name != "string" and wanted.numpy is not None:
            array = array.astype(wanted.as_numpy())
    kind = _type_of(array)
    if (
        kind is None
        or kind.name not in _FIELDS
        or (dtype is not None and kind.enum != dtypes.base(dtype))
    ):
        return _tensorflow().make_tensor_proto(values, dtype=dtype)
    tensor = protos.TensorProto(dtype=kind.enum, tensor_shape=shape_proto(array.shape))
    if uses_content(kind.enum, array.size):
        tensor.tensor_content = array.tobytes()
        return tensor
    _fill(tensor, kind.name, array.ravel())
    return tensor


def as_proto_field(values):
    """TensorFlow's ``Tensor::AsProtoField`` (what TF Serving answers with): every value in
    its typed field (``float_val`` …), which clients read directly, never ``tensor_content``."""
    array = np.asarray(values)
    kind = _type_of(array)
    if kind is None or kind.name not in _FIELDS:
        return _tensorflow().make_tensor_proto(values)
    tensor = protos.TensorProto(dtype=kind.enum, tensor_shape=shape_proto(array.shape))
    _fill(tensor, kind.name, array.ravel())
    return tensor


def _fill(tensor, kind: str, flat: np.ndarray) -> None:
    """The typed field of ``tensor`` from a flat array of type ``kind`` (tensor_util's
    append functions)."""
    field = getattr(tensor, _FIELDS[kind])
    if kind == "string":
        field.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat.tolist())
    elif kind in ("float16", "bfloat16"):
        field.extend(flat.view(np.uint16).tolist())
    elif kind.startswith("complex"):
        field.extend(x for v in flat.tolist() for x in (v.real, v.imag))
    else:
        field.extend(flat.tolist())


def make_ndarray(tensor) -> np.ndarray:
    """``tf.make_ndarray(tensor)``: a Const's value (strings as an object array of bytes)."""
    kind = dtypes.as_dtype(tensor.dtype)
    if kind.name not in _FIELDS:
        return _tensorflow().make_ndarray(tensor)
    shape = [d.size for d in tensor.tensor_shape.dim]
    count = int(np.prod(shape, dtype=np.int64))
    if kind.name == "string":
        values = list(tensor.string_val)
        if count > len(values):
            values.extend([values[-1] if values else b""] * (count - len(values)))
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    element = kind.as_numpy()
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=element).copy().reshape(shape)
    field = getattr(tensor, _FIELDS[kind.name])
    if kind.name in ("float16", "bfloat16"):
        values = np.array(field, dtype=np.uint16).view(element)
    elif kind.name.startswith("complex"):
        pairs = np.array(field, dtype=element.type(0).real.dtype)
        values = (pairs[0::2] + 1j * pairs[1::2]).astype(element)
    else:
        values = np.array(field, dtype=element)
    if values.size == 0:
        return np.zeros(shape, element)
    if values.size != count:
        values = np.pad(values, (0, count - values.size), "edge")
    return values.reshape(shape)


def _tensorflow():
    from tfpersist.tfapi.tfcompat import import_tf

    return import_tf()
