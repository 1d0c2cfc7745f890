"""The inference allowlist against TensorFlow's op registry, and the checks built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfpersist import safety
from tfpersist.core.errors import TfpersistError
from tfpersist.safety import allowlist


@pytest.fixture(scope="module")
def registered(tf) -> set[str]:
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return {op.name for op in ops.op}


def test_every_allowed_name_is_a_registered_op(registered):
    """A TF upgrade that renames or drops an allowed op fails here; a new op stays refused
    until it is added to its group (fail closed)."""
    assert len(allowlist.ALLOWED) > 900
    page = (Path(__file__).parents[2] / "docs" / "troubleshooting.md").read_text()
    assert f"ops.toml): {len(allowlist.ALLOWED)} ops" in page  # the count the guide quotes
    assert sorted(allowlist.ALLOWED - registered) == []
    assert sorted(set(safety.RISKS) - registered) == []


def test_file_network_and_python_ops_are_not_allowed():
    # TensorFlow's own saved_model_cli scan deny list is the floor.
    assert not {"ReadFile", "WriteFile", "PrintV2"} & allowlist.ALLOWED
    assert not set(safety.RISKS) & allowlist.ALLOWED
    assert not allowlist.EXCLUDED & allowlist.ALLOWED
    dangerous = {
        "PyFunc",
        "EagerPyFunc",
        "MatchingFiles",
        "SaveV2",
        "MergeV2Checkpoints",
        "ImmutableConst",
        "InitializeTableFromTextFileV2",
        "LoadAndRemapMatrix",
        "GenerateVocabRemapping",
        "RecordInput",
        "DecodeProtoV2",
        "DatasetToTFRecord",
        "CacheDatasetV2",
        "SnapshotDatasetV2",
        "CSVDatasetV2",
        "TFRecordDataset",
        "RemoteCall",
        "CollectiveReduceV2",
        "WriteSummary",
        "CreateSummaryFileWriter",
    }
    assert not dangerous & allowlist.ALLOWED


def test_risks_say_what_an_op_can_do():
    assert safety.risk("WriteFile") == "writes files"
    assert safety.risk("TFRecordDatasetV2") == "reads files"
    assert "tf.data" in safety.risk("MapDataset")
    assert safety.risk("SomethingNew") == "not an inference op"


def test_check_follows_function_bodies_and_names_what_to_allow(tf, tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.string, [], name="x")

        @tf.function
        def leak(s):
            tf.print(s, output_stream=f"file://{tmp_path / 'out.txt'}")
            return tf.strings.length(s)

        tf.identity(leak(x), name="y")
        tf.identity(tf.strings.length(x), name="z")
    graph_def = graph.as_graph_def()
    safety.check(graph_def, ["z"], "m")
    with pytest.raises(
        TfpersistError, match=r"m: refusing .*: PrintV2 \(writes to stderr or a file\)"
    ):
        safety.check(graph_def, ["y"], "m")
    with pytest.raises(TfpersistError, match="--allow-ops PrintV2"):
        safety.check(graph_def, ["y"], "m")
    safety.check(graph_def, ["y"], "m", safety.Trust.of(allow_ops=["PrintV2"]))
    safety.check(graph_def, ["y"], "m", safety.Trust.of(allow_unsafe_ops=True))
    assert not (tmp_path / "out.txt").exists()


def test_a_stage_s_trust_comes_from_the_environment():
    assert safety.Trust.from_env({}) == safety.TRUST_NOTHING
    named = safety.Trust.from_env({"TFPERSIST_ALLOW_OPS": "PrintV2, WriteFile,"})
    assert named == safety.Trust(False, frozenset({"PrintV2", "WriteFile"}))
    assert safety.Trust.from_env({"TFPERSIST_ALLOW_UNSAFE_OPS": "1"}).everything
    assert not safety.Trust.from_env({"TFPERSIST_ALLOW_UNSAFE_OPS": "yes"}).everything


def test_every_allowed_keras_class_is_keras_own_and_each_application_layer_is_named(tf):
    """The Keras allowlist against the installed Keras: every (module, class) entry is a class
    that module defines or exports, and the application layers are exactly the Layer classes
    Keras's applications define — named one by one, so a new one is a decision, not a default."""
    import importlib
    import inspect
    import pkgutil

    import keras
    from keras.src import applications

    from tfpersist.safety import keras_allowlist

    for module, names in keras_allowlist.CLASSES.items():
        found = importlib.import_module(module)
        for name in names:
            assert inspect.isclass(getattr(found, name, None)), f"{module}.{name}"
    defined = {}
    for info in pkgutil.iter_modules(applications.__path__, f"{applications.__name__}."):
        if info.name.endswith("_test"):
            continue  # Keras's own tests
        module = importlib.import_module(info.name)
        layers = {
            name
            for name, obj in vars(module).items()
            if inspect.isclass(obj)
            and issubclass(obj, keras.layers.Layer)
            and obj.__module__ == info.name
            and not issubclass(obj, keras.Model)
        }
        if layers:
            defined[info.name] = frozenset(layers)
    assert defined == keras_allowlist.APPLICATION_LAYERS
