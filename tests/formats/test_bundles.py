"""bundles.py: checkpoints read without TensorFlow, held to TensorFlow's own reader
(``tf.train.load_checkpoint``) on the checkpoints TensorFlow writes, and corrupt ones refused
in one line."""

from __future__ import annotations

import numpy as np
import pytest

from tfpersist import cli
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import bundles


def assert_reads_like_tensorflow(tf, prefix) -> int:
    """Every variable's dtype and shape as TensorFlow maps them, and its values (a
    partitioned variable's put together from its slices)."""
    theirs = tf.train.load_checkpoint(str(prefix))
    shapes, types = theirs.get_variable_to_shape_map(), theirs.get_variable_to_dtype_map()
    ours = bundles.Bundle(prefix)
    assert ours.variables() == {k: (types[k].name, list(shapes[k])) for k in shapes}
    for name in shapes:
        want, got = theirs.get_tensor(name), ours.read(name)
        assert got.shape == np.shape(want), name
        if types[name].name == "string":  # get_tensor's NumPy bytes drop trailing NULs:
            (exact,) = tf.raw_ops.RestoreV2(  # the restore op's tensor keeps them
                prefix=str(prefix), tensor_names=[name], shape_and_slices=[""], dtypes=[tf.string]
            )
            assert bool(tf.reduce_all(exact == tf.constant(got, tf.string))), name
        else:
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), name
    return len(shapes)


@pytest.fixture(scope="module")
def tf1_checkpoint(tf, tmp_path_factory):
    """A TF1 Saver checkpoint of every kind of tensor a model holds."""
    v1 = tf.compat.v1
    rng = np.random.default_rng(0)
    values = {
        "float32": rng.standard_normal((3, 4)).astype(np.float32),
        "float64": rng.standard_normal(5),
        "float16": rng.standard_normal(7).astype(np.float16),
        "int8": np.arange(-3, 3, dtype=np.int8),
        "int16": np.arange(4, dtype=np.int16),
        "int32": np.array(7, np.int32),  # a scalar
        "int64": np.array([2**40, -1], np.int64),
        "uint8": np.arange(9, dtype=np.uint8).reshape(3, 3),
        "uint16": np.array([65535], np.uint16),
        "bool": np.array([True, False, True]),
        "complex64": np.array([1 + 2j, -3j], np.complex64),
        "complex128": np.array([0.5 - 1j]),
        "empty": np.zeros((0, 3), np.float32),
        "big": rng.standard_normal(300_000).astype(np.float32),  # several data blocks' worth
    }
    prefix = tmp_path_factory.mktemp("tf1") / "model.ckpt"
    with tf.Graph().as_default(), v1.Session() as sess:
        for name, value in values.items():
            v1.get_variable(name, initializer=tf.constant(value))
        v1.get_variable("bfloat16", initializer=tf.constant([1.5, -2.25], tf.bfloat16))
        strings = ["", "ascii", "ünïcödé", "x" * 300, "\0nul"]
        v1.get_variable("strings", initializer=tf.constant(strings), dtype=tf.string)
        for i in range(40):  # many keys: several index blocks, prefix-compressed
            v1.get_variable(f"scope_{i:02d}/deep/name/kernel", initializer=[float(i)])
        v1.get_variable("parts", shape=[10, 4], partitioner=v1.fixed_size_partitioner(3))
        # along the second axis, at starts past one byte of ordered code (0, 67, 134, …)
        v1.get_variable("wide", shape=[2, 400], partitioner=v1.fixed_size_partitioner(6, 1))
        sess.run(v1.global_variables_initializer())
        v1.train.Saver().save(sess, str(prefix))
    return prefix


def test_a_tf1_checkpoint_reads_as_tensorflow_reads_it(tf, tf1_checkpoint):
    count = assert_reads_like_tensorflow(tf, tf1_checkpoint)
    assert count == 14 + 2 + 40 + 2


def test_tf2_and_sharded_checkpoints_read_as_tensorflow_reads_them(tf, tmp_path):
    # TF2 object-based: the object graph is a string tensor
    checkpoint = tf.train.Checkpoint(
        v=tf.Variable([1.0, 2.0]), s=tf.Variable("text"), step=tf.Variable(3, dtype=tf.int64)
    )
    assert assert_reads_like_tensorflow(tf, checkpoint.write(str(tmp_path / "tf2"))) == 4
    # a sharded save over two devices: two .data files
    v1 = tf.compat.v1
    config = v1.ConfigProto(device_count={"CPU": 2})
    with tf.Graph().as_default(), v1.Session(config=config) as sess:
        for i in range(2):
            with tf.device(f"/cpu:{i}"):
                v1.get_variable(f"w{i}", initializer=np.full(5, i + 0.5, np.float32))
        sess.run(v1.global_variables_initializer())
        prefix = v1.train.Saver(sharded=True).save(sess, str(tmp_path / "sharded"))
    assert len(list(tmp_path.glob("sharded.data-*"))) == 2
    assert bundles.Bundle(prefix).header.num_shards == 2
    assert assert_reads_like_tensorflow(tf, prefix) == 2


