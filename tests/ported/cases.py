"""Models shaped like those TensorFlow's own freezing tests build, written to disk to freeze.

Run as ``python cases.py OUT_ROOT MODE [CASE ...]``. MODE ``tf1`` calls
``disable_v2_behavior`` (ref variables, v1 control flow); ``tf2`` keeps TF2 behaviour (resource
variables, functional If/While/Case, SavedModels from ``tf.saved_model.save``). TF1 behaviour
is process-wide, so each mode runs in its own process. Every case writes OUT_ROOT/CASE/:

- the checkpoint (``Saver.save``) or a SavedModel in ``saved/``;
- ``expected.npz``: the live model's outputs for fixed inputs, computed in the writing session
  (before saving, checked again after), keyed by output name; the inputs as ``input:NAME``;
- ``spec.json``: ``source`` (relative path to freeze), ``inputs`` ({placeholder: npz key}),
  ``outputs`` (names for ``--output-nodes``; null: a SavedModel's signature outputs),
  ``expected`` (npz keys of the outputs, in order), ``dtypes``, ``origin`` (the TensorFlow test
  the shape comes from, or ``extra: ...``), ``refuse`` (freezing must fail: the output depends on
  a variable assignment), ``extra_args`` (more CLI arguments), and for SavedModels ``tags`` and
  ``signature_inputs`` ({signature key: npz key}).

Sources: tensorflow/python/tools/freeze_graph_test.py (``fg_``),
tensorflow/python/framework/convert_to_constants_test.py (``ctc_``: the TF2 function tests, saved
as SavedModels with a serving signature; ``ctcs_``: its V2 session tests; ``cvc_``: its
ConvertVariablesToConstantsSessionTest), the convert_variables_to_constants tests of
tensorflow/python/framework/graph_util_test.py before they moved (``gu_``), and the same
control-flow shapes rebuilt as TF1 Saver checkpoints (``..._v1``: TF1 behaviour, ``..._v2``:
TF2 behaviour). Keras 3 has no TF1 layers or RNN cells, so layers and the LSTM cell are built
from raw ops (``RawLSTMCell``).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

CASES: dict = {}  # name -> (mode, origin, builder)
PREFIX = object()  # source: the checkpoint prefix Saver.save returned (no 'checkpoint' file)


def case(mode: str, origin: str, eager: bool = False):
    """Register a builder. It runs inside a fresh tf.Graph unless ``eager`` (TF2 SavedModels)."""

    def register(builder):
        CASES[builder.__name__] = (mode, origin, builder)
        builder.eager = eager
        return builder

    return register


def main(root: Path, mode: str, names: list[str]) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if mode == "tf1":
        tf.compat.v1.disable_v2_behavior()
    selected = names or [n for n, (m, _, _) in CASES.items() if m == mode]
    for name in selected:
        case_mode, origin, builder = CASES[name]
        assert case_mode == mode, f"{name} is a {case_mode} case"
        out = Out(tf, root / name, origin, (builder.__doc__ or "").strip().splitlines()[0])
        tf.random.set_seed(0)
        if builder.eager:
            builder(tf, out)
        else:
            with tf.Graph().as_default():
                tf.compat.v1.set_random_seed(0)
                builder(tf, out)
        assert out.written, f"{name} wrote nothing"


def values_of(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


class Out:
    """Where one case goes, and how its checkpoint or SavedModel and expectations are written."""

    def __init__(self, tf, path: Path, origin: str, doc: str):
        self.tf = tf
        self.dir = path
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.spec = {"origin": origin, "doc": doc, "refuse": False, "extra_args": []}
        self.written = False

    def checkpoint(
        self,
        sess,
        outputs: list,
        feeds: dict | None = None,
        *,
        saver=None,
        prefix: str = "model.ckpt",
        global_step: int | None = 0,
        latest_filename: str | None = None,
        source=".",
        pinned: dict | None = None,
        extra_args: tuple = (),
        refuse: bool = False,
        perturb: bool = True,
    ) -> None:
        """Save ``sess`` with ``saver`` (default: all variables); expected = ``outputs`` run.

        ``outputs``: tensors (output 0 of the op to name), or (node name, tensor) where the
        node itself cannot be fetched in the live graph (a cond_v2 If: its Identity gives the
        same value). ``perturb`` first moves every initialized global variable off its
        initializer's value, so a freezer that re-runs initializers instead of restoring is
        caught. ``pinned``
        placeholders are fed in the live run but pinned by ``extra_args`` when freezing.
        """
        v1 = self.tf.compat.v1
        feeds = feeds or {}
        if perturb:
            self._perturb(sess)
        pairs = [item if isinstance(item, tuple) else (item.op.name, item) for item in outputs]
        fetch = dict(pairs)
        assert all(t.value_index == 0 for t in outputs if not isinstance(t, tuple)), outputs
        run_feeds = {**feeds, **(pinned or {})}
        values = sess.run(fetch, run_feeds)
        saver = saver or v1.train.Saver()
        path = saver.save(
            sess, str(self.dir / prefix), global_step=global_step, latest_filename=latest_filename
        )
        if not refuse:
            again = sess.run(fetch, run_feeds)
            for name in fetch:
                assert np.array_equal(values[name], again[name]), f"{name} is not stable"
        self._write(
            source=Path(path).name if source is PREFIX else source,
            inputs={t.op.name: (f"input:{t.op.name}", v) for t, v in feeds.items()},
            outputs=list(fetch),
            values=values,
            dtypes={n: t.dtype.name for n, t in fetch.items()},
            extra_args=list(extra_args),
            refuse=refuse,
        )

    def _perturb(self, sess) -> None:
        v1 = self.tf.compat.v1
        uninitialized = {n.decode() for n in sess.run(v1.report_uninitialized_variables())}
        for i, var in enumerate(v1.global_variables()):
            if var.op.name in uninitialized or not var.dtype.base_dtype.is_floating:
                continue
            value = sess.run(var)
            step = 0.0625 * ((np.arange(value.size) + i) % 5 + 1)
            var.load(value + step.reshape(value.shape).astype(value.dtype), sess)

    def saved_v1(self, sess, inputs: dict, outputs: dict, *, tags, names=None) -> None:
        """Expectations for a TF1 SavedModel already written to saved/ from ``sess``.

        ``inputs``: {signature key: (placeholder tensor, value)}; ``outputs``: {signature key:
        tensor}; ``names``: explicit output node names to freeze (default: the signature's).
        """
        feeds = {t: v for t, v in inputs.values()}
        graph = sess.graph
        if names:
            fetch = {n: graph.get_tensor_by_name(f"{n}:0") for n in names}
        else:  # in signature-key order, the order a SavedModel's outputs flatten in
            fetch = dict(sorted(outputs.items()))
        values = sess.run(fetch, feeds)
        again = sess.run(fetch, feeds)
        for key in fetch:
            assert np.array_equal(values[key], again[key]), f"{key} is not stable"
        self._write(
            source="saved",
            inputs={t.op.name: (f"input:{key}", v) for key, (t, v) in inputs.items()},
            outputs=list(fetch) if names else None,
            values=values,
            dtypes={k: t.dtype.name for k, t in fetch.items()},
            tags=list(tags),
            signature_inputs={key: f"input:{key}" for key in inputs},
        )

    def saved_v2(self, root, signatures, inputs: dict, signature_key="serving_default") -> None:
        """Save a TF2 object with ``signatures``; expected = the live serving function's outputs.

        ``inputs``: {argument name: value}. The signature's output keys are those TF gives: a
        dict's keys, else ``output_0``, ``output_1``, ... in flattening order.
        """
        tf = self.tf
        path = self.dir / "saved"
        fn = signatures[signature_key] if isinstance(signatures, dict) else signatures
        args = {k: tf.constant(v) for k, v in inputs.items()}
        result = fn(**args)
        flat = tf.nest.flatten(result)
        keys = (
            sorted(result)
            if isinstance(result, dict)
            else [f"output_{i}" for i in range(len(flat))]
        )
        values = {k: t.numpy() for k, t in zip(keys, flat, strict=True)}
        tf.saved_model.save(root, str(path), signatures=signatures)
        again = tf.nest.flatten(fn(**args))
        for key, t in zip(keys, again, strict=True):
            assert np.array_equal(values[key], t.numpy()), f"{key} is not stable"
        from tensorflow.python.saved_model import loader_impl

        saved = loader_impl.parse_saved_model(str(path))
        signature = saved.meta_graphs[0].signature_def[signature_key]
        assert sorted(signature.outputs) == keys, (sorted(signature.outputs), keys)
        assert sorted(signature.inputs) == sorted(inputs), (sorted(signature.inputs), inputs)
        self._write(
            source="saved",
            inputs={k: (f"input:{k}", v) for k, v in inputs.items()},
            outputs=None,
            values=values,
            dtypes={k: t.dtype.name for k, t in zip(keys, flat, strict=True)},
            tags=["serve"],
            signature_inputs={k: f"input:{k}" for k in inputs},
        )

    def _write(self, *, inputs: dict, values: dict, dtypes: dict, **spec) -> None:
        arrays = {key: np.asarray(v) for key, v in inputs.values()}
        for name, value in values.items():
            value = np.asarray(value)
            arrays[name] = value.astype(bytes) if value.dtype == object else value
        np.savez(self.dir / "expected.npz", **arrays)
        self.spec.update(spec)
        self.spec["inputs"] = {name: key for name, (key, _) in inputs.items()}
        self.spec["expected"] = list(values)
        self.spec["dtypes"] = dtypes
        (self.dir / "spec.json").write_text(json.dumps(self.spec, indent=1) + "\n")
        self.written = True


class RawLSTMCell:
    """An LSTM cell from raw ops with the RNNCell interface dynamic_rnn/static_rnn expect.

    rnn_cell_impl.LSTMCell is a Keras 2 layer (unavailable with Keras 3); the math is the same
    (forget bias 1.0, no peepholes), the kernel and bias are passed in.
    """

    def __init__(self, tf, kernel, bias):
        self.tf, self.kernel, self.bias = tf, kernel, bias
        self.units = int(kernel.shape[1]) // 4

    @property
    def state_size(self):
        return (self.units, self.units)

    @property
    def output_size(self):
        return self.units

    def zero_state(self, batch_size, dtype):
        zeros = self.tf.zeros(self.tf.stack([batch_size, self.units]), dtype)
        return (zeros, zeros)

    def __call__(self, inputs, state, scope=None):
        tf = self.tf
        c, h = state
        z = tf.matmul(tf.concat([inputs, h], 1), self.kernel) + self.bias
        i, j, f, o = tf.split(z, 4, axis=1)
        new_c = c * tf.sigmoid(f + 1.0) + tf.sigmoid(i) * tf.tanh(j)
        new_h = tf.tanh(new_c) * tf.sigmoid(o)
        return new_h, (new_c, new_h)


def lstm_weights(rng, depth: int, units: int):
    kernel = (rng.normal(size=(depth + units, 4 * units)) * 0.5).astype(np.float32)
    return kernel, (rng.normal(size=4 * units) * 0.1).astype(np.float32)


def session(tf, soft_placement: bool = False):
    config = tf.compat.v1.ConfigProto(allow_soft_placement=soft_placement)
    config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = 1
    return tf.compat.v1.Session(config=config)


def _scalar_times_two(tf, out, *, write_version=None, prefix="saved_checkpoint"):
    """The freeze_graph_test graph: VariableV1(1.0) * 2.0, no inputs."""
    v1 = tf.compat.v1
    variable_node = v1.Variable(1.0, name="variable_node")
    output_node = tf.multiply(variable_node, 2.0, name="output_node")
    saver = v1.train.Saver(write_version=write_version or v1.train.SaverDef.V2)
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(
            sess,
            [output_node],
            saver=saver,
            prefix=prefix,
            latest_filename="checkpoint_state",
            source=PREFIX,
        )


# --- tensorflow/python/tools/freeze_graph_test.py ---------------------------------------------


@case("tf1", "freeze_graph_test.testFreezeGraphV1")
def fg_freeze_graph_v1(tf, out):
    """VariableV1 * 2 in a V1-format checkpoint (one file, no .index), state file renamed."""
    _scalar_times_two(tf, out, write_version=tf.compat.v1.train.SaverDef.V1)


@case("tf1", "freeze_graph_test.testFreezeGraphV2")
def fg_freeze_graph_v2(tf, out):
    """VariableV1 * 2 in a V2 checkpoint whose state file is 'checkpoint_state'."""
    _scalar_times_two(tf, out)


@case("tf2", "freeze_graph_test.testFreezeMetaGraph")
def fg_freeze_meta_graph(tf, out):
    """VariableV1 * 2 under TF2 behaviour (a resource variable), frozen from the .meta."""
    _scalar_times_two(tf, out, prefix="meta_graph_checkpoint")


@case("tf1", "freeze_graph_test.testSinglePartitionedVariable")
def fg_single_partitioned_variable(tf, out):
    """A 1x1 conv whose filter is a variable in one partition (part_0 + extra Identity)."""
    v1 = tf.compat.v1
    with v1.variable_scope("part", partitioner=v1.fixed_size_partitioner(1)):
        # The test feeds zeros (5x128x128x3 constants); placeholders here so outputs vary.
        input1 = v1.placeholder(tf.float32, [None, 4, 4, 3], name="input1")
        input2 = v1.placeholder(tf.float32, [None, 4, 4, 3], name="input2")
        filter1 = v1.get_variable("filter", [3, 3])
        filter2 = tf.reshape(filter1, [1, 1, 3, 3])
        conv = tf.nn.conv2d(input1, filter2, strides=[1, 1, 1, 1], padding="SAME")
        node = tf.add(conv, input2, name="test/add")
        node = tf.nn.relu6(node, name="test/relu6")
    rng = np.random.default_rng(1)
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        feeds = {input1: values_of(rng, 2, 4, 4, 3) * 3, input2: values_of(rng, 2, 4, 4, 3) * 3}
        out.checkpoint(sess, [node], feeds, prefix="saved_checkpoint")


def _example(tf, value: float) -> bytes:
    feature = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    features = tf.train.Features(feature={"feature": feature})
    return tf.train.Example(features=features).SerializeToString()


def _dummy_saved_model(tf, out, tags, names):
    """freeze_graph_test._writeDummySavedModel: parse_example → variable * feature, as text."""
    v1 = tf.compat.v1
    examples = v1.placeholder(tf.string, name="input_node")
    features = v1.io.parse_example(
        examples, {"feature": v1.io.FixedLenFeature(shape=[], dtype=tf.float32)}
    )
    feature = features["feature"]
    variable_node = v1.Variable(1.5, name="variable_node")  # the test's 1.0 hides a mix-up
    scores = tf.multiply(variable_node, feature, name="output_node")
    class_feature = tf.fill(tf.shape(feature), "class_feature")
    classes = tf.transpose(class_feature)
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        signature = v1.saved_model.classification_signature_def(
            examples=examples, classes=classes, scores=scores
        )
        builder = v1.saved_model.Builder(str(out.dir / "saved"))
        builder.add_meta_graph_and_variables(
            sess, tags, signature_def_map={"serving_default": signature}
        )
        builder.save(as_text=True)
        batch = np.array([_example(tf, v) for v in (2.0, -1.0, 0.25)])
        out.saved_v1(
            sess,
            {"inputs": (examples, batch)},
            {"classes": classes, "scores": scores},
            tags=tags,
            names=names,
        )


@case("tf1", "freeze_graph_test.testFreezeSavedModel[default_tags_set]")
def fg_saved_model_text_serve(tf, out):
    """TF1 SavedModel written as saved_model.pbtxt (tags: serve), output named 'output_node'."""
    _dummy_saved_model(tf, out, ["serve"], names=["output_node"])


@case("tf2", "freeze_graph_test.testFreezeSavedModel[empty_tags_set]")
def fg_saved_model_text_empty_tags(tf, out):
    """The same text SavedModel with an empty tag set, frozen by its signature (classes, scores)."""
    _dummy_saved_model(tf, out, [], names=None)


# --- convert_to_constants_test.py: VariablesToConstantsTest (TF2 functions, as SavedModels) -----


def _spec(tf, shape, dtype=None, name=None):
    return tf.TensorSpec(shape, dtype or tf.float32, name=name)


@case("tf2", "convert_to_constants_test.testConstSavedModel", eager=True)
def ctc_const_saved_model(tf, out):
    """tf.function 2*x with no variables, saved with its concrete function as the signature."""
    root = tf.Module()
    root.f = tf.function(lambda x: 2.0 * x)
    to_save = root.f.get_concrete_function(tf.constant(1.0, shape=[1]))
    out.saved_v2(root, to_save, {"x": np.array([1.5], np.float32)})


@case("tf2", "convert_to_constants_test.testVariableSavedModel (+ testVariableModel)", eager=True)
def ctc_variable_saved_model(tf, out):
    """v1 * v2 * x over two captured tf.Variables, saved with the concrete function."""
    root = tf.Module()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: root.v1 * root.v2 * x)
    to_save = root.f.get_concrete_function(tf.constant(1.0, shape=[1]))
    out.saved_v2(root, to_save, {"x": np.array([1.25], np.float32)})


@case("tf2", "convert_to_constants_test.testScalarModel", eager=True)
def ctc_scalar_model(tf, out):
    """v1 * v2 * x for a scalar x: the output must stay shape []."""
    root = tf.Module()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: root.v1 * root.v2 * x)
    to_save = root.f.get_concrete_function(tf.TensorSpec([], tf.float32, name="x"))
    out.saved_v2(root, {"serving_default": to_save}, {"x": np.float32(1.25)})


@case("tf2", "convert_to_constants_test.testMultiFunctionModel", eager=True)
def ctc_multi_function_model(tf, out):
    """Two tf.functions that create their variable on first trace; two signatures saved."""

    class BasicModel(tf.Module):
        def __init__(self):
            super().__init__()
            self.y = None
            self.z = None

        @tf.function
        def add(self, x):
            if self.y is None:
                self.y = tf.Variable(2.0)
            return x + self.y

        @tf.function
        def sub(self, x):
            if self.z is None:
                self.z = tf.Variable(3.0)
            return x - self.z

    root = BasicModel()
    add = root.add.get_concrete_function(tf.TensorSpec([1], tf.float32, name="x"))
    sub = root.sub.get_concrete_function(tf.TensorSpec([1], tf.float32, name="x"))
    out.saved_v2(root, {"serving_default": add, "sub": sub}, {"x": np.array([1.5], np.float32)})


@case("tf2", "convert_to_constants_test.testIf", eager=True)
def ctc_if(tf, out):
    """tf.cond on a bool input inside a tf.function: matmul or add with a captured variable."""
    root = tf.Module()
    root.weights = tf.Variable([[0.1, 0.2], [0.3, 0.4]], dtype=tf.float32)

    @tf.function(input_signature=[_spec(tf, [1, 2]), _spec(tf, [], tf.bool)])
    def model(x, b):
        return tf.cond(b, lambda: tf.matmul(x, root.weights), lambda: tf.add(x, root.weights))

    root.f = model
    feeds = {"x": np.array([[1.0, 2.0]], np.float32), "b": np.array(True)}
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, feeds)


@case("tf2", "convert_to_constants_test.testStatelessIf", eager=True)
def ctc_stateless_if(tf, out):
    """cond_v2 over a captured constant (StatelessIf), no variables at all."""
    root = tf.Module()
    x = tf.constant([1.0, 2.0], shape=[1, 2], name="x")

    @tf.function(input_signature=[_spec(tf, [], tf.bool, name="b")])
    def model(b):
        return tf.cond(b, lambda: x, lambda: x + 2)

    root.f = model
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, {"b": np.array(True)})


def _lstm_module(tf):
    """The TF tests' LSTMCell(10), shrunk to 2 features and 3 units: (module, cell)."""
    kernel, bias = lstm_weights(np.random.default_rng(7), 2, 3)
    root = tf.Module()
    root.kernel = tf.Variable(kernel, name="lstm_cell/kernel")
    root.bias = tf.Variable(bias, name="lstm_cell/bias")
    return root, RawLSTMCell(tf, root.kernel, root.bias)


@case("tf2", "convert_to_constants_test.testStaticRnn", eager=True)
def ctc_static_rnn(tf, out):
    """static_rnn with sequence_length=[1] (If ops per step) over an LSTM cell, in a tf.function."""
    root, cell = _lstm_module(tf)

    @tf.function(input_signature=[_spec(tf, [3, 2])])
    def model(x):
        seq = tf.split(x, 3, 0)
        outputs, (c, h) = tf.compat.v1.nn.static_rnn(
            cell, seq, dtype=tf.float32, sequence_length=[1]
        )
        return {"outputs": tf.stack(outputs), "c": c, "h": h}

    root.f = model
    x = values_of(np.random.default_rng(2), 3, 2)
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, {"x": x})


