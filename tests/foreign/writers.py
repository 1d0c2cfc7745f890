"""Checkpoints written the way other TF1/TF2 projects write them — not with tfpersist's code.

Run as ``python writers.py OUT_ROOT KIND [KIND ...]``: each KIND is written to OUT_ROOT/KIND
in this process. TF1 behaviour (``disable_v2_behavior``: ref variables, v1 control flow) is
process-wide, so TF1 kinds and TF2 kinds go to separate processes (see ``TF1_KINDS``). Each
writer saves a checkpoint (or a SavedModel in ``saved/``) plus ``expected.npz``: the live
model's outputs for a fixed input, and ``spec.json``: the input and output node names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TF1_KINDS = ("seed_v1", "bn_cond_v1", "mlp_adam_v1", "rnn_while_v1")
TF2_KINDS = ("cnn_resource", "bn_cond_v2", "bn_updates_outside_v2", "savedmodel")


def main(root: Path, kinds: list[str]) -> None:
    import tensorflow as tf

    if any(k in TF1_KINDS for k in kinds):
        assert all(k in TF1_KINDS for k in kinds), "TF1 and TF2 kinds need separate processes"
        tf.compat.v1.disable_v2_behavior()
    for kind in kinds:
        write(tf, kind, root / kind)


def write(tf, kind: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if kind == "savedmodel":
        return savedmodel(tf, out)
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        spec = BUILDERS[kind](tf)
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            rng = np.random.default_rng(0)
            for _ in range(spec.get("train_steps", 0)):
                x = rng.normal(size=spec["shape"]).astype(np.float32)
                sess.run(spec["train_op"], {spec["x"]: x, **spec.get("train_feed", {})})
            x = rng.normal(size=spec["shape"]).astype(np.float32)
            outputs = {t.op.name: t for t in spec["outputs"]}
            values = sess.run(outputs, {spec["x"]: x})
            saver.save(sess, str(out / "model.ckpt"), global_step=spec.get("train_steps", 0))
    np.savez(out / "expected.npz", input=x, **values)
    (out / "spec.json").write_text(
        json.dumps({"input": spec["x"].op.name, "outputs": list(outputs)})
    )


def bn_cond_v1(tf):
    """Batch norm whose moving averages are assigned inside a tf.cond training branch."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 6], name="x")
    training = v1.placeholder_with_default(False, [], name="is_training")
    w = v1.get_variable("dense/w", [6, 4])
    h = tf.matmul(x, w)
    beta = v1.get_variable("bn/beta", [4], initializer=v1.zeros_initializer())
    gamma = v1.get_variable("bn/gamma", [4], initializer=v1.ones_initializer())
    mm = v1.get_variable("bn/moving_mean", [4], initializer=v1.zeros_initializer(), trainable=False)
    mv = v1.get_variable(
        "bn/moving_variance", [4], initializer=v1.ones_initializer(), trainable=False
    )

    def train_branch():
        mean, var = tf.nn.moments(h, [0])
        with tf.control_dependencies(
            [v1.assign(mm, 0.9 * mm + 0.1 * mean), v1.assign(mv, 0.9 * mv + 0.1 * var)]
        ):
            return tf.identity(mean), tf.identity(var)

    mean, var = tf.cond(training, train_branch, lambda: (tf.identity(mm), tf.identity(mv)))
    y = tf.nn.batch_normalization(h, mean, var, beta, gamma, 1e-3)
    logits = tf.identity(y, name="logits")
    loss = tf.reduce_mean(tf.square(logits))
    train_op = v1.train.AdamOptimizer(0.01).minimize(loss)
    return {
        "x": x,
        "shape": (8, 6),
        "outputs": [logits],
        "train_op": train_op,
        "train_steps": 5,
        "train_feed": {training: True},
    }


