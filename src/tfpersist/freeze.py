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

from tfpersist import atomic, checkpoints, safety, signature, streaming, surgery
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


def read_meta_graph(prefix: Path):
    """The MetaGraphDef beside a checkpoint, or a one-line error."""
    meta = v1.MetaGraphDef()
    try:
        meta.ParseFromString(Path(f"{prefix}.meta").read_bytes())
    except Exception as e:  # DecodeError
        raise TfpersistError(
            f"{prefix}.meta: not a readable MetaGraphDef ({_first_line(e)})"
        ) from None
    return meta


def prepare(graph_def, values: dict[str, str] | None, keep: list[str]):
    """The surgery every source gets before freezing; returns the edited GraphDef.

    Devices cleared; ``values`` and placeholder defaults pinned; TF2 conditionals lowered
    and dead ``tf.cond`` branches pruned, keeping the nodes in ``keep``.
    """
    surgery.clear_devices(graph_def)
    surgery.pin(graph_def, values or {})
    graph_def = surgery.lower_functional_conditionals(graph_def, keep)
    surgery.clear_devices(graph_def)  # lowering adds colocation attributes
    surgery.prune_dead_branches(graph_def)
    return graph_def


def freeze_checkpoint(
    source: str | Path,
    output_nodes: list[str] | str,
    values: dict[str, str] | None = None,
    allow_unsafe_ops: bool = False,
):
    """Freeze a checkpoint directory or prefix into a GraphDef keeping ``output_nodes``.

    The training graph from the ``.meta`` is cleaned first (``prepare``: devices cleared,
    ``values`` and placeholder defaults pinned, dead ``tf.cond`` branches pruned), then the
    variables are restored with the checkpoint's own saver and folded into constants. That
    runs part of the graph, so ops that touch files or run Python are refused there first
    (safety.py) unless ``allow_unsafe_ops``.
    """
    names = node_names(output_nodes)
    prefix, saver_def, graph_def = _prepared_checkpoint(source, names, values)
    return _freeze_in_session(prefix, saver_def, graph_def, names, allow_unsafe_ops)


def _prepared_checkpoint(source, names: list[str], values: dict[str, str] | None):
    """(prefix, saver_def, the .meta graph after ``prepare``) for a checkpoint."""
    prefix = checkpoints.resolve(source)
    meta = read_meta_graph(prefix)
    restore_op = _op_name(meta.saver_def.restore_op_name)
    check_nodes(meta.graph_def, names)
    graph_def = prepare(meta.graph_def, values, [*names, restore_op] if restore_op else names)
    check_nodes(graph_def, names)
    return prefix, meta.saver_def, graph_def


def _freeze_in_session(prefix: Path, saver_def, graph_def, names: list[str], allow_unsafe_ops):
    if not saver_def.restore_op_name:
        raise TfpersistError(f"{prefix}.meta: has no saver; cannot restore its variables")
    restore_op = _op_name(saver_def.restore_op_name)
    if not allow_unsafe_ops:
        safety.check(graph_def, names, str(prefix))
        safety.check(graph_def, [restore_op], f"{prefix} (its restore op)", safety.SAVER_OPS)
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.import_graph_def(graph_def, name="")
        except (ValueError, TypeError) as e:
            raise TfpersistError(
                f"{prefix}.meta: the graph does not import ({_first_line(e)})"
            ) from None
        with v1.Session(graph=graph) as sess:
            try:
                sess.run(restore_op, {saver_def.filename_tensor_name: str(prefix)})
            except (tf.errors.OpError, ValueError) as e:
                raise _unreadable(prefix, e) from None
            return freeze_session(sess, names)


def _unreadable(prefix: Path, error: BaseException) -> TfpersistError:
    return TfpersistError(
        f"{prefix}: cannot restore the checkpoint ({_first_line(error)}); "
        ".index/.data are truncated, corrupted or from another graph"
    )


def _op_name(name: str) -> str:
    return name.split(":")[0]


def freeze_graph_def(
    graph_def, output_nodes: list[str] | str, values: dict[str, str] | None = None
):
    """Re-freeze a frozen GraphDef: pin, prune dead branches, keep what ``output_nodes`` need."""
    names = node_names(output_nodes)
    check_nodes(graph_def, names)
    graph_def = prepare(graph_def, values, names)
    return v1.graph_util.extract_sub_graph(graph_def, names)