@case("tf2", "convert_to_constants_test.testWhile", eager=True)
def ctc_while(tf, out):
    """while reduce_sum(x) < 100: x + weights (a captured variable), in a tf.function."""
    root = tf.Module()
    root.weights = tf.Variable([[0.1, 0.2], [0.3, 0.4]], dtype=tf.float32)

    @tf.function(input_signature=[_spec(tf, [2, 2])])
    def model(x):
        return tf.while_loop(
            lambda x: tf.reduce_sum(x) < 100, lambda x: tf.add(x, root.weights), [x]
        )

    root.f = model
    feeds = {"x": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)}
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, feeds)


@case("tf2", "convert_to_constants_test.testStatelessWhile", eager=True)
def ctc_stateless_while(tf, out):
    """while_v2 v < 4: v * v on a scalar (StatelessWhile); the output stays shape []."""
    from tensorflow.python.ops import while_v2

    root = tf.Module()

    @tf.function(input_signature=[_spec(tf, [])])
    def model(x):
        return while_v2.while_loop(
            lambda v: v < 4.0, lambda v: v * v, [x], return_same_structure=False, name="while_1"
        )

    root.f = model
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, {"x": np.float32(1.5)})


@case("tf2", "convert_to_constants_test.testDynamicRnn", eager=True)
def ctc_dynamic_rnn(tf, out):
    """dynamic_rnn (a While loop) over an LSTM cell, in a tf.function."""
    root, cell = _lstm_module(tf)

    @tf.function(input_signature=[_spec(tf, [3, 4, 2])])
    def model(x):
        outputs, (c, h) = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        return {"outputs": outputs, "c": c, "h": h}

    root.f = model
    x = values_of(np.random.default_rng(3), 3, 4, 2)
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, {"x": x})


