"""A corpus of hostile models: graphs that, when run, loaded or restored, write a file, read
a secret, list a directory or run Python. Built with plain TensorFlow; each one tiny.

Run as a subprocess (TF1 behaviour is process-wide, so one process per mode)::

    python tests/hostile/models.py OUT_ROOT TARGET_DIR SECRET_FILE MODE [--no-verify]

MODE ``tf1`` (``tf.compat.v1.disable_v2_behavior()``: v1 control flow, ref variables, TF1
savers and SavedModelBuilder) or ``tf2`` (control flow v2, tf.function, tf.saved_model.save).
Each case of that mode is written to ``OUT_ROOT/NAME/`` with ``spec.json``::

    {"name", "kind": "pb" | "checkpoint" | "saved_model", "path": relative to OUT_ROOT/NAME,
     "input": placeholder (a signature input key for a SavedModel), "outputs": [names],
     "shape": input shape, "dtype": input dtype, "attack": write | read | list | execute,
     "ops": [the hostile op types], "what": one line,
     "evidence": what running it does (checked here, see below),
     "proof": what `tfpersist predict --allow-unsafe-ops` shows in another process, or null,
     "benign": false}

Every path a model touches is built from TARGET_DIR (files named after the case) and
SECRET_FILE (read, never written; the ``tfrecord_dataset_pb`` case reads
``SECRET_FILE.tfrecord``, a TFRecord file holding the same secret, which the caller writes).
The writer never reads SECRET_FILE itself (only its size, for ImmutableConst) and never
runs a real model: a TF2 resource is created eagerly but initialised only on load.

Unless ``--no-verify``, each case is first built against a scratch target and scratch secret
under ``OUT_ROOT/.verify-MODE/`` and run the way a user would (a .pb imported and its
outputs fetched; a checkpoint restored with its own saver; a SavedModel loaded, TF1 loader
in tf1 mode, ``tf.saved_model.load`` in tf2 mode) to prove it is really hostile:
``evidence`` ``file`` = a file named after the case appeared in the target; ``secret`` = the
secret's text came out (outputs, error message or fd 1/2); ``name`` = the secret file's
name came out (a listing); ``ran`` = it ran (a read whose result is not the secret itself);
``attempt`` = it failed while parsing the secret file. The scratch directory is removed.

All these ops are built and proven working in TF 2.21; two notes: a TF2 ``tf.function`` whose
body writes is called through ``StatefulPartitionedCall`` (``partitioned_call_pb`` renames
it to ``PartitionedCall``, which still runs the write), and ``DecodeProtoV2`` only *tries*
to parse SECRET_FILE as a descriptor set (its error proves the read). Not
attempted: ``RecordInput``, summary writers, ``EncodeProto``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    mode: str  # tf1 | tf2: which writer process builds it
    kind: str  # pb | checkpoint | saved_model
    attack: str  # write | read | list | execute
    ops: tuple[str, ...]  # hostile op types that 'inspect' must list
    evidence: str  # file | secret | name | ran | attempt (see the module docstring)
    proof: str | None  # file | secret | name: what predict --allow-unsafe-ops shows, or None
    what: str
    build: Callable
    benign: bool = False


CASES: dict[str, Case] = {}


def case(mode, kind, attack, ops, evidence, what, proof=None, benign=False):
    def register(fn):
        CASES[fn.__name__] = Case(
            fn.__name__, mode, kind, attack, tuple(ops), evidence, proof, what, fn, benign
        )
        return fn

    return register


@dataclass
class Ctx:
    name: str
    out: Path  # OUT_ROOT/NAME
    root: Path  # OUT_ROOT
    target: Path
    secret: Path

    def file(self, suffix: str = "") -> str:
        """A path in the target directory named after the case."""
        return str(self.target / f"{self.name}{suffix}")


# -- helpers --------------------------------------------------------------------------------


def placeholder(tf, n=4, name="x"):
    return tf.compat.v1.placeholder(tf.float32, [None, n], name=name)


def weights(n_in, n_out):
    return np.linspace(-1, 1, n_in * n_out, dtype=np.float32).reshape(n_in, n_out)


def dense(tf, x, n_in=4, n_out=3, name="probs"):
    """The legitimate-looking part: softmax(x @ W)."""
    return tf.nn.softmax(tf.matmul(x, tf.constant(weights(n_in, n_out))), name=name)


def per_row(tf, x, scalar, name="y"):
    """A scalar (a string read from disk) repeated once per input row, so that it is an
    ordinary batch output that `predict` prints."""
    return tf.fill(tf.shape(x)[:1], scalar, name=name)


def reduce_join(tf, dataset):
    return dataset.reduce(tf.constant(""), lambda acc, *row: acc + row[0])


def reduce_sum(tf, dataset):
    return tf.cast(dataset.reduce(np.int64(0), lambda a, b: a + b), tf.float32)


def guarded(tf, deps, fn):
    with tf.control_dependencies(deps):
        return fn()


def write_graph(graph_def, path: Path) -> None:
    path.write_bytes(graph_def.SerializeToString(deterministic=True))


def pb(tf, ctx, x, outputs, shape=(2, 4), graph_def=None) -> dict:
    graph_def = graph_def or x.graph.as_graph_def()
    write_graph(graph_def, ctx.out / "model.pb")
    return {
        "path": "model.pb",
        "input": x.op.name,
        "outputs": [t.op.name if hasattr(t, "op") else t for t in outputs],
        "shape": list(shape),
        "dtype": "float32",
    }


def in_graph(fn):
    """Run a .pb builder inside a fresh default graph."""

    def wrapper(tf, ctx):
        with tf.Graph().as_default():
            return fn(tf, ctx)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def evaluate_outputs(tf, x):
    """predictions/probabilities as params.yaml names them (the evaluate stage's nodes)."""
    logits = tf.matmul(x, tf.constant(weights(64, 10) * 0.01))
    return [
        tf.argmax(logits, 1, name="predictions"),
        tf.nn.softmax(logits, name="probabilities"),
    ]


# -- benign ---------------------------------------------------------------------------------


@case("tf1", "pb", "none", [], "ran", "benign: matmul + softmax", benign=True)
@in_graph
def benign_pb(tf, ctx):
    x = placeholder(tf)
    return pb(tf, ctx, x, [dense(tf, x)])


@case("tf1", "checkpoint", "none", [], "ran", "benign: a variable, matmul + softmax", benign=True)
def benign_checkpoint(tf, ctx):
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = placeholder(tf)
        w = v1.get_variable("w", initializer=tf.constant(weights(4, 3)))
        y = tf.nn.softmax(tf.matmul(x, w), name="probs")
        saver = v1.train.Saver(save_relative_paths=True)
        return save_checkpoint(tf, ctx, graph, saver, x, [y])


def save_checkpoint(tf, ctx, graph, saver, x, outputs) -> dict:
    v1 = tf.compat.v1
    (ctx.out / "ckpt").mkdir()
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        saver.save(sess, str(ctx.out / "ckpt" / "model.ckpt"))
    return {
        "path": "ckpt",
        "input": x.op.name,
        "outputs": [t.op.name for t in outputs],
        "shape": [2, 4],
        "dtype": "float32",
    }


# -- frozen .pb, TF1 graph mode -------------------------------------------------------------


@case(
    "tf1",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "predictions/probabilities (the evaluate stage's names) with a control input on WriteFile",
    proof="file",
)
@in_graph
def write_file_pb(tf, ctx):
    x = placeholder(tf, 64, "input_holder")
    write = tf.io.write_file(ctx.file(), "pwned")
    outputs = guarded(tf, [write], lambda: evaluate_outputs(tf, x))
    return pb(tf, ctx, x, outputs, (2, 64))


@case("tf1", "pb", "read", ["ReadFile"], "secret", "ReadFile(SECRET) as an output", "secret")
@in_graph
def read_file_pb(tf, ctx):
    x = placeholder(tf)
    return pb(tf, ctx, x, [per_row(tf, x, tf.io.read_file(str(ctx.secret)))])


@case(
    "tf1",
    "pb",
    "write",
    ["ReadFile", "WriteFile"],
    "file",
    "copies SECRET into the target (WriteFile of ReadFile), behind a legit softmax",
    proof="file",
)
@in_graph
def copy_secret_pb(tf, ctx):
    x = placeholder(tf)
    write = tf.io.write_file(ctx.file(), tf.io.read_file(str(ctx.secret)))
    return pb(tf, ctx, x, [guarded(tf, [write], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "list",
    ["MatchingFiles"],
    "name",
    "MatchingFiles lists SECRET's directory into an output",
    proof="name",
)
@in_graph
def matching_files_pb(tf, ctx):
    x = placeholder(tf)
    names = tf.io.matching_files(str(ctx.secret.parent / "*"))
    listing = tf.strings.reduce_join(names, separator=",")
    return pb(tf, ctx, x, [per_row(tf, x, listing)])


@case(
    "tf1",
    "pb",
    "execute",
    ["PyFunc"],
    "file",
    "tf.compat.v1.py_func whose body writes a file (the body does not survive the .pb)",
)
@in_graph
def py_func_pb(tf, ctx):
    x = placeholder(tf)
    path = ctx.file()

    def body():
        Path(path).write_text("pwned")
        return np.float32(0)

    hook = tf.compat.v1.py_func(body, [], tf.float32, stateful=True)
    return pb(tf, ctx, x, [guarded(tf, [hook], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "execute",
    ["EagerPyFunc"],
    "file",
    "tf.py_function whose body writes a file (the body does not survive the .pb)",
)
@in_graph
def eager_py_func_pb(tf, ctx):
    x = placeholder(tf)
    path = ctx.file()

    def body():
        Path(path).write_text("pwned")
        return np.float32(0)

    hook = tf.py_function(body, [], tf.float32)
    return pb(tf, ctx, x, [guarded(tf, [hook], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "write",
    ["PrintV2"],
    "file",
    "tf.print(..., output_stream='file://TARGET/...') appends to a file",
    proof="file",
)
@in_graph
def print_v2_file_pb(tf, ctx):
    x = placeholder(tf)
    hook = tf.print("pwned", tf.reduce_sum(x), output_stream="file://" + ctx.file(".txt"))
    return pb(tf, ctx, x, [guarded(tf, [hook], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "read",
    ["ReadFile", "PrintV2"],
    "secret",
    "tf.print(ReadFile(SECRET), output_stream=sys.stdout): the secret on the user's terminal",
    proof="secret",
)
@in_graph
def print_v2_stdout_pb(tf, ctx):
    x = placeholder(tf)
    hook = tf.print(tf.io.read_file(str(ctx.secret)), output_stream=sys.stdout)
    return pb(tf, ctx, x, [guarded(tf, [hook], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "read",
    ["ReadFile"],
    "secret",
    "ReadFile(SECRET) fed to an Assert that fails: the secret in the error message",
    proof="secret",
)
@in_graph
def assert_leak_pb(tf, ctx):
    x = placeholder(tf)
    check = tf.debugging.Assert(tf.reduce_sum(x) > 1e30, [tf.io.read_file(str(ctx.secret))])
    return pb(tf, ctx, x, [guarded(tf, [check], lambda: dense(tf, x))])


@case("tf1", "pb", "write", ["SaveV2"], "file", "tf.raw_ops.SaveV2 to TARGET", proof="file")
@in_graph
def save_v2_pb(tf, ctx):
    x = placeholder(tf)
    save = tf.raw_ops.SaveV2(
        prefix=ctx.file(), tensor_names=["x"], shape_and_slices=[""], tensors=[tf.reduce_sum(x)]
    )
    return pb(tf, ctx, x, [guarded(tf, [save], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "write",
    ["SaveV2", "MergeV2Checkpoints"],
    "file",
    "SaveV2 then MergeV2Checkpoints into TARGET",
    proof="file",
)
@in_graph
def merge_v2_checkpoints_pb(tf, ctx):
    x = placeholder(tf)
    save = tf.raw_ops.SaveV2(
        prefix=ctx.file("_part"), tensor_names=["x"], shape_and_slices=[""], tensors=[x]
    )
    merge = guarded(
        tf,
        [save],
        lambda: tf.raw_ops.MergeV2Checkpoints(
            checkpoint_prefixes=[ctx.file("_part")],
            destination_prefix=ctx.file(),
            delete_old_dirs=False,
        ),
    )
    return pb(tf, ctx, x, [guarded(tf, [merge], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "write",
    ["DatasetToTFRecord"],
    "file",
    "tf.data.experimental.TFRecordWriter(TARGET).write(ds) inside the graph",
    proof="file",
)
@in_graph
def dataset_to_tfrecord_pb(tf, ctx):
    x = placeholder(tf)
    dataset = tf.data.Dataset.from_tensors(tf.constant("pwned"))
    write = tf.data.experimental.TFRecordWriter(ctx.file(".tfrecord")).write(dataset)
    return pb(tf, ctx, x, [guarded(tf, [write], lambda: dense(tf, x))])


@case(
    "tf1",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile inside a Dataset.map function (a func attr of MapDataset), reduced",
    proof="file",
)
@in_graph
def dataset_map_pb(tf, ctx):
    x = placeholder(tf)
    path = ctx.file()

    def touch(v):
        return guarded(tf, [tf.io.write_file(path, "pwned")], lambda: tf.identity(v))

    total = reduce_sum(tf, tf.data.Dataset.range(1).map(touch))
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) + 0 * total, name="y")])


@case(
    "tf1",
    "pb",
    "write",
    ["CacheDataset"],
    "file",
    "Dataset.cache(TARGET file) consumed by ReduceDataset",
    proof="file",
)
@in_graph
def cache_dataset_pb(tf, ctx):
    x = placeholder(tf)
    total = reduce_sum(tf, tf.data.Dataset.range(3).cache(ctx.file()))
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) + 0 * total, name="y")])


@case(
    "tf1",
    "pb",
    "write",
    ["SnapshotDatasetV2"],
    "file",
    "Dataset.snapshot(TARGET dir) consumed by ReduceDataset",
    proof="file",
)
@in_graph
def snapshot_dataset_pb(tf, ctx):
    x = placeholder(tf)
    total = reduce_sum(tf, tf.data.Dataset.range(3).snapshot(ctx.file()))
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) + 0 * total, name="y")])


@case(
    "tf1",
    "pb",
    "read",
    ["CSVDatasetV2"],
    "secret",
    "CsvDataset(SECRET) reduced into an output",
    proof="secret",
)
@in_graph
def csv_dataset_pb(tf, ctx):
    x = placeholder(tf)
    rows = tf.data.experimental.CsvDataset(str(ctx.secret), [tf.string], header=False)
    return pb(tf, ctx, x, [per_row(tf, x, reduce_join(tf, rows))])


@case(
    "tf1",
    "pb",
    "read",
    ["TFRecordDataset"],
    "secret",
    "TFRecordDataset(SECRET.tfrecord) reduced into an output",
    proof="secret",
)
@in_graph
def tfrecord_dataset_pb(tf, ctx):
    x = placeholder(tf)
    records = tf.data.TFRecordDataset(str(ctx.secret) + ".tfrecord")
    return pb(tf, ctx, x, [per_row(tf, x, reduce_join(tf, records))])


@case(
    "tf1",
    "pb",
    "read",
    ["FixedLengthRecordDatasetV2"],
    "secret",
    "FixedLengthRecordDataset(SECRET, record_bytes=1): any file, byte by byte",
    proof="secret",
)
@in_graph
def fixed_length_record_dataset_pb(tf, ctx):
    x = placeholder(tf)
    records = tf.data.FixedLengthRecordDataset(str(ctx.secret), 1)
    return pb(tf, ctx, x, [per_row(tf, x, reduce_join(tf, records))])


@case(
    "tf1",
    "pb",
    "read",
    ["TextLineDataset"],
    "secret",
    "TextLineDataset(SECRET) reduced into an output",
    proof="secret",
)
@in_graph
def text_line_dataset_pb(tf, ctx):
    x = placeholder(tf)
    lines = tf.data.TextLineDataset(str(ctx.secret))
    return pb(tf, ctx, x, [per_row(tf, x, reduce_join(tf, lines))])


@case(
    "tf1",
    "pb",
    "read",
    ["ImmutableConst"],
    "secret",
    "ImmutableConst(memory_region_name=SECRET) memory-maps the file into an output",
    proof="secret",
)
@in_graph
def immutable_const_pb(tf, ctx):
    x = placeholder(tf)
    size = os.path.getsize(ctx.secret)  # its size only: the writer never reads the secret
    data = tf.raw_ops.ImmutableConst(
        dtype=tf.uint8, shape=[size], memory_region_name=str(ctx.secret)
    )
    text = tf.strings.unicode_encode(tf.cast(data, tf.int32), "UTF-8")
    return pb(tf, ctx, x, [per_row(tf, x, text)])


@case(
    "tf1",
    "pb",
    "read",
    ["InitializeTableFromTextFileV2"],
    "secret",
    "a hash table initialised from SECRET (TextFileInitializer), looked up into an output",
    proof="secret",
)
@in_graph
def table_from_text_file_pb(tf, ctx):
    v1 = tf.compat.v1
    x = placeholder(tf)
    table = v1.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            str(ctx.secret),
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
        ),
        "",
    )
    line = guarded(tf, [table.initializer], lambda: table.lookup(tf.constant(0, tf.int64)))
    return pb(tf, ctx, x, [per_row(tf, x, line)])


@case(
    "tf1",
    "pb",
    "read",
    ["GenerateVocabRemapping"],
    "ran",
    "GenerateVocabRemapping reads SECRET as both vocab files (a membership oracle)",
)
@in_graph
def generate_vocab_remapping_pb(tf, ctx):
    x = placeholder(tf)
    _, present = tf.raw_ops.GenerateVocabRemapping(
        new_vocab_file=str(ctx.secret),
        old_vocab_file=str(ctx.secret),
        new_vocab_offset=0,
        num_new_vocab=1,
    )
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) * tf.cast(present, tf.float32), name="y")])


