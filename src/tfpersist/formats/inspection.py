"""What is inside a model file: inputs, likely outputs, ops, parameters, devices, risks.

Works on a frozen .pb, a checkpoint (directory or prefix: its .meta graph and variables) and
a SavedModel (its signatures and variables). ``tfpersist inspect`` prints this; it is how a
user finds the output node names to freeze with. Nothing here imports TensorFlow: the protos
are TensorFlow's own messages (protos.py), checkpoints are read by bundles.py.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from tfpersist import formats, safety
from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import bundles, checkpoints
from tfpersist.graph import graphdefs, surgery
from tfpersist.tfapi import dtypes, protos
from tfpersist.tfapi.tensornames import op_name

CONTROL_FLOW_OPS = {
    "Switch": "cond (v1)",
    "Merge": "cond (v1)",
    "RefSwitch": "cond (v1)",
    "Enter": "while loop (v1)",
    "Exit": "while loop (v1)",
    "NextIteration": "while loop (v1)",
    "LoopCond": "while loop (v1)",
    "If": "cond (v2)",
    "StatelessIf": "cond (v2)",
    "While": "while loop (v2)",
    "StatelessWhile": "while loop (v2)",
    "Case": "case (v2)",
    "StatelessCase": "case (v2)",
}
_NOT_OUTPUTS = {
    "NoOp",
    "Assign",
    "AssignVariableOp",
    "AssignAdd",
    "AssignSub",
    "SaveV2",
    "Save",
    "RestoreV2",
    "VarIsInitializedOp",
    "Const",
    "Placeholder",
    "VarHandleOp",
    "VariableV2",
}


def _training(node) -> bool:
    """A node of the training machinery: gradients, optimizer updates, savers, summaries."""
    scopes = node.name.split("/")
    return (
        "gradients" in scopes
        or scopes[0] in ("save", "init", "report_uninitialized_variables")
        or surgery.changes_state(node.op)
        or node.op in safety.SAVER_OPS
        or node.op.endswith("Summary")
    )


def likely_outputs(graph_def) -> list[str]:
    """Nodes nothing consumes that are not part of the training machinery: anything that
    consumes a gradient, an optimizer update, a saver or a summary is left out."""
    nodes = list(graph_def.node)
    consumers: dict[str, list[str]] = {}
    data_consumers: dict[str, list[str]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(op_name(i), []).append(n.name)
            if not i.startswith("^"):
                data_consumers.setdefault(op_name(i), []).append(n.name)
    # Training machinery and what computes with its values (a control dependency on a
    # moving-average update inside a batch norm's cond does not make the model training).
    training = set()
    stack = [n.name for n in nodes if _training(n)]
    while stack:
        name = stack.pop()
        if name not in training:
            training.add(name)
            stack.extend(data_consumers.get(name, []))
    sinks = [
        n
        for n in nodes
        if n.name not in consumers
        and n.name not in training
        and n.op not in _NOT_OUTPUTS
        and not n.name.endswith("/read")
        and not _cond_pivot(n)
    ]
    # Real outputs first; then reductions (a loss, a metric), then shape queries and loop exits.
    rank = {"Shape": 2, "Size": 2, "Rank": 2, "Exit": 2, "Mean": 1, "Sum": 1, "Max": 1, "Min": 1}
    # A model output that only feeds the loss is consumed, so it is no sink: name it from the
    # loss side (the loss is what only training machinery consumes) and list it right after
    # the real outputs.
    by_name = {n.name: n for n in nodes}
    losses = [n for n in sinks if rank.get(n.op) == 1] + [
        n
        for n in nodes
        if n.name in consumers
        and n.name not in training
        and not _cond_pivot(n)
        and all(c in training for c in consumers[n.name])
    ]
    named = dict.fromkeys(_named_before(loss, by_name) for loss in losses)
    sink_names = {n.name for n in sinks}
    candidates = sinks + [by_name[m] for m in named if m and m not in sink_names]
    return [n.name for n in sorted(candidates, key=lambda n: rank.get(n.op, 0))]


def _cond_pivot(node) -> bool:
    """A v1 cond's bookkeeping node (``cond/pred_id``, ``cond/switch_t``)."""
    leaf = node.name.rpartition("/")[2]
    return leaf == "pred_id" or leaf.startswith("switch_")