def _branches(tf, w0, w1, w2, x):
    return [
        lambda: tf.matmul(x, w0),
        lambda: tf.matmul(x, w1),
        lambda: tf.pad(x, [[0, 0], [0, 1]]) + w2,
    ]


def _switch_weights():
    rng = np.random.default_rng(4)
    return (
        rng.random((3, 4)).astype(np.float32),
        rng.random((3, 4)).astype(np.float32),
        rng.random(4).astype(np.float32),
    )


@case("tf2", "convert_to_constants_test.testSwitchCase", eager=True)
def ctc_switch_case(tf, out):
    """switch_case over three branches (Case op) reading captured variables."""
    root = tf.Module()
    root.w = [tf.Variable(w) for w in _switch_weights()]

    @tf.function(input_signature=[_spec(tf, [], tf.int32), _spec(tf, [4, 3])])
    def model(i, x):
        return tf.switch_case(i, _branches(tf, *root.w, x))

    root.f = model
    feeds = {"i": np.int32(2), "x": np.random.default_rng(5).random((4, 3)).astype(np.float32)}
    out.saved_v2(root, {"serving_default": model.get_concrete_function()}, feeds)


@case("tf2", "convert_to_constants_test.testKerasModel (old revision)", eager=True)
def ctc_keras_model(tf, out):
    """Dense(1) fitted one SGD epoch on y = 2x - 1, from raw ops (Keras 3 has no TF1 path)."""
    root = tf.Module()
    root.kernel = tf.Variable([[0.5]], name="dense/kernel")
    root.bias = tf.Variable([0.0], name="dense/bias")
    x = tf.constant([[-1.0], [0.0], [1.0], [2.0], [3.0], [4.0]])
    y = tf.constant([[-3.0], [-1.0], [1.0], [3.0], [5.0], [7.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(tf.matmul(x, root.kernel) + root.bias - y))
    variables = [root.kernel, root.bias]
    for var, grad in zip(variables, tape.gradient(loss, variables), strict=True):
        var.assign_sub(0.01 * grad)

    @tf.function(input_signature=[_spec(tf, [None, 1])])
    def to_save(x):
        return tf.matmul(x, root.kernel) + root.bias

    root.f = to_save
    feeds = {"x": np.array([[1.0], [2.5]], np.float32)}
    out.saved_v2(root, {"serving_default": to_save.get_concrete_function()}, feeds)


@case("tf1", "convert_to_constants_test.testRefVariableImport")
def ctc_ref_variable_import(tf, out):
    """simple_save of ref variables plus a local resource variable set by legacy_init_op."""
    v1 = tf.compat.v1
    start = v1.placeholder(shape=[1, 1], dtype=tf.float32, name="start")
    distractor = v1.Variable(-1.0, name="distractor", use_resource=False)
    v = v1.Variable(3.0, name="v", use_resource=False)
    local_variable = v1.Variable(
        2.0,  # the test's 1.0 would hide a skipped initializer
        collections=[v1.GraphKeys.LOCAL_VARIABLES],
        trainable=False,
        use_resource=True,
    )
    output = tf.identity(start * v * local_variable, name="output")
    with session(tf) as sess:
        sess.run([v.initializer, distractor.initializer, local_variable.initializer])
        v1.saved_model.simple_save(
            sess,
            str(out.dir / "saved"),
            inputs={"start": start},
            outputs={"output": output},
            legacy_init_op=local_variable.initializer,
        )
        feeds = {"start": (start, np.array([[1.5]], np.float32))}
        out.saved_v1(sess, feeds, {"output": output}, tags=["serve"])


@case("tf2", "convert_to_constants_test.testVariableModelWithFunctionAndFunctionInliningDisabled")
def ctc_function_inlining_disabled(tf, out):
    """simple_save of a graph calling a tf.function (lazy variable) marked _noinline."""
    v1 = tf.compat.v1

    class BasicModel:
        def __init__(self):
            self.v1 = None
            self.v2 = tf.Variable(2.0)

        @tf.function(input_signature=[_spec(tf, [1])])
        def add_all(self, x):
            if self.v1 is None:
                self.v1 = tf.Variable(3.0)
            return x + self.v1 + self.v2

        def run(self, x):
            return self.add_all(x)

    model = BasicModel()
    a = v1.placeholder(tf.float32, shape=[1])
    b = model.run(a)
    saved = out.dir / "saved"
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        v1.saved_model.simple_save(sess, str(saved), {"myinput": a}, {"myoutput": b})
        out.saved_v1(
            sess, {"myinput": (a, np.array([1.5], np.float32))}, {"myoutput": b}, tags=["serve"]
        )
    _add_noinline(tf, saved, "add_all")


def _add_noinline(tf, saved_model_dir: Path, func_name: str) -> None:
    """The test's _addNoinlineAttributeToFunction: _noinline=True on the function's FunctionDefs."""
    from tensorflow.python.saved_model import loader_impl

    proto = loader_impl.parse_saved_model(str(saved_model_dir))
    for func_def in proto.meta_graphs[0].graph_def.library.function:
        if func_def.signature.name[len("__inference_") :].startswith(func_name):
            func_def.attr["_noinline"].b = True
    (saved_model_dir / "saved_model.pb").write_bytes(proto.SerializeToString(deterministic=True))


# --- convert_to_constants_test.py: V2 session tests and ConvertVariablesToConstantsSessionTest --


@case(
    "tf2", "convert_to_constants_test.ConvertVariablesToConstantsV2SessionTest.testConvertVariables"
)
def ctcs_function_call_in_graph(tf, out):
    """A TF1-style graph calling a tf.function that captures two resource variables."""
    v1 = tf.compat.v1
    root = tf.Module()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: root.v1 * root.v2 * x)
    x = v1.placeholder(tf.float32, [1], name="x")
    output = tf.identity(root.f(x), name="output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [output], {x: np.array([1.5], np.float32)})


def _two_scalars(tf, out, use_resource: bool, unused_in_saver: bool):
    """_test_variable_to_const_conversion: variable_node * 2 beside an unused variable."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=use_resource):
        variable_node = v1.get_variable("variable_node", initializer=1.0)
        v1.get_variable("unused_variable_node", initializer=1.0)
        output_node = tf.multiply(variable_node, 2.0, name="output_node")
    with session(tf) as sess:
        # As in the test, only variable_node is initialized; the saver leaves the other out.
        sess.run(variable_node.initializer)
        saver = v1.train.Saver(var_list=[variable_node]) if unused_in_saver else None
        out.checkpoint(sess, [output_node], saver=saver)


@case(
    "tf1",
    "convert_to_constants_test.testReferenceVariables"
    " (graph_util_test.testConvertVariablesToConsts)",
)
def cvc_reference_variables(tf, out):
    """Ref variable * 2; an uninitialized unused variable is not in the checkpoint."""
    _two_scalars(tf, out, use_resource=False, unused_in_saver=True)


@case(
    "tf1",
    "convert_to_constants_test.testResourceVariables"
    " (graph_util_test.testConvertResourceVariablesToConsts)",
)
def cvc_resource_variables(tf, out):
    """Resource variable * 2 under TF1 behaviour; the unused variable is not in the checkpoint."""
    _two_scalars(tf, out, use_resource=True, unused_in_saver=True)


@case(
    "tf1",
    "convert_to_constants_test.testWithFunctions"
    " (graph_util_test.testConvertVariablesToConstsWithFunctions)",
)
def cvc_with_functions(tf, out):
    """A Defun plus_one(variable) * 2: the variable flows into a function call."""
    from tensorflow.python.framework import function

    v1 = tf.compat.v1

    @function.Defun(tf.float32)
    def plus_one(x):
        return x + 1.0

    variable_node = v1.Variable(1.0, name="variable_node")
    v1.Variable(1.0, name="unused_variable_node")
    defun_node = plus_one(variable_node)
    output_node = tf.multiply(defun_node, 2.0, name="output_node")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [output_node])


@case("tf1", "convert_to_constants_test.testGraphWithSwitch")
def cvc_graph_with_switch(tf, out):
    """v1 case() whose branches create resource variables: a Switch of DT_RESOURCE."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=True):
        x = v1.get_variable("var_x", initializer=1.0)
        y = v1.get_variable("var_y", initializer=2.0)

        def f1():
            return v1.get_variable("var_f1", initializer=17.0)

        def f2():
            return v1.get_variable("var_f2", initializer=23.0)

        cond_node = v1.case([(tf.less(x, y), f1)], default=f2)
        output_node = tf.multiply(cond_node, 2.0, name="output_node")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [output_node])


@case("tf1", "convert_to_constants_test.testConvertSingleVariable")
def cvc_single_variable(tf, out):
    """A lone ref variable, its 'x/read' Identity named as the output."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=False):
        v1.get_variable("x", initializer=1.0)
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [sess.graph.get_tensor_by_name("x/read:0")])


@case("tf1", "convert_to_constants_test.testConvertSingleResourceVariable")
def cvc_single_resource_variable(tf, out):
    """A lone resource variable, its ReadVariableOp 'x/Read/ReadVariableOp' named as output."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=True):
        v1.get_variable("x", initializer=1.0)
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [sess.graph.get_tensor_by_name("x/Read/ReadVariableOp:0")])


