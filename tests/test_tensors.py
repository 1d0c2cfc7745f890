"""tensors.py against TensorFlow's own make_tensor_proto and make_ndarray: the same message
for every type a model holds, every size class (scalar, one element, several, none)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from tfpersist.tfapi import tensors

SHAPES = [(), (1,), (3,), (2, 3), (0, 2)]
TYPES = [
    np.float16,
    ml_dtypes.bfloat16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]


def arrays():
    rng = np.random.default_rng(7)
    for kind in TYPES:
        for shape in SHAPES:
            raw = rng.standard_normal(shape) * 100
            if np.dtype(kind).kind == "c":
                raw = raw + 1j * rng.standard_normal(shape)
            yield np.asarray(raw).astype(kind)
    for shape in SHAPES:
        words = [b"", b"a\0", "é".encode(), b"xyz", b"\xff", b"q"]
        yield np.array(words[: int(np.prod(shape))], dtype=object).reshape(shape)
    yield np.array(b"trailing\0\0", dtype=object)


@pytest.fixture
def no_fallback(monkeypatch):
    """tensors.py builds these types itself: handing one to TensorFlow fails the test."""
    monkeypatch.setattr(tensors, "_tensorflow", lambda: pytest.fail("fell back to TensorFlow"))


@pytest.mark.parametrize("array", list(arrays()), ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_tensor_protos_are_tensorflows(tf, array, no_fallback):
    theirs = tf.make_tensor_proto(array)
    ours = tensors.make_tensor_proto(array)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )
    back, tf_back = tensors.make_ndarray(theirs), tf.make_ndarray(theirs)
    assert back.dtype == tf_back.dtype and back.shape == tf_back.shape
    if array.dtype == object:
        assert back.tolist() == tf_back.tolist() == array.tolist()
    else:
        assert back.tobytes() == tf_back.tobytes()


@pytest.mark.parametrize("enum", [1, 3, 9, 10, 7])
def test_a_requested_type_converts_as_tensorflow_converts(tf, enum, no_fallback):
    values = np.array([1, 0, 2]) if enum != 7 else np.array([b"x", b"y"])
    ours = tensors.make_tensor_proto(values, dtype=enum)
    assert ours == tf.make_tensor_proto(values, dtype=enum)


def test_short_value_lists_repeat_their_last_element_as_tensorflow_reads_them(tf, no_fallback):
    proto = tf.make_tensor_proto(np.float32(2.5))
    proto.tensor_shape.CopyFrom(tensors.shape_proto([2, 2]))  # a Const TF folded: one value
    assert tensors.make_ndarray(proto).tolist() == tf.make_ndarray(proto).tolist()


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint8"])
def test_as_proto_field_writes_every_value_in_its_typed_field(tf, dtype, no_fallback):
    """TF Serving's answers (Tensor::AsProtoField): no tensor_content, and TensorFlow reads
    the same array back."""
    array = np.arange(6).reshape(2, 3).astype(dtype)
    proto = tensors.as_proto_field(array)
    assert not proto.tensor_content and proto.dtype == tf.as_dtype(dtype).as_datatype_enum
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