@case(
    "tf1",
    "pb",
    "read",
    ["LoadAndRemapMatrix"],
    "ran",
    "LoadAndRemapMatrix reads another model's weights (benign_checkpoint) off the disk",
)
@in_graph
def load_and_remap_matrix_pb(tf, ctx):
    x = placeholder(tf)
    stolen = tf.raw_ops.LoadAndRemapMatrix(
        ckpt_path=str(ctx.root / "benign_checkpoint" / "ckpt" / "model.ckpt"),
        old_tensor_name="w",
        row_remapping=tf.range(4, dtype=tf.int64),
        col_remapping=tf.constant([], tf.int64),
        initializing_values=tf.constant([], tf.float32),
        num_rows=4,
        num_cols=3,
    )
    return pb(tf, ctx, x, [tf.nn.softmax(tf.matmul(x, stolen), name="y")])


@case(
    "tf1",
    "pb",
    "read",
    ["DecodeProtoV2"],
    "attempt",
    "DecodeProtoV2 with descriptor_source=SECRET: the kernel reads the file",
)
@in_graph
def decode_proto_pb(tf, ctx):
    x = placeholder(tf)
    _, values = tf.raw_ops.DecodeProtoV2(
        bytes=tf.constant([""]),
        message_type="tensorflow.Example",
        field_names=["features"],
        output_types=[tf.string],
        descriptor_source=str(ctx.secret),
    )
    n = tf.cast(tf.size(values[0]), tf.float32)
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) + n, name="y")])