@case("tf1", "convert_to_constants_test.testConvertOneResourceVariableOfTwo (and ...OfTwo)")
def cvc_two_resource_variables(tf, out):
    """x * y over two scalar resource variables (the tests deny-list y; here both freeze)."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=True):
        x = v1.get_variable("x", initializer=1.0)
        y = v1.get_variable("y", initializer=1.0)
        product = tf.multiply(x, y, name="out")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [product])


@case("tf1", "convert_to_constants_test.testConvertIdentityChain")
def cvc_identity_chain(tf, out):
    """Resource variable x → Identity y → Identity z, z the output."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=True):
        x = v1.get_variable("x", initializer=1.0)
        y = tf.identity(x, name="y")
        z = tf.identity(y, name="z")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [z])


@case("tf1", "convert_to_constants_test.testConvertCase")
def cvc_case_v1(tf, out):
    """v1 case(x < y: x, default y) on ref variables, 'case/cond/Merge' named as output."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=False):
        x = v1.get_variable("x", initializer=1.0)
        y = v1.get_variable("y", initializer=2.0)
        v1.case([(tf.less(x, y), lambda: x)], default=lambda: y)
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [sess.graph.get_tensor_by_name("case/cond/Merge:0")])


def _v2_case(tf, out, use_resource: bool, build):
    """Control flow v2 switched on under TF1 behaviour, as the tests do; 'case/cond' output."""
    from tensorflow.python.ops import control_flow_v2_toggles

    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=use_resource):
        control_flow_v2_toggles.enable_control_flow_v2()
        try:
            result = build(v1)
        finally:
            control_flow_v2_toggles.disable_control_flow_v2()
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [("case/cond", result)])


@case("tf1", "convert_to_constants_test.testConvertV2Case")
def cvc_case_v2(tf, out):
    """v2 case() on ref variables: a StatelessIf 'case/cond' named as the output."""

    def build(v1):
        a = v1.get_variable("a", initializer=2.0)
        x = v1.get_variable("x", initializer=1.0)
        y = v1.get_variable("y", initializer=2.0)
        return v1.case([(tf.less(x, y), lambda: a)], default=lambda: y)

    _v2_case(tf, out, False, build)


@case("tf1", "convert_to_constants_test.testConvertV2ResourceCase")
def cvc_resource_case_v2(tf, out):
    """v2 case() on resource variables: an If taking the handles, named as the output."""

    def build(v1):
        x = v1.get_variable("x", initializer=1.0)
        y = v1.get_variable("y", initializer=2.0)
        return v1.case([(tf.less(x, y), lambda: x)], default=lambda: y)

    _v2_case(tf, out, True, build)


@case("tf1", "convert_to_constants_test.testConvertV2UnconvertedResourceNestedCase")
def cvc_nested_resource_case_v2(tf, out):
    """A v2 case() nested in another's default branch, resource handles passed through both."""

    def build(v1):
        x = v1.get_variable("x", initializer=1.0)
        y = v1.get_variable("y", initializer=2.0)
        z = v1.get_variable("z", initializer=3.0)
        return v1.case(
            [(tf.less(y, x), lambda: x)],  # the test's x < y; flipped so the nested case runs
            default=lambda: v1.case([(tf.less(z, y), lambda: z)], default=lambda: y),
        )

    _v2_case(tf, out, True, build)


