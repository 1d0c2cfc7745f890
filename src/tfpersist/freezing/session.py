"""Freezing through a TensorFlow session: where the checkpoint files alone cannot say what
the graph computes (a V1-format checkpoint, partitioned or function-captured variables, a
SavedModel's restore function or init op, refs an op may write).

The graph is imported, its variables restored as the checkpoint's saver maps them
(restore.py, never running its restore op), then ``convert_variables_to_constants`` folds
them in. This is the one module of freezing that imports TensorFlow's Python layer.
"""

from __future__ import annotations

from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.formats import checkpoints
from tfpersist.freezing import restore
from tfpersist.graph import graphdefs, surgery
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()
v1 = tf.compat.v1


def freeze_source(source):
    """Restore the variables of ``source`` (a freeze.Source) and fold them into constants;
    the nodes come out in the pruned graph's order."""
    prefix, saver_def, names = source.prefix, source.saver_def, source.names
    if not surgery.variables(source.pruned):
        return surgery.finish(source.pruned, source.what)
    if not saver_def or not saver_def.restore_op_name:
        raise TfpersistError(f"{source.what}: has no saver; cannot restore its variables")
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.import_graph_def(source.graph_def, name="")
        except (ValueError, TypeError) as e:
            raise TfpersistError(
                f"{source.what}: the graph does not import ({first_line(e)})"
            ) from None
        with v1.Session(graph=graph) as sess:
            variables = [n.name for n in source.pruned.node if n.op in surgery.VARIABLE_OPS]
            try:
                keys = restore.saver_keys(source.graph_def, saver_def)
                if keys is not None:
                    restore.restore(sess, keys, prefix, variables)
                else:  # a TF2 SavedModel's restore function (checked before freezing)
                    restore_op = op_name(saver_def.restore_op_name)
                    sess.run(restore_op, {saver_def.filename_tensor_name: str(prefix)})
            except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: short .data
                raise checkpoints.unreadable(prefix, e) from None
            if source.init_op:
                try:
                    sess.run(source.init_op)
                except (tf.errors.OpError, ValueError) as e:
                    raise TfpersistError(
                        f"{source.what}: its init op '{source.init_op}' fails ({first_line(e)})"
                    ) from None
            frozen = freeze_session(sess, names, source.what)
    return _ordered_like(frozen, source.pruned)


def _ordered_like(graph_def, reference):
    """``graph_def``'s nodes in ``reference``'s order (a session re-sorts them on import):
    the session path then writes the bytes the streaming path writes."""
    rank = {n.name: i for i, n in enumerate(reference.node)}
    nodes = sorted(graph_def.node, key=lambda n: rank.get(n.name, len(rank)))
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    return graph_def


def freeze_session(sess, output_nodes: list[str] | str, what: str = "the session"):
    """Freeze a live session's graph: variables → constants, pruned to ``output_nodes``."""
    names = graphdefs.node_names(output_nodes)
    graph_def = sess.graph.as_graph_def()
    graphdefs.check_nodes(graph_def, names)
    try:
        frozen = v1.graph_util.convert_variables_to_constants(sess, graph_def, names)
    except (tf.errors.OpError, ValueError, TypeError, KeyError) as e:
        raise TfpersistError(
            f"{what}: cannot fold the variables into constants ({first_line(e)})"
        ) from None
    surgery.clear_devices(frozen)
    return surgery.finish(frozen, what)