@case(
    "tf1",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile inside a v1 tf.while_loop body (Enter/Exit frame)",
    proof="file",
)
@in_graph
def while_v1_body_pb(tf, ctx):
    x = placeholder(tf)

    def body(i):
        return guarded(tf, [tf.io.write_file(ctx.file(), "pwned")], lambda: i + 1)

    n = tf.while_loop(lambda i: i < 1, body, [tf.constant(0)])
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) * tf.cast(n, tf.float32), name="y")])


@case(
    "tf1",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile inside the taken branch of a v1 tf.cond (Switch/Merge)",
    proof="file",
)
@in_graph
def cond_v1_branch_pb(tf, ctx):
    x = placeholder(tf)

    def taken():
        return guarded(tf, [tf.io.write_file(ctx.file(), "pwned")], lambda: tf.identity(x))

    h = tf.cond(tf.reduce_sum(x) < 1e30, taken, lambda: tf.identity(x))
    return pb(tf, ctx, x, [dense(tf, h, name="y")])


@case(
    "tf1",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile reached only through a chain of control dependencies (NoOp -> NoOp -> group)",
    proof="file",
)
@in_graph
def control_dependency_chain_pb(tf, ctx):
    x = placeholder(tf)
    step = tf.group(tf.io.write_file(ctx.file(), "pwned"), name="warmup")
    for i in range(3):
        step = guarded(tf, [step], lambda i=i: tf.no_op(name=f"barrier_{i}"))
    return pb(tf, ctx, x, [guarded(tf, [step], lambda: dense(tf, x))])