@case("tf1", "convert_to_constants_test.test_resource_variable_can_be_written_after_denylisting")
def cvc_assign_under_control_dep(tf, out):
    """MUST REFUSE: identity(v) under a control dependency on v.assign(other + v)."""
    v1 = tf.compat.v1
    with v1.variable_scope("", use_resource=True):
        variable_node = v1.get_variable("variable_node", initializer=1.0)
        another_variable = v1.get_variable("unused_variable_node", initializer=2.0)
        with tf.control_dependencies([variable_node.assign(another_variable + variable_node)]):
            output_node = tf.identity(variable_node, name="output_node")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [output_node], refuse=True)


# --- graph_util_test.py (convert_variables_to_constants, before it moved) --------------------


@case("tf1", "graph_util_test.testConvertVariablesToConstsWithEmbeddings")
def gu_embeddings(tf, out):
    """Keras Embedding(100, 16) on an int32 [None, 1] input, as a raw embedding_lookup."""
    v1 = tf.compat.v1
    state_input = v1.placeholder(tf.int32, [None, 1], name="state_input")
    embeddings = v1.get_variable("state/embeddings", [10, 4])
    looked_up = tf.nn.embedding_lookup(embeddings, state_input)
    state = tf.identity(looked_up, name="state/output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [state], {state_input: np.array([[3], [7], [3]], np.int32)})


@case("tf1", "graph_util_test.testTwoDeviceFunctions + testNestedDeviceFunctions")
def gu_device_functions(tf, out):
    """Variables pinned by device functions to CPU and /device:GPU:0 (none here)."""
    v1 = tf.compat.v1

    def pin_variables_to_cpu(op):
        if op.device:
            return op.device
        return "/cpu:0" if op.node_def.op in ["Variable", "VariableV2"] else op.device

    x = v1.placeholder(tf.float32, [None, 1], name="x")
    var_0 = v1.Variable([1.0], name="var_0")
    with v1.device(pin_variables_to_cpu):
        var_1 = v1.Variable([2.0], name="var_1")
        with v1.device(lambda op: "/device:GPU:0"):
            var_2 = v1.Variable([3.0], name="var_2")
        with v1.device("/device:GPU:0"):
            var_3 = v1.Variable([4.0], name="var_3")
        total = tf.add(x * var_0 + var_1 * x, var_2 - var_3, name="total")
    with session(tf, soft_placement=True) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [total], {x: np.array([[1.0], [-2.0]], np.float32)})