def _default_name(node) -> bool:
    """A name TensorFlow made up from the op type (``Square``, ``add_1``, ``Mean``)."""
    leaf = re.sub(r"_\d+$", "", node.name.rpartition("/")[2]).replace("_", "").lower()
    return bool(leaf) and node.op.lower().startswith(leaf)


def _named_before(loss, by_name) -> str | None:
    """Walk up from a loss through single-input ops (labels, constants and variables aside)
    to the first node someone named: usually the model output the loss is computed from."""
    node = loss
    for _ in range(32):
        inputs = [
            by_name[op_name(i)]
            for i in node.input
            if not i.startswith("^") and op_name(i) in by_name
        ]
        inputs = [i for i in inputs if i.op not in _NOT_OUTPUTS and not i.name.endswith("/read")]
        if len(inputs) != 1:
            return None
        node = inputs[0]
        if _cond_pivot(node):
            return None
        if not _default_name(node):
            return node.name
    return None


def graph_summary(graph_def) -> dict:
    """Inputs, likely outputs, op counts, parameters, devices, control flow, unsafe ops."""
    nodes = list(graph_def.node)
    ops = Counter(n.op for n in nodes)
    for function in graph_def.library.function:
        ops.update(n.op for n in function.node_def)
    inputs = []
    for n in nodes:
        if n.op in ("Placeholder", "PlaceholderWithDefault") and not n.name.startswith("save/"):
            # a .meta saved with strip_default_attrs leaves out an unknown shape: read the
            # attribute only where it is (reading a protobuf map entry inserts it)
            shape = n.attr["shape"].shape if "shape" in n.attr else None
            dims = (
                None
                if shape is None or shape.unknown_rank
                else [d.size if d.size >= 0 else None for d in shape.dim]
            )
            inputs.append(
                {
                    "name": n.name,
                    "dtype": dtypes.as_dtype(n.attr["dtype"].type).name,
                    "shape": dims,
                    "has_default": n.op == "PlaceholderWithDefault",
                }
            )
    outputs = likely_outputs(graph_def)
    params = graphdefs.constant_parameters(graph_def)
    return {
        "nodes": len(nodes),
        "inputs": inputs,
        "likely_outputs": outputs,
        "ops": dict(sorted(ops.items())),
        "parameters": params[0],
        "parameter_bytes": params[1],
        "devices": sorted({n.device for n in nodes if n.device}),
        "control_flow": sorted({CONTROL_FLOW_OPS[o] for o in ops if o in CONTROL_FLOW_OPS}),
        "unsafe_ops": safety.outside(safety.ops_in(graph_def)),
    }


def inspect_path(path: str | Path) -> dict:
    """A summary of a .pb, checkpoint (dir or prefix) or SavedModel directory — or of a Keras
    file, zipped, in a folder or sharded (keras_models.describe: checked, nothing loaded)."""
    path = Path(path)
    kind = formats.detect(path, describable=True)
    if kind in (formats.KERAS, formats.KERAS_H5, formats.KERAS_WEIGHTS):
        from tfpersist.formats import keras_models

        return keras_models.describe(path, kind)
    if kind == formats.TF2_CHECKPOINT:
        return _inspect_object_checkpoint(path)
    if kind == formats.SAVED_MODEL:
        info = _inspect_saved_model(path)
    elif kind == formats.CHECKPOINT:
        info = _inspect_checkpoint(path)
    else:
        graph_def = graphdefs.read_graph_def(path)
        info = {"format": kind, "path": str(path), **graph_summary(graph_def)}
        info["contractions"] = contraction_summary(graph_def, info["unsafe_ops"])
    info["unsafe_risks"] = {op: safety.risk(op) for op in info["unsafe_ops"]}
    return info


def _inspect_checkpoint(path: Path) -> dict:
    prefix = checkpoints.resolve(path)
    meta = graphdefs.read_meta_graph(prefix)
    summary = graph_summary(meta.graph_def)
    summary["unsafe_ops"] = _outside_saver(meta)
    variables = _variables(prefix)
    count, size = _sizes(variables)
    summary.update(parameters=count, parameter_bytes=size)
    summary["contractions"] = contraction_summary(meta.graph_def, summary["unsafe_ops"])
    return {"format": "TF1 checkpoint", "path": str(prefix), **summary, "variables": variables}