# -- frozen .pb, TF2 graphs: functions and v2 control flow ----------------------------------


def _writing_function(tf, path):
    @tf.function
    def calibrate(x):
        with tf.control_dependencies([tf.io.write_file(path, "pwned")]):
            return tf.identity(x)

    return calibrate


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile hidden in a tf.function body (StatefulPartitionedCall), evaluate's node names",
    proof="file",
)
@in_graph
def function_body_pb(tf, ctx):
    x = placeholder(tf, 64, "input_holder")
    h = _writing_function(tf, ctx.file())(x)
    return pb(tf, ctx, x, evaluate_outputs(tf, h), (2, 64))


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "the tf.function call op renamed StatefulPartitionedCall -> PartitionedCall",
    proof="file",
)
@in_graph
def partitioned_call_pb(tf, ctx):
    x = placeholder(tf)
    h = _writing_function(tf, ctx.file())(x)
    y = dense(tf, h, name="y")
    graph_def = x.graph.as_graph_def()
    for node in graph_def.node:
        if node.op == "StatefulPartitionedCall":
            node.op = "PartitionedCall"
    return pb(tf, ctx, x, [y], graph_def=graph_def)


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "the library function called by its name as the node's op (no call op at all)",
    proof="file",
)
@in_graph
def function_as_op_pb(tf, ctx):
    x = placeholder(tf)
    h = _writing_function(tf, ctx.file())(x)
    y = dense(tf, h, name="y")
    graph_def = x.graph.as_graph_def()
    for node in graph_def.node:
        if node.op == "StatefulPartitionedCall":
            node.op = node.attr["f"].func.name
            for key in list(node.attr):
                del node.attr[key]
    return pb(tf, ctx, x, [y], graph_def=graph_def)


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile in the body function of a v2 While",
    proof="file",
)
@in_graph
def while_v2_body_pb(tf, ctx):
    x = placeholder(tf)

    def body(i):
        return guarded(tf, [tf.io.write_file(ctx.file(), "pwned")], lambda: i + 1)

    n = tf.while_loop(lambda i: i < 1, body, [tf.constant(0)])
    return pb(tf, ctx, x, [tf.identity(dense(tf, x) * tf.cast(n, tf.float32), name="y")])


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile in the taken branch function of a v2 If",
    proof="file",
)
@in_graph
def cond_v2_branch_pb(tf, ctx):
    x = placeholder(tf)

    def taken():
        return guarded(tf, [tf.io.write_file(ctx.file(), "pwned")], lambda: tf.identity(x))

    h = tf.cond(tf.reduce_sum(x) < 1e30, taken, lambda: tf.identity(x))
    return pb(tf, ctx, x, [dense(tf, h, name="y")])


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile in a branch of a v2 Case (tf.switch_case: a list(func) attr)",
    proof="file",
)
@in_graph
def switch_case_branch_pb(tf, ctx):
    x = placeholder(tf)

    def branch():
        return guarded(tf, [tf.io.write_file(ctx.file(), "pwned")], lambda: tf.identity(x))

    index = tf.cast(tf.reduce_sum(x) < 1e30, tf.int32)
    h = tf.switch_case(index, [lambda: tf.identity(x), branch])
    return pb(tf, ctx, x, [dense(tf, h, name="y")])