def corrupted(tmp_path, source, suffix: str, change) -> str:
    """A copy of the checkpoint ``source`` with the file ending in ``suffix`` changed."""
    import shutil

    for path in source.parent.glob(f"{source.name}.*"):
        shutil.copy(path, tmp_path / path.name)
    target = next(tmp_path.glob(f"{source.name}{suffix}"))
    target.write_bytes(change(target.read_bytes()))
    return str(tmp_path / source.name)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


@pytest.mark.parametrize(
    "suffix,change,error",
    [
        (".index", lambda b: flip(b, 20), "checksum does not match"),
        (".index", lambda b: b[:-10], "no table footer"),
        (".index", lambda b: b"\0" * 100, "no table footer"),
        (".index", lambda b: b"", "no table footer"),
        (".data-*", lambda b: flip(b, 4), "does not match its checksum"),
        (".data-*", lambda b: b[:100], "past the end of the file"),
    ],
    ids=["index-bit", "index-cut", "index-zeros", "index-empty", "data-bit", "data-cut"],
)
def test_a_corrupt_checkpoint_is_refused_in_one_line(
    tf1_checkpoint, tmp_path, suffix, change, error, capsys
):
    prefix = corrupted(tmp_path, tf1_checkpoint, suffix, change)
    with pytest.raises(TfpersistError, match=error):
        bundle = bundles.Bundle(prefix)
        for name in bundle.entries:
            if name != "parts":
                bundle.read(name)
    if suffix == ".index":  # inspect reads the index alone: it says so, nothing else
        (tmp_path / "model.ckpt.meta").write_bytes(
            tf1_checkpoint.with_suffix(".ckpt.meta").read_bytes()
        )
        assert cli.main(["inspect", prefix]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and error in err, err


NO_TENSORFLOW = """
import contextlib, io, json, sys
from tfpersist import cli
answers = {}
for path in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["inspect", "--json", path])
    answers[path] = (code, json.loads(out.getvalue())["format"])
print(json.dumps({"tensorflow": sorted(m for m in sys.modules if m.startswith("tensorflow.")
                                       and not m.endswith("_pb2")), "answers": answers}))
"""


def test_inspect_imports_no_tensorflow(tf, tf1_checkpoint, tmp_path):
    """inspect of each TensorFlow format, in a fresh process: no module of TensorFlow's is
    imported but the generated messages (protos.py)."""
    import json
    import subprocess
    import sys

    from conftest import ROOT, env

    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        tf.identity(x * 2.0, name="y")
    (tmp_path / "model.pb").write_bytes(graph.as_graph_def().SerializeToString())
    module = tf.Module()
    module.w = tf.Variable([1.0, 2.0])
    module.f = tf.function(lambda x: x * module.w, input_signature=[tf.TensorSpec([2])])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    tf2 = tf.train.Checkpoint(w=tf.Variable(1.0)).write(str(tmp_path / "tf2" / "ckpt"))
    paths = [str(tmp_path / "model.pb"), str(tf1_checkpoint), str(tmp_path / "saved"), tf2]
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, *paths],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tensorflow"] == [], report["tensorflow"][:10]
    formats = [report["answers"][p] for p in paths]
    assert formats == [
        [0, "frozen GraphDef"],
        [0, "TF1 checkpoint"],
        [0, "SavedModel"],
        [0, "TF2 object-based checkpoint"],
    ], formats


def test_a_v1_format_checkpoint_is_read_by_tensorflow_and_inspected(tf, tmp_path, capsys):
    """Saver(write_version=V1) writes one file and no .index: its tensors come from
    TensorFlow's reader behind the same calls, and inspect lists them."""
    v1 = tf.compat.v1
    prefix = tmp_path / "model.ckpt"
    with tf.Graph().as_default(), v1.Session() as sess:
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.get_variable("w", initializer=np.float32([[1.0], [2.0]]), use_resource=False)
        tf.matmul(x, w, name="y")
        sess.run(v1.global_variables_initializer())
        v1.train.Saver(write_version=v1.train.SaverDef.V1).save(sess, str(prefix))
    assert not (tmp_path / "model.ckpt.index").exists()
    reader = bundles.reader(prefix)
    assert reader.variables() == {"w": ("float32", [2, 1])}
    assert reader.read("w").tolist() == [[1.0], [2.0]]
    assert cli.main(["inspect", str(tmp_path), "--json"]) == 0
    assert '"name": "w"' in capsys.readouterr().out
