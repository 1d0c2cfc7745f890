"""TensorFlow's data types by their ``DataType`` enum, without TensorFlow: the name
``tf.dtypes.as_dtype(n).name`` gives, the size in bytes (``.size``), whether it is floating
point and the NumPy dtype its bytes read as (tests/test_protos.py holds every entry to
TensorFlow's own)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfpersist.core.errors import TfpersistError

REF = 100  # DT_FLOAT_REF = 101: a reference to a DT_FLOAT variable


@dataclass(frozen=True)
class DType:
    enum: int
    name: str
    size: int
    is_floating: bool
    numpy: str | None  # the NumPy (or ml_dtypes) name; None: no fixed-size element

    def as_numpy(self) -> np.dtype:
        if self.numpy is None:
            raise TfpersistError(f"a {self.name} tensor has no fixed-size NumPy element")
        if self.numpy in _ML_DTYPES:
            import ml_dtypes  # installed with TensorFlow; no TensorFlow import

            return np.dtype(getattr(ml_dtypes, self.numpy))
        return np.dtype(self.numpy)


_ML_DTYPES = {
    "bfloat16",
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2fnuz",
    "float4_e2m1fn",
    "int4",
    "uint4",
    "int2",
    "uint2",
}
# enum: (name, size, floating, numpy)
_TABLE = {
    1: ("float32", 4, True, "float32"),
    2: ("float64", 8, True, "float64"),
    3: ("int32", 4, False, "int32"),
    4: ("uint8", 1, False, "uint8"),
    5: ("int16", 2, False, "int16"),
    6: ("int8", 1, False, "int8"),
    7: ("string", 0, False, None),
    8: ("complex64", 8, False, "complex64"),
    9: ("int64", 8, False, "int64"),
    10: ("bool", 1, False, "bool"),
    11: ("qint8", 1, False, "int8"),
    12: ("quint8", 1, False, "uint8"),
    13: ("qint32", 4, False, "int32"),
    14: ("bfloat16", 2, True, "bfloat16"),
    15: ("qint16", 2, False, "int16"),
    16: ("quint16", 2, False, "uint16"),
    17: ("uint16", 2, False, "uint16"),
    18: ("complex128", 16, False, "complex128"),
    19: ("float16", 2, True, "float16"),
    20: ("resource", 0, False, None),
    21: ("variant", 0, False, None),
    22: ("uint32", 4, False, "uint32"),
    23: ("uint64", 8, False, "uint64"),
    24: ("float8_e5m2", 1, True, "float8_e5m2"),
    25: ("float8_e4m3fn", 1, True, "float8_e4m3fn"),
    26: ("float8_e4m3fnuz", 1, True, "float8_e4m3fnuz"),
    27: ("float8_e4m3b11fnuz", 1, True, "float8_e4m3b11fnuz"),
    28: ("float8_e5m2fnuz", 1, True, "float8_e5m2fnuz"),
    29: ("int4", 1, False, "int4"),
    30: ("uint4", 1, False, "uint4"),
    31: ("int2", 1, False, "int2"),
    32: ("uint2", 1, False, "uint2"),
    33: ("float4_e2m1fn", 1, True, "float4_e2m1fn"),
}


def as_dtype(enum: int) -> DType:
    """The type of a ``DataType`` value (``_ref`` types too), or a one-line error."""
    base = enum - REF if enum > REF else enum
    if base not in _TABLE:
        raise TfpersistError(f"unknown TensorFlow data type {enum}")
    name, size, floating, numpy = _TABLE[base]
    return DType(enum, f"{name}_ref" if enum > REF else name, size, floating, numpy)


def base(enum: int) -> int:
    """The type a ``_ref`` type refers to (``float32_ref`` → ``float32``); others as they are."""
    return enum - REF if enum > REF else enum


def by_name(name: str) -> DType:
    """The type of ``float32``, ``int64``, …"""
    for enum, entry in _TABLE.items():
        if entry[0] == name:
            return as_dtype(enum)
    raise TfpersistError(f"unknown TensorFlow data type '{name}'")