def contraction_summary(graph_def, unsafe_ops: list[str]) -> dict | None:
    """Every contraction's K (graph/contractions.py, TensorFlow's shape inference through its
    C library; nothing runs): how many, the largest, those past the portable bound and those
    whose K waits for the batch. None for a graph with ops outside the allowlist (not handed
    to TensorFlow at all) or one TensorFlow does not import (said in ``error``)."""
    from tfpersist.graph import contractions

    if unsafe_ops:
        return None
    try:
        found = contractions.find(graph_def)
    except TfpersistError as e:
        return {"error": str(e)}
    known = [c.k for c in found if c.k is not None]
    return {
        "count": len(found),
        "max_k": max(known, default=None),
        "bound": contractions.BOUND,
        "past_bound": [
            {"node": c.node, "op": c.op, "k": c.k, "over": c.over} for c in contractions.past(found)
        ],
        "k_open": [c.node for c in found if c.k is None],
    }


def _inspect_object_checkpoint(path: Path) -> dict:
    """A TF2 object-based checkpoint: no graph, so its object graph — every variable under
    its object path (and the other paths reaching it: an optimizer's aliases), the slots an
    optimizer keeps for a variable, the save counter, and the checkpoints the directory's
    state file lists. Nothing runs: the variables are read by name."""
    from google.protobuf.message import DecodeError

    prefix = checkpoints.prefix_of(path)
    reader = _bundle(prefix)
    key = checkpoints.OBJECT_GRAPH_KEY.decode()
    graph = protos.TrackableObjectGraph()
    try:
        graph.ParseFromString(reader.read(key).item())
    except (DecodeError, ValueError):
        raise TfpersistError(f"{prefix}: the TF2 checkpoint's object graph is unreadable") from None
    types = reader.variables()
    paths: dict[int, list[str]] = {0: [""]}
    queue = [0]
    while queue:  # breadth first: a node's first path is its shortest
        node_id = queue.pop(0)
        for child in graph.nodes[node_id].children:
            here = "/".join(p for p in (paths[node_id][0], child.local_name) if p)
            if child.node_id not in paths:
                paths[child.node_id] = [here]
                queue.append(child.node_id)
            elif here not in paths[child.node_id]:
                paths[child.node_id].append(here)
    variables, slots = [], []
    for node_id, node in enumerate(graph.nodes):
        for attribute in node.attributes:
            key = attribute.checkpoint_key
            if attribute.name != "VARIABLE_VALUE" or key not in types:
                continue
            names = sorted(paths.get(node_id, [key]), key=_naming_rank)
            variables.append(
                {
                    "name": names[0],
                    "aliases": names[1:],
                    "key": key,
                    "shape": types[key][1],
                    "dtype": types[key][0],
                }
            )
        for slot in node.slot_variables:
            slots.append(
                {
                    "variable": paths.get(slot.original_variable_node_id, ["?"])[0],
                    "slot": slot.slot_name,
                    "name": paths.get(slot.slot_variable_node_id, ["?"])[0],
                }
            )
    variables.sort(key=lambda v: v["name"])
    counter = next((v for v in variables if v["name"] == "save_counter"), None)
    directory = path if path.is_dir() else prefix.parent
    history = (
        [p.name for p in checkpoints.state_paths(directory)]
        if (directory / layout.CHECKPOINT_STATE).is_file()
        else []
    )
    count, size = _sizes(variables)
    return {
        "format": formats.TF2_CHECKPOINT,
        "path": str(prefix),
        "objects": len(graph.nodes),
        "variables": variables,
        "slots": slots,
        "save_counter": int(reader.read(counter["key"])) if counter else None,
        "history": history,
        "parameters": count,
        "parameter_bytes": size,
        "unsafe_ops": [],
        "unsafe_risks": {},
        "graph": None,
    }


GENERIC_LISTS = {"_variables", "_trainable_variables", "_non_trainable_variables"}


