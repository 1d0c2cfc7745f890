"""The TensorFlow models OpenCV's own importer tests build (opencv_extra
testdata/dnn/tensorflow/generate_tf_models.py and generate_tf2_models.py, run by
modules/dnn/test/test_tf_importer.cpp), rebuilt in tf.compat.v1 graph mode with constants
in place of variables. Each builder makes its graph in the default graph and returns
(input node, output node, input shape with None for the batch).

Paraphrased from the generator (seeded numpy in place of tf.random_normal; TF2 writes
AddV2 where TF1 wrote Add); the tolerances are OpenCV's normAssert defaults (mean abs
1e-5, max abs 1e-4).
"""

from __future__ import annotations

import numpy as np

L1, LINF = 1e-5, 1e-4


def _glorot(rng, shape):  # tf.layers' default kernel initialiser
    if len(shape) == 4:
        rf = shape[0] * shape[1]
        fan_in, fan_out = shape[2] * rf, shape[3] * rf
    else:
        fan_in, fan_out = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def _normal(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _flatten(tf, x):  # TF1 contrib flatten: Shape → StridedSlice → Pack → Reshape
    return tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))


def _conv(tf, x, kernel, bias, padding="VALID"):
    return tf.nn.bias_add(tf.nn.conv2d(x, kernel, [1, 1, 1, 1], padding), bias)


def matmul(tf, v1, rng):
    x = v1.placeholder(tf.float32, [None, 3], "input")
    out = tf.add(tf.matmul(x, _normal(rng, [3, 4])), _normal(rng, [4]), name="output")
    return "input", out.op.name, [2, 3]


def clip_by_value(tf, v1, rng):
    x = v1.placeholder(tf.float32, [None, 3], "input")
    return "input", tf.clip_by_value(x, 0.0, 1.0).op.name, [2, 3]


def reshape_reduce(tf, v1, rng):
    x = v1.placeholder(tf.float32, [1, 2, 3], "input")
    out = tf.reshape(tf.add(x, _normal(rng, [1, 2, 3])), [-1, 3], name="output")
    return "input", out.op.name, [1, 2, 3]


def flatten(tf, v1, rng):
    x = v1.placeholder(tf.float32, [None, 4, 5], "input")
    return "input", _flatten(tf, x).op.name, [2, 4, 5]


def reshape_as_shape(tf, v1, rng):
    x = v1.placeholder(tf.float32, [None, 2, 3], "input")
    flat = tf.reshape(x, [-1, 6], name="planar")
    return "input", tf.reshape(flat, tf.shape(x), name="reshape").op.name, [2, 2, 3]


def bias_add_1(tf, v1, rng):
    x = v1.placeholder(tf.float32, [1, 2, 3, 4], "input")
    return "input", (4.0 + (x - 3.0)).op.name, [1, 2, 3, 4]


def concat_axis_1(tf, v1, rng):
    x = v1.placeholder(tf.float32, [1, 2, 3, 4], "input")
    zeros = np.zeros([4], np.float32)
    f1 = _flatten(tf, _conv(tf, x, _glorot(rng, [1, 1, 4, 4]), zeros))
    f2 = _flatten(tf, _conv(tf, x, _glorot(rng, [1, 1, 4, 4]), zeros))
    out = tf.nn.bias_add(tf.concat([f1, f2], axis=1), np.zeros([48], np.float32))
    return "input", out.op.name, [1, 2, 3, 4]


def single_conv(tf, v1, rng):
    x = v1.placeholder(tf.float32, [1, 6, 5, 3], "input")
    out = tf.nn.relu(_conv(tf, x, _glorot(rng, [1, 1, 3, 3]), _normal(rng, [3])))
    return "input", out.op.name, [1, 6, 5, 3]


def max_pool_odd_same(tf, v1, rng):
    x = v1.placeholder(tf.float32, [1, 7, 7, 2], "input")
    conv = _conv(tf, x, _glorot(rng, [3, 3, 2, 3]), np.zeros([3], np.float32), "SAME")
    out = tf.nn.max_pool2d(tf.nn.relu6(conv * 10), ksize=2, strides=2, padding="SAME")
    return "input", out.op.name, [1, 7, 7, 2]


def nhwc_reshape_matmul(tf, v1, rng):
    x = v1.placeholder(tf.float32, [1, 2, 3, 4], "input")
    conv = tf.nn.relu(_conv(tf, x, _glorot(rng, [1, 1, 4, 5]), _normal(rng, [5])))
    flat = tf.reshape(conv, [1, -1], "reshaped")
    out = tf.add(tf.matmul(flat, _normal(rng, [30, 10])), _normal(rng, [10]), name="output")
    return "input", out.op.name, [1, 2, 3, 4]


def eltwise_add_mul(tf, v1, rng):
    x = v1.placeholder(tf.float32, [3, 2, 3, 4], "input")
    bias = rng.uniform(0, 1, [4]).astype(np.float32)
    conv = tf.tanh(_conv(tf, x, _glorot(rng, [1, 1, 4, 4]), bias))
    conv2 = tf.sigmoid(tf.nn.conv2d(x, _glorot(rng, [1, 1, 4, 4]), [1, 1, 1, 1], "VALID"))
    return "input", ((x * 0.31 + 2 * conv) * conv2).op.name, [3, 2, 3, 4]


def tf2_dense(tf, v1, rng):
    x = v1.placeholder(tf.float32, [None, 1, 2, 3], "flatten_input")
    mm = tf.matmul(tf.reshape(x, [-1, 6]), _glorot(rng, [6, 3]))
    out = tf.nn.relu(tf.nn.bias_add(mm, np.zeros([3], np.float32)))
    return "flatten_input", out.op.name, [2, 1, 2, 3]


def argmax(tf, v1, rng):
    x = v1.placeholder(tf.float32, [2, 3, 4], "x")
    return "x", tf.math.argmax(x, axis=-1).op.name, [2, 3, 4]


def keras_softmax(tf, v1, rng):
    x = v1.placeholder(tf.float32, [None, 2, 3, 4], "keras_softmax_input")
    with tf.name_scope("keras_softmax"):
        e = tf.exp(x - tf.reduce_max(x, axis=-1, keepdims=True))
        out = tf.divide(e, tf.reduce_sum(e, axis=-1, keepdims=True), name="truediv")
    return "keras_softmax_input", out.op.name, [2, 2, 3, 4]


CASES = {
    f.__name__: f
    for f in (
        matmul,
        clip_by_value,
        reshape_reduce,
        flatten,
        reshape_as_shape,
        bias_add_1,
        concat_axis_1,
        single_conv,
        max_pool_odd_same,
        nhwc_reshape_matmul,
        eltwise_add_mul,
        tf2_dense,
        argmax,
        keras_softmax,
    )
}
# OpenCV 5.0.0 computes these differently from TensorFlow with or without the rewrite
# (measured): the softmax's max and sum run over the NCHW width axis, not the channels.
OPENCV_WRONG = {"keras_softmax": "OpenCV reduces over the NCHW width axis, not the channels"}
