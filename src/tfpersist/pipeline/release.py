"""The release checkpoint: a clean inference graph restored from a training checkpoint.

Clean means: training flag pinned off (the graph is built with ``training=False``, so there
is no dropout and no switch at all), no optimizer, no slot variables, no global step, no
device strings. The directory holds exactly ``checkpoint``, ``model.ckpt.index``,
``model.ckpt.data-00000-of-00001``, ``model.ckpt.meta`` and ``signature.json``.
"""

from __future__ import annotations

from pathlib import Path

from tfpersist.core import atomic, layout
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import checkpoints
from tfpersist.graph import signature
from tfpersist.pipeline import model as model_lib
from tfpersist.pipeline.params import ModelParams
from tfpersist.tables.data import Schema
from tfpersist.tfapi.tfcompat import import_tf, session_config

tf = import_tf()
v1 = tf.compat.v1


def export_inference_checkpoint(
    source: str | Path, out_dir: str | Path, model: ModelParams, schema: Schema
) -> dict:
    """Restore ``source`` (dir or prefix) into the inference graph and save it to ``out_dir``.

    Returns the signature (also written to ``out_dir/signature.json``).
    """
    prefix = checkpoints.resolve(source)
    graph, _, _ = model_lib.inference_graph(model, len(schema.features), schema.num_classes)
    with graph.as_default():
        saver = v1.train.Saver(save_relative_paths=True)
    reader = tf.train.load_checkpoint(str(prefix))
    stored = reader.get_variable_to_shape_map()
    for var in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
        name = var.op.name
        if name not in stored or stored[name] != var.shape.as_list():
            found = "missing" if name not in stored else f"shape {stored[name]}"
            raise TfpersistError(
                f"{prefix}: variable '{name}' {var.shape.as_list()} is {found} there; was it "
                f"trained with a different model.arch or sizes? (now: model.arch={model.arch})"
            )
    sig = signature.describe(graph, [model.input_node], model.output_nodes)
    sig.update(features=schema.features, label=schema.label, num_classes=schema.num_classes)
    with v1.Session(graph=graph, config=session_config(1)) as sess:
        saver.restore(sess, str(prefix))
        with atomic.replace_dir(out_dir) as tmp:
            path = checkpoints.save(sess, saver, tmp / layout.CHECKPOINT_PREFIX)
            checkpoints.write_state(tmp, [path])
            atomic.write_json(tmp / layout.SIGNATURE, sig)
    return sig
