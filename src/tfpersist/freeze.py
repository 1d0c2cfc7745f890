"""Freezing: a checkpoint's variables folded into constants, pruned to what the outputs need.

``import_meta_graph`` + restore + ``convert_variables_to_constants`` (which keeps only the
subgraph the output nodes depend on), devices cleared, and the GraphDef serialised
deterministically (same checkpoint → same bytes) and atomically.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter
from pathlib import Path

from tfpersist import atomic, checkpoints, signature
from tfpersist.errors import TfpersistError
from tfpersist.tfcompat import import_tf

tf = import_tf()
v1 = tf.compat.v1

PROTOBUF_LIMIT = 2**31 - 1


def node_names(names: list[str] | str) -> list[str]:
    """Accept ``a,b``, ``["a", "b:0"]`` or ``^a``: return op names, in order, without repeats."""
    if isinstance(names, str):
        names = names.split(",")
    result = []
    for name in names:
        name = name.strip().lstrip("^")
        if name.endswith(":0"):
            name = name[:-2]
        if name and name not in result:
            result.append(name)
    if not result:
        raise TfpersistError(
            "no output node names given; name the nodes to keep, e.g. 'predictions'"
        )
    return result


def check_nodes(graph_def, names: list[str], what: str = "output node") -> None:
    """Fail with the closest existing names when a node is not in ``graph_def``."""
    existing = [n.name for n in graph_def.node]
    known = set(existing)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, existing, n=3, cutoff=0.5)
            hint = (
                f"closest: {', '.join(close)}" if close else "run 'tfpersist inspect' to list nodes"
            )
            raise TfpersistError(f"{what} '{name}' is not in the graph ({hint})")


def freeze_checkpoint(source: str | Path, output_nodes: list[str] | str):
    """Freeze a checkpoint directory or prefix into a GraphDef keeping ``output_nodes``."""
    names = node_names(output_nodes)
    prefix = checkpoints.resolve(source)
    graph = tf.Graph()
    with graph.as_default():
        try:
            saver = v1.train.import_meta_graph(f"{prefix}.meta", clear_devices=True)
        except Exception as e:  # DecodeError, ValueError, KeyError: a broken or foreign .meta
            raise TfpersistError(
                f"{prefix}.meta: not a readable MetaGraphDef ({_first_line(e)})"
            ) from None
        if saver is None:
            raise TfpersistError(f"{prefix}.meta: the graph has no variables to restore")
        check_nodes(graph.as_graph_def(), names)
        with v1.Session(graph=graph) as sess:
            try:
                saver.restore(sess, str(prefix))
            except (tf.errors.OpError, ValueError) as e:
                raise TfpersistError(
                    f"{prefix}: cannot restore the checkpoint ({_first_line(e)}); "
                    ".index/.data are truncated, corrupted or from another graph"
                ) from None
            return freeze_session(sess, names)


def freeze_session(sess, output_nodes: list[str] | str):
    """Freeze a live session's graph: variables → constants, pruned to ``output_nodes``."""
    names = node_names(output_nodes)
    graph_def = sess.graph.as_graph_def()
    check_nodes(graph_def, names)
    frozen = v1.graph_util.convert_variables_to_constants(sess, graph_def, names)
    for node in frozen.node:
        node.device = ""
    return frozen


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:300]


def serialize(graph_def) -> bytes:
    """Deterministic bytes, or a clear error past protobuf's 2 GB limit."""
    size = graph_def.ByteSize()
    if size > PROTOBUF_LIMIT:
        raise TfpersistError(
            f"the frozen graph would be {size / 2**30:.1f} GiB, over protobuf's 2 GiB limit "
            "for a GraphDef; keep this model as a SavedModel or checkpoint instead"
        )
    return graph_def.SerializeToString(deterministic=True)


def read_graph_def(path: str | Path):
    """Parse a frozen .pb, or fail with one line saying why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TfpersistError(f"{path}: no such file; expected a frozen GraphDef (.pb)")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as e:  # google.protobuf.message.DecodeError
        raise TfpersistError(
            f"{path}: not a GraphDef (truncated or not a .pb file: {_first_line(e)})"
        ) from None
    if not graph_def.node:
        raise TfpersistError(f"{path}: holds no graph nodes; expected a frozen GraphDef (.pb)")
    return graph_def


def card(graph_def, data: bytes, output_nodes: list[str]) -> dict:
    """The small JSON card written beside a frozen model."""
    params = 0
    param_bytes = 0
    for node in graph_def.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        dtype = tf.dtypes.as_dtype(tensor.dtype)
        if not dtype.is_floating:
            continue
        count = 1
        for dim in tensor.tensor_shape.dim:
            count *= dim.size
        params += count
        param_bytes += count * dtype.size
    return {
        "format": "tensorflow.GraphDef",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "nodes": len(graph_def.node),
        "ops": dict(sorted(Counter(n.op for n in graph_def.node).items())),
        "parameters": params,
        "parameter_bytes": param_bytes,
        "signature": signature.describe_graph_def(graph_def, output_nodes),
    }


def write(
    graph_def, path: str | Path, output_nodes: list[str], card_path: str | Path | None = None
) -> dict:
    """Write the .pb (and its card) atomically; return the card."""
    data = serialize(graph_def)
    info = card(graph_def, data, node_names(output_nodes))
    atomic.write_bytes(path, data)
    if card_path is not None:
        atomic.write_json(card_path, info)
    return info