def freeze_saved_model(
    path: str | Path,
    output_nodes: list[str] | str | None = None,
    values: dict[str, str] | None = None,
    signature_key: str = "serving_default",
):
    """Freeze a SavedModel's serving signature; returns (GraphDef, output node names)."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise TfpersistError(f"{path}: not a loadable SavedModel ({_first_line(e)})") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if signature_key not in signatures:
        known = ", ".join(sorted(signatures)) or "none"
        raise TfpersistError(
            f"{path}: no '{signature_key}' signature (signatures: {known}); save the model with "
            "signatures={'serving_default': f.get_concrete_function(...)}"
        )
    func = convert_variables_to_constants_v2(signatures[signature_key])
    graph_def = func.graph.as_graph_def()
    # Name the outputs after the signature's keys ("scores") instead of "Identity_1";
    # outputs are in tf.nest order, which for a dict is its sorted keys.
    structured = signatures[signature_key].structured_outputs
    keys = sorted(structured) if isinstance(structured, dict) else []
    pairs = zip(keys, func.outputs, strict=False) if len(keys) == len(func.outputs) else []
    renamed = surgery.rename(graph_def, {t.op.name: key for key, t in pairs})
    default = [renamed.get(t.op.name, t.op.name) for t in func.outputs]
    names = node_names(output_nodes) if output_nodes else default
    return freeze_graph_def(graph_def, names, values), names


def freeze(
    source: str | Path,
    output_nodes: list[str] | str | None = None,
    values: dict[str, str] | None = None,
    allow_unsafe_ops: bool = False,
):
    """Freeze any source: checkpoint dir or prefix, SavedModel dir, or frozen .pb.

    Returns (GraphDef, output node names).
    """
    source = Path(source)
    if source.is_dir() and (source / "saved_model.pb").is_file():
        return freeze_saved_model(source, output_nodes, values)
    if not output_nodes:
        raise TfpersistError(
            f"{source}: name the output nodes (--output-nodes a,b); 'tfpersist inspect "
            f"{source}' lists likely ones"
        )
    names = node_names(output_nodes)
    if not is_checkpoint(source):
        return freeze_graph_def(read_graph_def(source), names, values), names
    return freeze_checkpoint(source, names, values, allow_unsafe_ops), names


def is_checkpoint(source: str | Path) -> bool:
    """A checkpoint dir or prefix (not a SavedModel dir, not a .pb file)."""
    source = Path(source)
    if source.is_dir():
        return not (source / "saved_model.pb").is_file()
    return not source.is_file() or checkpoints.is_checkpoint_file(source)


def freeze_session(sess, output_nodes: list[str] | str):
    """Freeze a live session's graph: variables → constants, pruned to ``output_nodes``."""
    names = node_names(output_nodes)
    graph_def = sess.graph.as_graph_def()
    check_nodes(graph_def, names)
    frozen = v1.graph_util.convert_variables_to_constants(sess, graph_def, names)
    surgery.clear_devices(frozen)
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


def constant_parameters(graph_def) -> tuple[int, int]:
    """(count, bytes) of the floating-point constants: a frozen graph's weights."""
    count = size = 0
    for node in graph_def.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        dtype = tf.dtypes.as_dtype(tensor.dtype)
        if dtype.is_floating:
            elements = 1
            for dim in tensor.tensor_shape.dim:
                elements *= dim.size
            count += elements
            size += elements * dtype.size
    return count, size


def card(graph_def, data: bytes, output_nodes: list[str], extra: dict | None = None) -> dict:
    """The small JSON card written beside a frozen model.

    ``extra`` joins the signature (the pipeline adds the feature columns and the label).
    """
    params, param_bytes = constant_parameters(graph_def)
    stats = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "ops": Counter(n.op for n in graph_def.node),
        "parameters": params,
        "parameter_bytes": param_bytes,
    }
    return card_from(streaming.skeleton(graph_def), stats, output_nodes, extra)


def card_from(skeleton, stats: dict, output_nodes: list[str], extra: dict | None) -> dict:
    """The card from a weightless copy of the graph and what writing it counted."""
    sig = signature.describe_graph_def(skeleton, output_nodes)
    sig.update(extra or {})
    return {
        "format": "tensorflow.GraphDef",
        "bytes": stats["bytes"],
        "sha256": stats["sha256"],
        "nodes": len(skeleton.node),
        "ops": dict(sorted(stats["ops"].items())),
        "parameters": stats["parameters"],
        "parameter_bytes": stats["parameter_bytes"],
        "signature": sig,
    }


def freeze_checkpoint_to_file(
    source: str | Path,
    output_nodes: list[str] | str,
    out: str | Path,
    values: dict[str, str] | None = None,
    card_path: str | Path | None = None,
    extra: dict | None = None,
    allow_unsafe_ops: bool = False,
) -> dict:
    """Freeze a checkpoint into ``out`` (and its card); return the card (without a card
    path: its counts, and no sha256).

    Streams the weights from the checkpoint files tensor by tensor (streaming.py) when the
    graph allows it, else freezes through a session (``freeze_checkpoint``). Same result.
    """
    names = node_names(output_nodes)
    prefix, saver_def, graph_def = _prepared_checkpoint(source, names, values)
    pruned = v1.graph_util.extract_sub_graph(graph_def, names)
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        frozen_plan = streaming.plan(pruned, reader)
        if frozen_plan is None:
            frozen = _freeze_in_session(prefix, saver_def, graph_def, names, allow_unsafe_ops)
            return write(frozen, out, names, card_path, extra)
        stats = streaming.write(
            pruned, frozen_plan, reader, out, PROTOBUF_LIMIT, digest=card_path is not None
        )
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a short .data
        raise _unreadable(prefix, e) from None
    if card_path is None:  # what the card would say, without the cost of hashing
        return {"nodes": sum(stats["ops"].values()), **stats}
    info = card_from(streaming.skeleton(pruned, frozen_plan), stats, names, extra)
    atomic.write_json(card_path, info)
    return info


def write(
    graph_def,
    path: str | Path,
    output_nodes: list[str],
    card_path: str | Path | None = None,
    extra: dict | None = None,
    allow_unsafe_ops: bool = False,
) -> dict:
    """Write the .pb (and its card) atomically; return the card."""
    data = serialize(graph_def)
    info = card(graph_def, data, node_names(output_nodes), extra)
    atomic.write_bytes(path, data)
    if card_path is not None:
        atomic.write_json(card_path, info)
    return info