# --- The convert_to_constants_test control-flow shapes rebuilt as Saver checkpoints -----------
# Each builder runs under both behaviours: "tf1" gives Switch/Merge, Enter/Exit and ref
# variables; "tf2" gives If/While/Case and resource variables.


def _cond(tf, out, b_value: bool):
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [1, 2], name="x")
    b = v1.placeholder(tf.bool, [], name="b")
    weights = v1.get_variable("weights", initializer=np.array([[0.1, 0.2], [0.3, 0.4]], np.float32))
    result = tf.cond(b, lambda: tf.matmul(x, weights), lambda: tf.add(x, weights))
    output = tf.identity(result, name="output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        feeds = {x: np.array([[1.0, 2.0]], np.float32), b: np.array(b_value)}
        out.checkpoint(sess, [output], feeds)


@case("tf1", "convert_to_constants_test.testIf (as a TF1 checkpoint: Switch/Merge)")
def cond_v1(tf, out):
    """tf.cond on a fed bool: matmul or add with a ref variable (v1 cond), false branch taken."""
    _cond(tf, out, False)


@case("tf2", "convert_to_constants_test.testIf (as a checkpoint: If op)")
def cond_v2(tf, out):
    """tf.cond on a fed bool with a resource variable captured by both branches (If op)."""
    _cond(tf, out, False)


def _while(tf, out):
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [2, 2], name="x")
    weights = v1.get_variable("weights", initializer=np.array([[0.1, 0.2], [0.3, 0.4]], np.float32))
    result = tf.while_loop(lambda x: tf.reduce_sum(x) < 100, lambda x: tf.add(x, weights), [x])
    output = tf.identity(result, name="output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [output], {x: np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)})


@case("tf1", "convert_to_constants_test.testWhile (as a TF1 checkpoint: Enter/Exit)")
def while_v1(tf, out):
    """while reduce_sum(x) < 100: x + weights, a ref variable read inside a v1 while loop."""
    _while(tf, out)


@case("tf2", "convert_to_constants_test.testWhile (as a checkpoint: While op)")
def while_v2(tf, out):
    """while reduce_sum(x) < 100: x + weights, the resource handle captured by a While op."""
    _while(tf, out)


@case("tf2", "convert_to_constants_test.testStatelessWhile (as a checkpoint)")
def stateless_while_v2(tf, out):
    """A scalar StatelessWhile v < 4: v * factor, factor read from a scalar variable outside."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [], name="x")
    factor = v1.get_variable("factor", initializer=2.0)
    f = tf.identity(factor)
    result = tf.while_loop(lambda v: v < 4.0, lambda v: v * f, [x], name="while_1")
    output = tf.identity(result, name="output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [output], {x: np.float32(0.75)})


def _dynamic_rnn(tf, out):
    v1 = tf.compat.v1
    kernel, bias = lstm_weights(np.random.default_rng(7), 2, 3)
    x = v1.placeholder(tf.float32, [None, 4, 2], name="x")
    with v1.variable_scope("rnn/lstm_cell"):
        cell = RawLSTMCell(
            tf,
            v1.get_variable("kernel", initializer=kernel),
            v1.get_variable("bias", initializer=bias),
        )
    outputs, (c, h) = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    fetch = [
        tf.identity(outputs, name="outputs"),
        tf.identity(c, name="c"),
        tf.identity(h, name="h"),
    ]
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, fetch, {x: values_of(np.random.default_rng(3), 3, 4, 2)})


@case("tf1", "convert_to_constants_test.testDynamicRnn (as a TF1 checkpoint)")
def dynamic_rnn_v1(tf, out):
    """dynamic_rnn over an LSTM cell with ref variables: a v1 while loop with TensorArrays."""
    _dynamic_rnn(tf, out)


@case("tf2", "convert_to_constants_test.testDynamicRnn (as a checkpoint)")
def dynamic_rnn_v2(tf, out):
    """dynamic_rnn over an LSTM cell with resource variables: a While op with TensorLists."""
    _dynamic_rnn(tf, out)


def _static_rnn(tf, out):
    v1 = tf.compat.v1
    kernel, bias = lstm_weights(np.random.default_rng(7), 2, 3)
    x = v1.placeholder(tf.float32, [3, 2], name="x")
    with v1.variable_scope("rnn/lstm_cell"):
        cell = RawLSTMCell(
            tf,
            v1.get_variable("kernel", initializer=kernel),
            v1.get_variable("bias", initializer=bias),
        )
    outputs, (c, h) = v1.nn.static_rnn(
        cell, tf.split(x, 3, 0), dtype=tf.float32, sequence_length=[1]
    )
    fetch = [tf.stack(outputs, name="outputs"), tf.identity(c, name="c"), tf.identity(h, name="h")]
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, fetch, {x: values_of(np.random.default_rng(2), 3, 2)})


@case("tf1", "convert_to_constants_test.testStaticRnn (as a TF1 checkpoint)")
def static_rnn_v1(tf, out):
    """static_rnn with sequence_length=[1] over an LSTM cell: per-step v1 conds, ref variables."""
    _static_rnn(tf, out)


@case("tf2", "convert_to_constants_test.testStaticRnn (as a checkpoint)")
def static_rnn_v2(tf, out):
    """static_rnn with sequence_length=[1] over an LSTM cell: per-step If ops, resource vars."""
    _static_rnn(tf, out)


def _switch_case(tf, out, name_case_node: bool):
    v1 = tf.compat.v1
    i = v1.placeholder(tf.int32, [], name="i")
    x = v1.placeholder(tf.float32, [4, 3], name="x")
    w = [v1.get_variable(f"w{k}", initializer=value) for k, value in enumerate(_switch_weights())]
    result = tf.switch_case(i, _branches(tf, *w, x), name="pick")
    if name_case_node:
        case_ops = [
            op
            for op in tf.compat.v1.get_default_graph().get_operations()
            if op.type in ("Case", "StatelessCase")
        ]
        assert len(case_ops) == 1, case_ops
        output = (case_ops[0].name, result)
    else:
        output = tf.identity(result, name="output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        feeds = {i: np.int32(2), x: np.random.default_rng(5).random((4, 3)).astype(np.float32)}
        out.checkpoint(sess, [output], feeds)


@case("tf1", "convert_to_constants_test.testSwitchCase (as a TF1 checkpoint)")
def switch_case_v1(tf, out):
    """switch_case over three branches reading ref variables (TF 2.21 builds a Case even in v1)."""
    _switch_case(tf, out, name_case_node=False)


@case("tf2", "convert_to_constants_test.testSwitchCase (as a checkpoint)")
def switch_case_v2(tf, out):
    """switch_case over three branches capturing resource variables (Case op)."""
    _switch_case(tf, out, name_case_node=False)


@case("tf2", "extra: convert_to_constants_test.testSwitchCase, the Case node named as output")
def case_node_output(tf, out):
    """switch_case whose Case op itself (not an Identity after it) is the output node."""
    _switch_case(tf, out, name_case_node=True)


@case("tf2", "extra: convert_to_constants_test.testStatelessIf + testConvertV2Case, node as output")
def stateless_if_node_output(tf, out):
    """A StatelessIf on a fed bool over a variable's value, the If node itself the output."""
    v1 = tf.compat.v1
    b = v1.placeholder(tf.bool, [], name="b")
    x = tf.identity(v1.get_variable("x", initializer=np.array([[1.0, 2.0]], np.float32)))
    result = tf.cond(b, lambda: x, lambda: x + 2, name="choose")
    node = v1.get_default_graph().get_operation_by_name("choose")
    assert node.type == "StatelessIf", node.type
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [("choose", result)], {b: np.array(False)})