@case(
    "tf2",
    "pb",
    "write",
    ["WriteFile"],
    "file",
    "WriteFile three calls deep: tf.function -> If branch -> tf.function",
    proof="file",
)
@in_graph
def nested_functions_pb(tf, ctx):
    x = placeholder(tf)
    inner = _writing_function(tf, ctx.file())

    @tf.function
    def outer(v):
        return tf.cond(tf.reduce_sum(v) < 1e30, lambda: inner(v), lambda: tf.identity(v))

    return pb(tf, ctx, x, [dense(tf, outer(x), name="y")])


# -- TF1 checkpoints: the restore op is the model's code ------------------------------------


def _ckpt_graph(tf):
    v1 = tf.compat.v1
    x = placeholder(tf)
    w = v1.get_variable("w", initializer=tf.constant(weights(4, 3)))
    return x, tf.nn.softmax(tf.matmul(x, w), name="probs")


@case(
    "tf1",
    "checkpoint",
    "write",
    ["WriteFile"],
    "file",
    "saver_def.restore_op_name points at group(restore_all, WriteFile)",
)
def restore_op_write_file_checkpoint(tf, ctx):
    graph = tf.Graph()
    with graph.as_default():
        x, y = _ckpt_graph(tf)
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        restore = graph.get_operation_by_name(saver.saver_def.restore_op_name)
        evil = tf.group(restore, tf.io.write_file(ctx.file(), "pwned"), name="save/restore_evil")
        saver.saver_def.restore_op_name = evil.name
        return save_checkpoint(tf, ctx, graph, saver, x, [y])


