"""SavedModels: read the proto, pick the meta graph and signature, name the outputs.

A SavedModel is read from ``saved_model.pb`` (or ``saved_model.pbtxt``) as a proto first, so
that a missing signature or tag is reported before anything is loaded. Then one of two
routes gives a graph to freeze:

- a TF2 SavedModel (it has an object graph): the signature's function, revived with
  ``tf.saved_model.load`` and frozen by ``convert_variables_to_constants_v2``;
- a TF1 SavedModel (``SavedModelBuilder``), or a TF2 one the TF2 loader cannot revive (a
  Keras-2-era model under Keras 3): the meta graph is a checkpoint's ``.meta`` and
  ``variables/variables`` its checkpoint, frozen the way a checkpoint is.

The signature's output keys name the outputs in the frozen graph; a key that is already a
node's name (output key ``x`` beside input ``x``) becomes ``x_output``, and ``--output-nodes``
accepts the keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfpersist import formats, safety
from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.graph import lookups, surgery
from tfpersist.tfapi import capi, protos
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf

DEFAULT_SIGNATURE = "serving_default"
SERVING_TAG = "serve"


@dataclass
class Graph:
    """A SavedModel's signature as a graph to freeze."""

    graph_def: object
    outputs: dict[str, str]  # signature output key → node name in graph_def
    prefix: Path | None  # variables still to restore (None: already frozen)
    saver_def: object | None = None
    init_op: str | None = None  # run after restoring (a TF1 main_op / legacy_init_op)

    def names(self, requested: list[str] | None) -> list[str]:
        """Output node names: the signature's (sorted by key), or ``requested`` with keys
        resolved to their nodes."""
        if not requested:
            return [self.outputs[k] for k in sorted(self.outputs)]
        return [self.outputs.get(op_name(n), n) for n in requested]


def read(path: str | Path):
    """The SavedModel proto, binary or text, or a one-line error."""
    from google.protobuf import text_format

    file = formats.saved_model_file(path)
    saved = protos.SavedModel()
    try:
        if file.suffix == ".pbtxt":
            text_format.Parse(file.read_text(), saved)
        else:
            saved.ParseFromString(file.read_bytes())
    except Exception as e:  # DecodeError, ParseError, UnicodeDecodeError
        raise TfpersistError(f"{file}: not a readable SavedModel ({first_line(e)})") from None
    if not saved.meta_graphs:
        raise TfpersistError(f"{file}: holds no meta graph")
    return saved


def meta_graph(saved, path):
    """The meta graph tagged 'serve', else the only one."""
    graphs = list(saved.meta_graphs)
    serving = [m for m in graphs if SERVING_TAG in m.meta_info_def.tags]
    if len(serving) == 1 or len(graphs) == 1:
        return (serving or graphs)[0]
    tags = "; ".join(",".join(m.meta_info_def.tags) or "(none)" for m in graphs)
    raise TfpersistError(
        f"{path}: {len(graphs)} meta graphs and not exactly one tagged '{SERVING_TAG}' "
        f"(tag sets: {tags}); re-export the model with one serving meta graph"
    )


def loader_ops(meta) -> set[str]:
    """Every op TensorFlow's loaders may run for this meta graph: its nodes and all library
    functions (restore, init, the object graph's resource initialisers, signatures) — but
    the saver's save function, which nothing here runs."""
    graph_def = meta.graph_def
    library = {f.signature.name: f for f in graph_def.library.function}
    save = op_name(meta.saver_def.save_tensor_name)
    nodes = [n for n in graph_def.node if n.name != save]
    used = safety.reachable_functions(nodes, library)
    save_only = (
        safety.reachable_functions([n for n in graph_def.node if n.name == save], library) - used
    )
    ops = {n.op for n in nodes}
    for name, function in library.items():
        if name not in save_only:
            ops.update(n.op for n in function.node_def)
    return ops - set(library)


def load(path: str | Path, signature_key: str | None = None, trust=safety.TRUST_NOTHING) -> Graph:
    """The graph of ``path``'s signature ``signature_key`` (default 'serving_default').

    Nothing of the model runs before its ops are checked: a TF2 SavedModel is loaded only
    if every op the loader may run is on the allowlist (or in ``trust``)."""
    key = signature_key or DEFAULT_SIGNATURE
    meta = meta_graph(read(path), path)
    if key not in meta.signature_def or key == INIT_SIGNATURE:
        known = ", ".join(sorted(set(meta.signature_def) - {INIT_SIGNATURE})) or "none"
        raise TfpersistError(
            f"{path}: no '{key}' signature (signatures: {known}); "
            + (
                "save the model with signatures={'serving_default': f.get_concrete_function(...)}"
                if not signature_key
                else "choose one with --signature"
            )
        )
    if meta.object_graph_def.nodes:
        safety.require(loader_ops(meta), str(path), trust, safety.RESTORE_OPS)
        try:
            return _function(path, key, list(meta.meta_info_def.tags))
        except _ReviveError:
            pass  # the TF1 route below reads the same variables without reviving objects
    return _meta_graph(path, meta, key)


class _ReviveError(Exception):
    pass