def _naming_rank(path: str) -> tuple[bool, bool, int]:
    """Which of the paths reaching one variable names it: the model's before its
    optimizer's, a named attribute (``_momentums/0``) before a generic list
    (``_variables/2``), then the shortest."""
    parts = path.split("/")
    return (
        any("optimizer" in p.lower() for p in parts),
        any(p in GENERIC_LISTS for p in parts),
        len(parts),
    )


def _outside_saver(meta) -> list[str]:
    """Ops outside the allowlist in a TF1 meta graph, but for its saver's own save and
    restore ops: tfpersist never runs the saver (restore.py reads the checkpoint itself),
    and a saver that does anything else is listed."""
    scope = meta.saver_def.restore_op_name.rpartition("/")[0]
    nodes = [
        n
        for n in meta.graph_def.node
        if not (scope and n.name.startswith(f"{scope}/") and n.op in safety.SAVER_OPS)
    ]
    graph_def = protos.GraphDef()
    graph_def.library.CopyFrom(meta.graph_def.library)
    graph_def.node.extend(nodes)
    return safety.outside(safety.ops_in(graph_def))


def _inspect_saved_model(path: Path) -> dict:
    """Read from saved_model.pb alone: nothing of the model is loaded or run."""
    from tfpersist.formats import saved_models

    meta = saved_models.meta_graph(saved_models.read(path), path)
    signatures = {
        key: {
            "inputs": [_tensor_spec(k, t) for k, t in sorted(sig.inputs.items())],
            "outputs": [_tensor_spec(k, t) for k, t in sorted(sig.outputs.items())],
        }
        for key, sig in sorted(meta.signature_def.items())
        if key != saved_models.INIT_SIGNATURE
    }
    variables = []
    prefix = path / layout.SAVED_MODEL_VARIABLES
    saved = [n.variable for n in meta.object_graph_def.nodes if n.WhichOneof("kind") == "variable"]
    if saved:  # TF2: the objects' own variable names, each once (Keras tracks them twice)
        unique = {v.name: v for v in reversed(saved)}
        variables = [
            {
                "name": name,
                "shape": [d.size if d.size >= 0 else None for d in unique[name].shape.dim],
                "dtype": dtypes.as_dtype(unique[name].dtype).name,
            }
            for name in sorted(unique)
        ]
    elif Path(f"{prefix}.index").is_file():
        variables = _variables(prefix)
    if meta.object_graph_def.nodes:
        unsafe = safety.outside(saved_models.loader_ops(meta), safety.RESTORE_OPS)
    else:
        unsafe = _outside_saver(meta)
    return {
        "format": "SavedModel",
        "path": str(path),
        "tags": sorted(meta.meta_info_def.tags),
        "signatures": signatures,
        "variables": variables,
        "parameters": sum(int(np.prod(v["shape"])) for v in variables if None not in v["shape"]),
        "unsafe_ops": unsafe,
    }


def _tensor_spec(key: str, info) -> dict:
    shape = info.tensor_shape
    return {
        "name": key,
        "dtype": dtypes.as_dtype(info.dtype).name,
        "shape": None
        if shape.unknown_rank
        else [d.size if d.size >= 0 else None for d in shape.dim],
    }


def _bundle(prefix: Path):
    try:
        return bundles.reader(prefix)
    except TfpersistError as e:
        raise TfpersistError(f"cannot read the checkpoint's variables: {e}") from None


def _variables(prefix: Path) -> list[dict]:
    """A checkpoint's tensors by name, as TensorFlow's reader lists them (the object graph
    of a TF2 checkpoint left out)."""
    key = checkpoints.OBJECT_GRAPH_KEY.decode()
    return [
        {"name": n, "shape": shape, "dtype": dtype}
        for n, (dtype, shape) in sorted(_bundle(prefix).variables().items())
        if n != key
    ]


def _sizes(variables: list[dict]) -> tuple[int, int]:
    """(elements, bytes) of ``variables``."""
    count = size = 0
    for v in variables:
        elements = int(np.prod(v["shape"], dtype=np.int64))
        count += elements
        size += elements * dtypes.by_name(v["dtype"]).size
    return count, size