@case(
    "tf1",
    "checkpoint",
    "write",
    ["SaveV2"],
    "file",
    "the restore op also runs a SaveV2 into TARGET (not the checkpoint's own save)",
)
def restore_op_save_v2_checkpoint(tf, ctx):
    graph = tf.Graph()
    with graph.as_default():
        x, y = _ckpt_graph(tf)
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        restore = graph.get_operation_by_name(saver.saver_def.restore_op_name)
        save = tf.raw_ops.SaveV2(
            prefix=ctx.file(),
            tensor_names=["stolen"],
            shape_and_slices=[""],
            tensors=[tf.constant([1.0])],
        )
        evil = tf.group(restore, save, name="save/restore_evil")
        saver.saver_def.restore_op_name = evil.name
        return save_checkpoint(tf, ctx, graph, saver, x, [y])


@case(
    "tf1",
    "checkpoint",
    "write",
    ["WriteFile"],
    "file",
    "standard restore_op_name, but save/RestoreV2 has a control input on WriteFile",
)
def restore_control_input_checkpoint(tf, ctx):
    graph = tf.Graph()
    with graph.as_default():
        x, y = _ckpt_graph(tf)
        write = tf.io.write_file(ctx.file(), "pwned")
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        graph.get_operation_by_name("save/RestoreV2")._add_control_input(write)
        return save_checkpoint(tf, ctx, graph, saver, x, [y])


@case(
    "tf1",
    "checkpoint",
    "read",
    ["ReadFile"],
    "secret",
    "a checkpoint whose output node is ReadFile(SECRET) per row (freeze would bake it in)",
)
def read_output_checkpoint(tf, ctx):
    graph = tf.Graph()
    with graph.as_default():
        x, _ = _ckpt_graph(tf)
        leak = per_row(tf, x, tf.io.read_file(str(ctx.secret)), name="leak")
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        return save_checkpoint(tf, ctx, graph, saver, x, [leak])


# -- TF1 SavedModels (SavedModelBuilder) ----------------------------------------------------


def _tf1_saved_model(tf, ctx, outputs_fn, saver_fn=None, **builder_args) -> dict:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x, y = _ckpt_graph(tf)
        outputs = outputs_fn(x, y)
        extra = {k: f(graph) for k, f in builder_args.items()}
        saver = saver_fn(graph) if saver_fn else None
        signature = v1.saved_model.signature_def_utils.predict_signature_def({"x": x}, outputs)
        builder = v1.saved_model.Builder(str(ctx.out / "saved"))
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder.add_meta_graph_and_variables(
                sess,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": signature},
                saver=saver,
                **extra,
            )
        builder.save()
    return {
        "path": "saved",
        "input": "x",
        "outputs": sorted(outputs),
        "shape": [2, 4],
        "dtype": "float32",
    }


@case(
    "tf1",
    "saved_model",
    "write",
    ["WriteFile"],
    "file",
    "SavedModelBuilder main_op = group(tables_initializer, WriteFile)",
)
def main_op_tf1_saved_model(tf, ctx):
    return _tf1_saved_model(
        tf,
        ctx,
        lambda x, y: {"probs": y},
        main_op=lambda g: tf.group(
            tf.compat.v1.tables_initializer(), tf.io.write_file(ctx.file(), "pwned")
        ),
    )


@case(
    "tf1",
    "saved_model",
    "write",
    ["WriteFile"],
    "file",
    "SavedModelBuilder legacy_init_op writes a file",
)
def legacy_init_op_tf1_saved_model(tf, ctx):
    return _tf1_saved_model(
        tf,
        ctx,
        lambda x, y: {"probs": y},
        legacy_init_op=lambda g: tf.group(tf.io.write_file(ctx.file(), "pwned")),
    )


@case(
    "tf1",
    "saved_model",
    "write",
    ["WriteFile"],
    "file",
    "a TF1 SavedModel whose saver's restore_op_name also runs WriteFile",
)
def restore_op_tf1_saved_model(tf, ctx):
    def evil_saver(graph):
        saver = tf.compat.v1.train.Saver()
        restore = graph.get_operation_by_name(saver.saver_def.restore_op_name)
        evil = tf.group(restore, tf.io.write_file(ctx.file(), "pwned"), name="save/restore_evil")
        saver.saver_def.restore_op_name = evil.name
        return saver

    return _tf1_saved_model(tf, ctx, lambda x, y: {"probs": y}, saver_fn=evil_saver)


@case(
    "tf1",
    "saved_model",
    "read",
    ["ReadFile"],
    "secret",
    "a TF1 SavedModel whose serving signature has an output ReadFile(SECRET)",
)
def signature_read_tf1_saved_model(tf, ctx):
    return _tf1_saved_model(
        tf,
        ctx,
        lambda x, y: {"probs": y, "leak": per_row(tf, x, tf.io.read_file(str(ctx.secret)))},
    )