# --- Extra shapes: what users' checkpoints hold that the TF tests do not cover ---------------


@case("tf1", "extra: embedding_lookup on a variable split by fixed_size_partitioner(2)")
def partitioned_embedding(tf, out):
    """An embedding table in two partitions (emb/part_0, emb/part_1), looked up and summed."""
    v1 = tf.compat.v1
    ids = v1.placeholder(tf.int64, [None], name="ids")
    emb = v1.get_variable("emb", [6, 3], partitioner=v1.fixed_size_partitioner(2))
    embedded = tf.identity(tf.nn.embedding_lookup(emb, ids), name="embedded")
    norms = tf.reduce_sum(tf.square(emb.as_tensor()), 1, name="norms")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [embedded, norms], {ids: np.array([0, 5, 3, 1], np.int64)})


@case("tf2", "extra: graph_util_test.testConvertVariablesToConstsWithEmbeddings, resource")
def embedding_resource(tf, out):
    """embedding_lookup on a resource variable (ResourceGather) under TF2 behaviour."""
    v1 = tf.compat.v1
    ids = v1.placeholder(tf.int32, [None, 1], name="ids")
    table = v1.get_variable("table", [10, 4])
    embedded = tf.identity(tf.nn.embedding_lookup(table, ids), name="embedded")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [embedded], {ids: np.array([[9], [0], [4]], np.int32)})