def bn_updates_outside_v2(tf):
    """Batch norm whose moving-average updates are built outside a (functional) tf.cond and
    attached as control dependencies inside its training branch: the If then waits for them
    (control inputs) on every call, the training flag off too. Freezing keeps the
    checkpoint's values and says which assignments it leaves out."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 6], name="x")
    training = v1.placeholder_with_default(False, [], name="is_training")
    h = tf.matmul(x, v1.get_variable("dense/w", [6, 4]))
    mm = v1.get_variable("bn/moving_mean", [4], initializer=v1.zeros_initializer(), trainable=False)
    mv = v1.get_variable(
        "bn/moving_variance", [4], initializer=v1.ones_initializer(), trainable=False
    )
    mean, var = tf.nn.moments(h, [0])
    updates = [
        mm.assign(0.9 * mm + 0.1 * mean, read_value=False),
        mv.assign(0.9 * mv + 0.1 * var, read_value=False),
    ]

    def train_branch():
        with tf.control_dependencies(updates):
            return tf.identity(mean), tf.identity(var)

    mean, var = tf.cond(training, train_branch, lambda: (mm.read_value(), mv.read_value()))
    logits = tf.identity(tf.nn.batch_normalization(h, mean, var, None, None, 1e-3), "logits")
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_mean(logits**2))
    return {
        "x": x,
        "shape": (8, 6),
        "outputs": [logits],
        "train_op": train_op,
        "train_steps": 3,
        "train_feed": {training: True},
    }


def mlp_adam_v1(tf):
    """Adam-trained MLP with dropout under a training flag, device pins, two outputs."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 5], name="features")
    labels = v1.placeholder(tf.int64, [None], name="labels")
    training = v1.placeholder_with_default(False, [], name="training")
    with tf.device("/cpu:0"):
        w1 = v1.get_variable("l1/w", [5, 16])
        b1 = v1.get_variable("l1/b", [16], initializer=v1.zeros_initializer())
    with tf.device("/device:CPU:0"):
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        h = tf.cond(training, lambda: tf.nn.dropout(h, rate=0.5), lambda: h)
        w2 = v1.get_variable("l2/w", [16, 3])
        logits = tf.matmul(h, w2, name="logits")
    probs = tf.nn.softmax(logits, name="probs")
    classes = tf.argmax(logits, 1, name="classes")
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    step = v1.train.get_or_create_global_step()
    train_op = v1.train.AdamOptimizer(0.01).minimize(loss, global_step=step)
    return {
        "x": x,
        "shape": (7, 5),
        "outputs": [probs, classes],
        "train_op": train_op,
        "train_steps": 3,
        "train_feed": {labels: np.array([0, 1, 2, 0, 1, 2, 0]), training: True},
    }


def rnn_while_v1(tf):
    """A tf.while_loop RNN over the time axis."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 4, 3], name="sequence")
    wx = v1.get_variable("rnn/wx", [3, 5])
    wh = v1.get_variable("rnn/wh", [5, 5])
    batch = tf.shape(x)[0]

    def body(t, h):
        return t + 1, tf.tanh(tf.matmul(x[:, t, :], wx) + tf.matmul(h, wh))

    _, h = tf.while_loop(lambda t, h: t < 4, body, [tf.constant(0), tf.zeros([batch, 5])])
    return {"x": x, "shape": (2, 4, 3), "outputs": [tf.identity(h, name="state")]}


def cnn_resource(tf):
    """A CNN with resource variables (TF2's default in graph mode), v2 control flow."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 6, 6, 1], name="image")
    k = v1.get_variable("conv/kernel", [3, 3, 1, 4], use_resource=True)
    h = tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME"))
    h = tf.reshape(tf.nn.max_pool2d(h, 2, 2, "SAME"), [-1, 36])
    w = v1.get_variable("out/w", [36, 2], use_resource=True)
    return {
        "x": x,
        "shape": (3, 6, 6, 1),
        "outputs": [tf.nn.softmax(tf.matmul(h, w), name="scores")],
    }


def seed_v1(tf):
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None], name="input_holder")
    y = tf.add(
        x * v1.get_variable("W1", initializer=5.0),
        v1.get_variable("B1", initializer=1.0),
        name="add",
    )
    return {"x": x, "shape": (3,), "outputs": [tf.greater(y, 50.0, name="predictions"), y]}


def savedmodel(tf, out: Path) -> None:
    """A TF2 tf.Module with a tf.function serving signature."""

    class Model(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
            self.b = tf.Variable(np.ones(3, np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            logits = tf.matmul(x, self.w) + self.b
            return {"scores": tf.nn.softmax(logits), "label": tf.argmax(logits, 1)}

    model = Model()
    tf.saved_model.save(model, str(out / "saved"), signatures={"serving_default": model.__call__})
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    values = {k: v.numpy() for k, v in model(x).items()}
    np.savez(out / "expected.npz", input=x, **values)
    (out / "spec.json").write_text(json.dumps({"input": "x", "outputs": sorted(values)}))


BUILDERS = {
    "bn_cond_v1": bn_cond_v1,
    "mlp_adam_v1": mlp_adam_v1,
    "rnn_while_v1": rnn_while_v1,
    "cnn_resource": cnn_resource,
    # The same batch norm written under TF2 behaviour: tf.cond becomes a functional If.
    "bn_cond_v2": bn_cond_v1,
    "bn_updates_outside_v2": bn_updates_outside_v2,
    "seed_v1": seed_v1,
}

if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