# -- TF2 SavedModels (tf.saved_model.save of a tf.Module) -----------------------------------


def _tf2_saved_model(tf, ctx, module, outputs) -> dict:
    tf.saved_model.save(
        module, str(ctx.out / "saved"), signatures={"serving_default": module.serve}
    )
    return {
        "path": "saved",
        "input": "x",
        "outputs": sorted(outputs),
        "shape": [2, 4],
        "dtype": "float32",
    }


def _resource_class(tf, initialize):
    """A TrackableResource (a hash table) whose ``_initialize``, run by the loader on every
    load, is ``initialize(handle)``. The handle is created eagerly (harmless); the
    initialiser never runs here."""

    class Resource(tf.saved_model.experimental.TrackableResource):
        def __init__(self):
            super().__init__()
            self.resource_handle  # noqa: B018 -- create it now, not inside a trace

        def _create_resource(self):
            return tf.raw_ops.HashTableV2(
                key_dtype=tf.int64, value_dtype=tf.string, shared_name=f"hostile_{uuid.uuid4().hex}"
            )

        def _initialize(self):
            return initialize(self.resource_handle)

    return Resource


def _module(tf, resource=None, leak=False):
    spec = tf.TensorSpec([None, 4], tf.float32, name="x")

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(weights(4, 3))
            if resource is not None:
                self.table = resource()

        @tf.function(input_signature=[spec])
        def serve(self, x):
            out = {"probs": tf.nn.softmax(tf.matmul(x, self.w))}
            if leak:
                line = tf.raw_ops.LookupTableFindV2(
                    table_handle=self.table.resource_handle,
                    keys=tf.constant(0, tf.int64),
                    default_value="",
                )
                out["leak"] = per_row(tf, x, line, name="leak")
            return out

    return Module()


@case(
    "tf2",
    "saved_model",
    "write",
    ["WriteFile"],
    "file",
    "tf.Module with a TrackableResource whose initializer (run by the loader) writes a file",
)
def resource_init_tf2_saved_model(tf, ctx):
    path = ctx.file()

    def initialize(handle):
        return tf.io.write_file(path, "pwned")

    return _tf2_saved_model(tf, ctx, _module(tf, _resource_class(tf, initialize)), ["probs"])


@case(
    "tf2",
    "saved_model",
    "read",
    ["InitializeTableFromTextFileV2"],
    "secret",
    "a hash table initialised on load from SECRET (no asset: the absolute path), output 'leak'",
)
def table_secret_tf2_saved_model(tf, ctx):
    secret = str(ctx.secret)

    def initialize(handle):
        return tf.raw_ops.InitializeTableFromTextFileV2(
            table_handle=handle, filename=tf.constant(secret), key_index=-1, value_index=-2
        )

    module = _module(tf, _resource_class(tf, initialize), leak=True)
    return _tf2_saved_model(tf, ctx, module, ["leak", "probs"])


@case(
    "tf2",
    "saved_model",
    "write",
    ["WriteFile"],
    "file",
    "the serving signature's function writes a file before returning probs",
)
def signature_write_tf2_saved_model(tf, ctx):
    path = ctx.file()
    spec = tf.TensorSpec([None, 4], tf.float32, name="x")

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(weights(4, 3))

        @tf.function(input_signature=[spec])
        def serve(self, x):
            with tf.control_dependencies([tf.io.write_file(path, "pwned")]):
                return {"probs": tf.nn.softmax(tf.matmul(x, self.w))}

    return _tf2_saved_model(tf, ctx, Module(), ["probs"])


@case(
    "tf2",
    "saved_model",
    "execute",
    ["EagerPyFunc"],
    "file",
    "the serving signature calls tf.py_function (body lost on save: refuse the op itself)",
)
def py_function_tf2_saved_model(tf, ctx):
    path = ctx.file()
    spec = tf.TensorSpec([None, 4], tf.float32, name="x")

    def body():
        Path(path).write_text("pwned")
        return np.float32(0)

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(weights(4, 3))

        @tf.function(input_signature=[spec])
        def serve(self, x):
            hook = tf.py_function(body, [], tf.float32)
            return {"probs": tf.nn.softmax(tf.matmul(x, self.w)) + 0 * hook}

    return _tf2_saved_model(tf, ctx, Module(), ["probs"])


# -- building, checking, verifying ----------------------------------------------------------


def graph_ops(tf, out: Path, spec: dict) -> set[str]:
    """Every op type in the artifact's graph, library functions included."""
    path = out / spec["path"]
    if spec["kind"] == "pb":
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(path.read_bytes())
    elif spec["kind"] == "checkpoint":
        meta = tf.compat.v1.MetaGraphDef()
        meta.ParseFromString((path / "model.ckpt.meta").read_bytes())
        graph_def = meta.graph_def
    else:
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((path / "saved_model.pb").read_bytes())
        graph_def = saved.meta_graphs[0].graph_def
    ops = {n.op for n in graph_def.node}
    for function in graph_def.library.function:
        ops.update(n.op for n in function.node_def)
    return ops