@case("tf1", "extra: graph_util_test.testRemoveTrainingNodes shape (CheckNumerics + control deps)")
def check_numerics_control_deps(tf, out):
    """x * w checked by CheckNumerics, read through an Identity with a control dependency."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 3], name="x")
    w = v1.get_variable("w", [3])
    a = x * w
    a_check = tf.debugging.check_numerics(a, "a is not finite", name="a_check")
    with tf.control_dependencies([a_check]):
        a_identity = tf.identity(a, name="a_identity")
    result = tf.add(a_identity, 1.0, name="out")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [result], {x: values_of(np.random.default_rng(6), 2, 3)})


@case("tf1", "extra: several outputs of different dtypes (float32, int64, bool, int32 scalar)")
def multiple_outputs(tf, out):
    """probs, argmax classes, a bool mask and an int32 scalar count from one small layer."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 3], name="features")
    w = v1.get_variable("dense/w", [3, 4])
    logits = tf.matmul(x, w, name="logits")
    probs = tf.nn.softmax(logits, name="probs")
    classes = tf.argmax(logits, 1, name="classes")
    positive = tf.greater(logits, 0.0, name="positive")
    count = tf.reduce_sum(tf.cast(positive, tf.int32), name="count")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        feeds = {x: values_of(np.random.default_rng(8), 5, 3)}
        out.checkpoint(sess, [probs, classes, positive, count, logits], feeds)


@case("tf1", "extra: get_variable('scale', []) whose outputs keep shape []")
def scalar_variable(tf, out):
    """A scalar variable times a scalar input, and the variable itself: both shape []."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [], name="x")
    scale = v1.get_variable("scale", [])
    scaled = tf.multiply(x, scale, name="scaled")
    value = tf.identity(scale, name="scale_value")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [scaled, value], {x: np.float32(3.0)})


@case("tf2", "extra: a fed scalar compared into a tf.cond predicate (If op)")
def scalar_pred_cond_v2(tf, out):
    """cond(t > 0.5, x @ w, x - sum(w)) with t a fed float scalar."""
    v1 = tf.compat.v1
    t = v1.placeholder(tf.float32, [], name="threshold")
    x = v1.placeholder(tf.float32, [None, 2], name="x")
    w = v1.get_variable("w", [2, 2])
    result = tf.cond(t > 0.5, lambda: tf.matmul(x, w), lambda: x - tf.reduce_sum(w))
    output = tf.identity(result, name="output")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        feeds = {t: np.float32(0.75), x: values_of(np.random.default_rng(9), 3, 2)}
        out.checkpoint(sess, [output], feeds)


@case("tf1", "extra: dropout under cond(is_training), the flag pinned with --set")
def cond_training_flag_set(tf, out):
    """A Placeholder is_training (no default) pinned false at freeze time: dropout removed."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 4], name="x")
    is_training = v1.placeholder(tf.bool, [], name="is_training")
    w = v1.get_variable("w", [4, 3])
    h = tf.matmul(x, w)
    h = tf.cond(is_training, lambda: tf.nn.dropout(h, rate=0.5), lambda: h)
    result = tf.nn.relu(h, name="out")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(
            sess,
            [result],
            {x: values_of(np.random.default_rng(10), 3, 4)},
            pinned={is_training: False},
            extra_args=("--set", "is_training=false"),
        )


@case("tf1", "extra: Saver(var_list={'old/w': w, 'old/b': b}), keys renamed")
def renamed_saver_keys(tf, out):
    """A checkpoint whose keys are not the variables' names (a renamed scope kept old keys)."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 2], name="x")
    w = v1.Variable(np.array([[1.0, -1.0], [0.5, 2.0]], np.float32), name="w")
    b = v1.Variable(np.array([0.25, -0.5], np.float32), name="b")
    result = tf.add(tf.matmul(x, w), b, name="y")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        saver = v1.train.Saver(var_list={"old/w": w, "old/b": b})
        out.checkpoint(sess, [result], {x: values_of(np.random.default_rng(11), 3, 2)}, saver=saver)


def _swapped(tf, out):
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 2], name="x")
    a = v1.get_variable("a", initializer=np.array([1.0, 2.0], np.float32))
    b = v1.get_variable("b", initializer=np.array([-3.0, 0.5], np.float32))
    result = tf.subtract(x * a, b, name="y")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        saver = v1.train.Saver(var_list={"a": b, "b": a})
        out.checkpoint(sess, [result], {x: values_of(np.random.default_rng(12), 3, 2)}, saver=saver)


@case("tf1", "extra: Saver(var_list={'a': b, 'b': a}), two keys swapped")
def swapped_saver_keys(tf, out):
    """Ref variables a and b saved under each other's names: only the saver knows."""
    _swapped(tf, out)


@case("tf2", "extra: Saver(var_list={'a': b, 'b': a}), two keys swapped, resource variables")
def swapped_saver_keys_resource(tf, out):
    """Resource variables a and b saved under each other's names."""
    _swapped(tf, out)


@case("tf1", "extra: test_resource_variable_can_be_written_after_denylisting, ref variable")
def assign_under_control_dep_ref(tf, out):
    """MUST REFUSE: identity(v) after v.assign(v * 2 + 1) on a ref variable."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None], name="x")
    v = v1.Variable(1.0, name="v")
    with tf.control_dependencies([v1.assign(v, v * 2.0 + 1.0)]):
        current = tf.identity(v, name="current")
    result = tf.multiply(x, current, name="y")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [result], {x: np.array([1.0, 2.0], np.float32)}, refuse=True)


@case("tf2", "extra: nested tf.function (outer calls inner, inner captures a variable)")
def nested_function(tf, out):
    """relu(inner(x) + 1) * 2 where inner is a tf.function capturing a resource variable."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 2], name="x")
    w = v1.get_variable("w", [2, 2])

    @tf.function
    def inner(x):
        return tf.matmul(x, w)

    @tf.function
    def outer(x):
        return tf.nn.relu(inner(x) + 1.0) * 2.0

    result = tf.identity(outer(x), name="y")
    with session(tf) as sess:
        sess.run(v1.global_variables_initializer())
        out.checkpoint(sess, [result], {x: values_of(np.random.default_rng(13), 3, 2)})


@case("tf2", "extra: a SavedModel whose signature output key equals its input name", eager=True)
def savedmodel_output_key_is_input_name(tf, out):
    """Input 'x', outputs {'x': x @ w, 'norm': ...}: the output key collides with the input."""
    root = tf.Module()
    root.w = tf.Variable([[1.0, 0.5], [-0.5, 2.0]])

    @tf.function(input_signature=[_spec(tf, [None, 2], name="x")])
    def serve(x):
        y = tf.matmul(x, root.w)
        return {"x": y, "norm": tf.reduce_sum(tf.square(y), 1)}

    root.f = serve
    feeds = {"x": values_of(np.random.default_rng(14), 3, 2)}
    out.saved_v2(root, {"serving_default": serve.get_concrete_function()}, feeds)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