def _function(path, key: str, tags: list[str]) -> Graph:
    """A TF2 signature function with its variables folded in."""
    tf = import_tf()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    try:
        loaded = tf.saved_model.load(str(path), tags=tags)
        function = loaded.signatures[key]
    except Exception as e:
        raise _ReviveError(str(e)) from None
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    lookups.embed_tables(function, graph_def, str(path))
    surgery.rename(graph_def, _weight_names(loaded, function))
    structured = function.structured_outputs
    keys = sorted(structured) if isinstance(structured, dict) else []
    if len(keys) != len(frozen.outputs):  # outputs in tf.nest order: a dict's sorted keys
        keys = [f"output_{i}" for i in range(len(frozen.outputs))]
    tensors = {k: t.name for k, t in zip(keys, frozen.outputs, strict=True)}
    return Graph(graph_def, name_outputs(graph_def, tensors), None)


def _weight_names(loaded, function) -> dict[str, str]:
    """Frozen weights are named after the function's capture placeholders (``unknown``,
    ``unknown_0``, …): name them after their variables (``dense/kernel``) instead."""
    tf = import_tf()
    by_handle = {}
    for obj in tf.train.TrackableView(loaded).descendants():
        if isinstance(obj, tf.Variable):
            by_handle.setdefault(id(obj.handle), op_name(obj.name))
    names = {}
    for handle, placeholder in zip(
        function.captured_inputs, function.graph.internal_captures, strict=False
    ):
        name = by_handle.get(id(handle))
        if name and name not in names.values():
            names[placeholder.op.name] = name
    return names


def _meta_graph(path, meta, key: str) -> Graph:
    """A TF1 signature: the meta graph, its variables in ``variables/variables``."""
    graph_def = protos.GraphDef()
    graph_def.CopyFrom(meta.graph_def)
    tensors = {k: info.name for k, info in meta.signature_def[key].outputs.items()}
    if any(not name for name in tensors.values()):
        raise TfpersistError(
            f"{path}: signature '{key}' has sparse or composite outputs; freeze it by node name"
        )
    outputs = name_outputs(graph_def, tensors)
    prefix = Path(path) / layout.SAVED_MODEL_VARIABLES
    has_variables = Path(f"{prefix}.index").is_file() and meta.saver_def.restore_op_name
    return Graph(
        graph_def, outputs, prefix if has_variables else None, meta.saver_def, init_op(meta)
    )


INIT_SIGNATURE = "__saved_model_init_op"
INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")


def init_op(meta) -> str | None:
    """The op the TF1 loader runs after restoring (local variables, tables), if any."""
    if INIT_SIGNATURE in meta.signature_def:
        return op_name(meta.signature_def[INIT_SIGNATURE].outputs[INIT_SIGNATURE].name)
    for key in INIT_COLLECTIONS:
        nodes = meta.collection_def[key].node_list.value if key in meta.collection_def else []
        if nodes:
            return op_name(nodes[0])
    return None


def name_outputs(graph_def, tensors: dict[str, str]) -> dict[str, str]:
    """Give each signature output the node name of its key, in place; return key → node.

    An Identity producing the tensor (a TF2 function's outputs) is renamed; any other tensor
    gets a new Identity, so the graph's own node names stay valid. A key that is already
    another node's name gets ``_output`` appended.
    """
    taken = {n.name for n in graph_def.node}
    by_name = {n.name: n for n in graph_def.node}
    wanted, renames = {}, {}
    for key in sorted(tensors):
        node, _, port = tensors[key].partition(":")
        target = key
        while target in taken and target != node:
            target = f"{target}_output"
        taken.add(target)
        source = by_name[node]
        if target == node:
            wanted[key] = node
        elif (port or "0") == "0" and source.op == "Identity" and node not in renames:
            renames[node] = target
            wanted[key] = target
        else:
            identity = graph_def.node.add(name=target, op="Identity")
            identity.input.append(tensors[key] if port and port != "0" else node)
            identity.attr["T"].type = _output_dtype(graph_def, source, int(port or 0))
            wanted[key] = target
    surgery.rename(graph_def, renames)  # also moves the new Identities' inputs
    return wanted


def _output_dtype(graph_def, node, port: int) -> int:
    """The dtype of ``node``'s output ``port`` (a registered op or a library function)."""
    op_def = capi.op_def(node.op) or next(
        (f.signature for f in graph_def.library.function if f.signature.name == node.op), None
    )
    if op_def is None:
        raise TfpersistError(f"'{node.name}' runs {node.op}, which this TensorFlow does not know")
    defaults = {a.name: a.default_value for a in op_def.attr}

    def attr(name: str):  # the node's, else the op's default (a map read would insert it)
        return node.attr[name] if name in node.attr else defaults.get(name, protos.AttrValue())

    start = 0
    for arg in op_def.output_arg:  # each arg is one output, N (number_attr) or a type list
        if arg.type_list_attr:
            types = list(attr(arg.type_list_attr).list.type)
        else:
            count = attr(arg.number_attr).i if arg.number_attr else 1
            types = [arg.type or attr(arg.type_attr).type] * count
        if port < start + len(types):
            return types[port - start]
        start += len(types)
    raise TfpersistError(f"'{node.name}' ({node.op}) has no output {port}")