def build(tf, c: Case, ctx: Ctx) -> dict:
    if ctx.out.exists():
        shutil.rmtree(ctx.out)
    ctx.out.mkdir(parents=True)
    spec = {
        "name": c.name,
        "mode": c.mode,
        "kind": c.kind,
        "attack": c.attack,
        "ops": list(c.ops),
        "what": c.what,
        "evidence": c.evidence,
        "proof": c.proof,
        "benign": c.benign,
        **c.build(tf, ctx),
    }
    missing = set(c.ops) - graph_ops(tf, ctx.out, spec)
    assert not missing, f"{c.name}: the graph has no {sorted(missing)}"
    (ctx.out / "spec.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    return spec


@contextmanager
def captured_fds(where: Path):
    """fd 1 and 2 into files under ``where`` (C++ prints go there); yields a reader."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: open(where / f"fd{fd}", "w+b") for fd in (1, 2)}  # noqa: SIM115
    for fd, f in files.items():
        os.dup2(f.fileno(), fd)
    text = {}
    try:
        yield text
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, f in files.items():
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            f.seek(0)
            text[fd] = f.read().decode(errors="replace")
            f.close()


def run_artifact(tf, mode: str, out: Path, spec: dict):
    """Run the model the way a user would; returns fetched values (a list)."""
    v1 = tf.compat.v1
    x = np.ones(spec["shape"], np.float32)
    path = out / spec["path"]
    if spec["kind"] == "saved_model" and mode == "tf2":
        loaded = tf.saved_model.load(str(path))
        result = loaded.signatures["serving_default"](x=tf.constant(x))
        return [result[k].numpy() for k in spec["outputs"]]
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        if spec["kind"] == "pb":
            graph_def = v1.GraphDef()
            graph_def.ParseFromString(path.read_bytes())
            tf.import_graph_def(graph_def, name="")
            feed, fetch = f"{spec['input']}:0", [f"{o}:0" for o in spec["outputs"]]
        elif spec["kind"] == "checkpoint":
            prefix = str(path / "model.ckpt")
            v1.train.import_meta_graph(prefix + ".meta").restore(sess, prefix)
            feed, fetch = f"{spec['input']}:0", [f"{o}:0" for o in spec["outputs"]]
        else:
            meta = v1.saved_model.loader.load(sess, ["serve"], str(path))
            signature = meta.signature_def["serving_default"]
            feed = signature.inputs[spec["input"]].name
            fetch = [signature.outputs[o].name for o in spec["outputs"]]
        return sess.run(fetch, {feed: x})


def verify(tf, c: Case, mode: str, scratch: Path) -> str:
    """Build ``c`` against a scratch target and secret, run it, check its evidence."""
    target, secret = scratch / "target", scratch / "secret.txt"
    ctx = Ctx(c.name, scratch / "models" / c.name, scratch / "models", target, secret)
    spec = build(tf, c, ctx)
    before = set(os.listdir(target))
    values, error = None, None
    with captured_fds(scratch) as fds:
        try:
            values = run_artifact(tf, mode, ctx.out, spec)
        except Exception as e:  # the error is evidence too
            error = str(e)
    text = "\n".join(
        [error or "", fds.get(1, ""), fds.get(2, "")]
        + [
            (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
            for value in (values or [])
            for v in np.asarray(value, dtype=object).ravel()
        ]
    )
    made = sorted(n for n in set(os.listdir(target)) - before if n.startswith(c.name))
    secret_text = secret.read_text()
    ok = {
        "file": bool(made),
        "secret": secret_text in text,
        "name": secret.name in text,
        "ran": error is None,
        "attempt": error is not None and "file descriptor set" in error,
    }[c.evidence]
    if c.benign:
        ok = error is None and not made and secret_text not in text
    if not ok:
        raise AssertionError(
            f"{c.name}: running it did not show its evidence '{c.evidence}' "
            f"(made {made}, error {(error or '')[:300]!r})"
        )
    return f"{c.evidence}: {', '.join(made)}" if made else c.evidence


def main(argv: list[str]) -> None:
    args = [a for a in argv if not a.startswith("--")]
    out_root, target, secret, mode = Path(args[0]), Path(args[1]), Path(args[2]), args[3]
    assert mode in ("tf1", "tf2"), mode
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if mode == "tf1":
        tf.compat.v1.disable_v2_behavior()
    cases = [c for c in CASES.values() if c.mode == mode]
    verified = {}
    if "--no-verify" not in argv:
        scratch = out_root / f".verify-{mode}"
        (scratch / "target").mkdir(parents=True)
        (scratch / "secret.txt").write_text(f"verify-secret-{uuid.uuid4().hex}")
        with tf.io.TFRecordWriter(str(scratch / "secret.txt.tfrecord")) as w:
            w.write((scratch / "secret.txt").read_bytes())
        try:
            for c in cases:
                verified[c.name] = verify(tf, c, mode, scratch)
        finally:
            shutil.rmtree(scratch)
    for c in cases:
        ctx = Ctx(c.name, out_root / c.name, out_root, target, secret)
        build(tf, c, ctx)
        print(f"{c.name}: {c.kind} {c.attack} {','.join(c.ops)}: {verified.get(c.name, '-')}")


if __name__ == "__main__":
    main(sys.argv[1:])
