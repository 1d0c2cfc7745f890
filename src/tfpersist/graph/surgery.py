"""GraphDef surgery before freezing: pin placeholders, prune dead cond branches, clear devices.

These edits are what make TF1 training graphs freezable where TensorFlow's ``freeze_graph``
fails: a training flag pinned to a constant lets the ``tf.cond`` training branch (batch-norm
moving-average assigns, dropout) be removed instead of being folded into a graph that no
longer imports; ``_output_shapes`` and device/colocation attributes that refer to pruned or
absent nodes are dropped.
"""

from __future__ import annotations

import re

import numpy as np

from tfpersist import safety
from tfpersist.core.errors import TfpersistError
from tfpersist.graph.graphdefs import all_nodes
from tfpersist.tfapi import dtypes, tensors
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf

_STRIPPED_ATTRS = ("_output_shapes", "_class")

VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})

# Ops that change a variable's value. An output that depends on one cannot be frozen: the
# frozen graph has no variables, so it would silently compute something else.
_STATE_CHANGING = frozenset(
    {
        "Assign",
        "AssignAdd",
        "AssignSub",
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "CountUpTo",
        "ResourceCountUpTo",
    }
)
_STATE_CHANGING_PREFIXES = (
    "Scatter",
    "ResourceScatter",
    "Apply",
    "ResourceApply",
    "SparseApply",
    "ResourceSparseApply",
)

# Ops that must not be left in a frozen graph, in its functions included.
STATE_OPS = VARIABLE_OPS | {
    "ReadVariableOp",
    "ResourceGather",
    "ResourceGatherNd",
    "VariableShape",
    "VarIsInitializedOp",
    "IsVariableInitialized",
    "DestroyResourceOp",
    "SaveV2",
    "RestoreV2",
    "MergeV2Checkpoints",
}


def changes_state(op: str) -> bool:
    """Whether ``op`` writes a variable (assign, scatter, an optimizer's apply)."""
    return op in _STATE_CHANGING or op.startswith(_STATE_CHANGING_PREFIXES)


def clear_devices(graph_def) -> None:
    """Remove device pins, colocation and cached-shape attributes, in place."""
    for node in all_nodes(graph_def):
        node.device = ""
        for attr in _STRIPPED_ATTRS:
            if attr in node.attr:
                del node.attr[attr]


def prune_library(graph_def) -> None:
    """Drop the library functions no node calls (directly or through another function)."""
    library = {f.signature.name: f for f in graph_def.library.function}
    used = safety.reachable_functions(graph_def.node, library)
    kept = [f for f in graph_def.library.function if f.signature.name in used]
    if len(kept) < len(library):
        del graph_def.library.function[:]
        graph_def.library.function.extend(kept)
        grads = [g for g in graph_def.library.gradient if g.function_name in used]
        del graph_def.library.gradient[:]
        graph_def.library.gradient.extend(grads)


_FROZEN_SUFFIX = re.compile(r"^(.*_frozen)_\d+$")


def canonical_function_names(graph_def) -> None:
    """Drop the process-wide counter TF's converter appends to frozen functions' names
    (``f_frozen_113`` → ``f_frozen``), in place: the same model gives the same bytes in any
    process, however many graphs it built before."""
    names = [f.signature.name for f in graph_def.library.function]
    mapping, taken = {}, set(names)
    for name in sorted(names, key=lambda n: (_FROZEN_SUFFIX.sub(r"\1", n), n)):
        match = _FROZEN_SUFFIX.match(name)
        if not match:
            continue
        new, i = match.group(1), 1
        while new in taken:
            new, i = f"{match.group(1)}_{i}", i + 1
        taken.discard(name)
        taken.add(new)
        mapping[name] = new
    if not mapping:
        return
    for function in graph_def.library.function:
        function.signature.name = mapping.get(function.signature.name, function.signature.name)
    for gradient in graph_def.library.gradient:
        gradient.function_name = mapping.get(gradient.function_name, gradient.function_name)
    for node in all_nodes(graph_def):
        node.op = mapping.get(node.op, node.op)
        for attr in node.attr.values():
            if attr.HasField("func"):
                attr.func.name = mapping.get(attr.func.name, attr.func.name)
            for func in attr.list.func:
                func.name = mapping.get(func.name, func.name)


def variables(graph_def) -> list[str]:
    """The variable nodes of the graph and its functions."""
    return [n.name for n in all_nodes(graph_def) if n.op in VARIABLE_OPS]


def tidy_library(graph_def) -> None:
    """Unused functions dropped, frozen functions' names made canonical, in place."""
    prune_library(graph_def)
    canonical_function_names(graph_def)


def finish(graph_def, what: str):
    """A frozen ``graph_def`` with unused functions dropped and function names made
    canonical, in place; refused when it still holds variable ops."""
    tidy_library(graph_def)
    left = sorted({n.op for n in all_nodes(graph_def) if n.op in STATE_OPS})
    if left:
        raise TfpersistError(
            f"{what}: the frozen graph would still hold variable ops ({', '.join(left)}); "
            "its outputs read variables this freezer cannot fold into constants"
        )
    return graph_def


def check_stateless(graph_def, outputs: list[str], what: str) -> None:
    """Refuse outputs that depend on an op changing a variable (in functions too).

    Freezing turns variables into constants: an assignment the outputs wait for would be
    dropped or turned into nonsense, and the .pb would compute something else. One line
    naming the output and the op, instead of a wrong model.
    """
    library = {f.signature.name: f for f in graph_def.library.function}
    by_name = {n.name: n for n in graph_def.node}
    for output in outputs:
        seen, stack = set(), [output]
        while stack:
            name = stack.pop()
            node = by_name.get(name)
            if name in seen or node is None:
                continue
            seen.add(name)
            inner = [
                n.op
                for f in safety.reachable_functions([node], library)
                for n in library[f].node_def
                if changes_state(n.op)
            ]
            if changes_state(node.op) or inner:
                op = node.op if changes_state(node.op) else inner[0]
                where = (
                    f"'{name}' ({op})" if op == node.op else f"'{name}' (its function runs {op})"
                )
                raise TfpersistError(
                    f"{what}: output '{output}' depends on {where}, which changes a variable; "
                    "a frozen graph has no variables and cannot reproduce that, so it is not "
                    "written; freeze outputs that do not run an assignment"
                )
            stack.extend(_split(i)[0] for i in node.input)


def drop_control_assignments(graph_def, outputs: list[str]) -> dict[str, str]:
    """Cut, in place, the control edges by which a functional conditional (``If``, ``Case``)
    that ``outputs`` need waits for an assignment; return {assignment: the variable it
    writes}.

    A batch norm whose moving-average updates are made outside a ``tf.cond`` and attached
    as control dependencies inside its training branch: control flow v2 lifts them onto
    the ``If`` node itself, so the live graph runs them on every call, the training flag
    off too. A frozen graph holds the checkpoint's values and leaves those writes out (the
    caller says so). Any other wait for an assignment — ``identity(v)`` under
    ``control_dependencies([v.assign(…)])`` reads what the write left — stays, and
    ``check_stateless`` refuses it, as TensorFlow's own freezing tests require.
    """
    by_name = {n.name: n for n in graph_def.node}
    dropped, seen, stack = {}, set(), list(outputs)
    while stack:
        name = stack.pop()
        node = by_name.get(name)
        if name in seen or node is None:
            continue
        seen.add(name)
        kept = []
        for tensor in node.input:
            source = by_name.get(op_name(tensor))
            if (
                node.op in FUNCTIONAL_CONDITIONALS
                and tensor.startswith("^")
                and source is not None
                and changes_state(source.op)
            ):
                dropped[source.name] = _variable_written(source, by_name)
                continue
            kept.append(tensor)
            stack.append(op_name(tensor))
        if len(kept) != len(node.input):
            del node.input[:]
            node.input.extend(kept)
    return dict(sorted(dropped.items()))


_FORWARDING = ("Identity", "RefIdentity", "Switch", "RefSwitch", "Enter", "RefEnter")


def _variable_written(assignment, by_name) -> str:
    """The variable an assignment writes: its first input, through the Switch or Identity
    that a v1 conditional or loop puts before it ("" where it cannot be told)."""
    node = assignment
    while node.input:
        node = by_name.get(op_name(node.input[0]))
        if node is None:
            return ""
        if node.op not in _FORWARDING:
            return node.name
    return ""


def parse_value(text: str, dtype: int) -> np.ndarray:
    """``true``/``false``, a number, or a comma-separated list, as ``dtype`` (an enum)."""
    dtype = dtypes.as_dtype(dtypes.base(dtype))
    words = [w.strip() for w in text.split(",")]
    try:
        if dtype.name == "bool":
            lookup = {"true": True, "1": True, "false": False, "0": False}
            values = [lookup[w.lower()] for w in words]
        elif dtype.name == "string":
            values = [w.encode() for w in words]
        else:
            values = [float(w) if dtype.is_floating else int(w) for w in words]
        element = object if dtype.name == "string" else dtype.as_numpy()
        return np.array(values if len(values) > 1 else values[0], dtype=element)
    except (KeyError, ValueError, OverflowError, TfpersistError):
        raise TfpersistError(f"cannot read '{text}' as {dtype.name}") from None


def is_random(op: str) -> bool:
    """Whether ``op`` draws random numbers (dropout's masks, noise layers)."""
    return any(word in op for word in ("Random", "TruncatedNormal", "Multinomial")) or (
        op.startswith(("StatefulUniform", "StatefulStandardNormal"))
    )


def training_only(op: str) -> bool:
    """An op a training branch holds and an inference graph must not: an assignment (batch
    norm's moving averages) or a random draw (dropout)."""
    return changes_state(op) or is_random(op)


def _check_placeholder(by_name: dict, name: str, flag: str) -> None:
    node = by_name.get(name)
    if node is None or node.op not in ("Placeholder", "PlaceholderWithDefault"):
        found = "not in the graph" if node is None else f"a {node.op}, not a placeholder"
        raise TfpersistError(f"{flag} {name}: '{name}' is {found}")


def pin(graph_def, values: dict[str, str], live=()) -> dict:
    """Replace placeholders by constants, in place; return {name pinned: its value} (a
    JSON value: bool, number, text or a list of them; None for a default that is computed).

    ``values`` maps placeholder names to text values (``--set is_training=false``). A
    ``PlaceholderWithDefault`` not named there nor in ``live`` becomes an Identity of its
    default when that is what freezing needs (``needs_pinning``: a training flag whose dead
    branch assigns or draws random numbers); one that only switches between inference paths
    (``use_abs``) stays a live input with its default.
    """
    by_name = {n.name: n for n in graph_def.node}
    for name in live:
        _check_placeholder(by_name, name, "--keep-placeholder")
        if name in values:
            raise TfpersistError(f"--keep-placeholder {name}: also pinned with --set")
    for name in values:
        _check_placeholder(by_name, name, "--set")
    defaulted = [
        n.name
        for n in graph_def.node
        if n.op == "PlaceholderWithDefault" and n.name not in live and n.name not in values
    ]
    flags = {name for name in defaulted if needs_pinning(graph_def, name)}
    pinned = {}
    for node in graph_def.node:
        if node.name in values:
            dtype = node.attr["dtype"].type
            value = parse_value(values[node.name], dtype)
            node.op = "Const"
            del node.input[:]
            for attr in list(node.attr):
                del node.attr[attr]
            node.attr["dtype"].type = dtype
            node.attr["value"].tensor.CopyFrom(tensors.make_tensor_proto(value, dtype=dtype))
            pinned[node.name] = _jsonable(value)
        elif node.name in flags:
            pinned[node.name] = _jsonable(_constant_array(node.input[0], by_name))
            _to_identity(node)
    return pinned


def _jsonable(value):
    if value is None:
        return None
    value = np.asarray(value).tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _to_identity(node) -> None:
    """A PlaceholderWithDefault → an Identity of its default, in place."""
    dtype = node.attr["dtype"].type
    node.op = "Identity"
    for attr in list(node.attr):
        del node.attr[attr]
    node.attr["T"].type = dtype


def needs_pinning(graph_def, name: str) -> bool:
    """Whether the defaulted placeholder ``name`` must be pinned for a faithful freeze: it
    picks a conditional branch (TF1 ``Switch``, TF2 ``If``/``Case``) that its default leaves
    dead and that holds an assignment or a random draw. A placeholder that picks between
    pure inference paths, or feeds no conditional, can stay a live input."""
    library = {f.signature.name: f for f in graph_def.library.function}

    def dirty(nodes) -> bool:
        nodes = list(nodes)
        inner = safety.reachable_functions(nodes, library)
        return any(training_only(n.op) for n in nodes) or any(
            training_only(n.op) for f in inner for n in library[f].node_def
        )

    by_name = {n.name: n for n in graph_def.node}
    default = _constant_value(by_name[name].input[0], by_name) if by_name[name].input else None
    switches = False
    for node in graph_def.node:
        if node.op in ("Switch", "RefSwitch") and len(node.input) >= 2:
            switches = switches or _resolves_to(node.input[1], name, by_name)
        elif node.op in FUNCTIONAL_CONDITIONALS and node.input:
            if not _resolves_to(node.input[0], name, by_name):
                continue
            if default is None:
                return True  # no constant default: the taken branch is unknown
            branches = _dead_branches(node, default)
            if dirty(n for b in branches if b in library for n in library[b].node_def):
                return True
    if not switches:
        return False
    trial = type(graph_def)()
    trial.CopyFrom(graph_def)
    _to_identity(next(n for n in trial.node if n.name == name))
    before = {n.name for n in trial.node}
    prune_dead_branches(trial)
    removed = before - {n.name for n in trial.node}
    return dirty(by_name[n] for n in removed)


def _dead_branches(node, default) -> list[str]:
    """The functions an ``If``/``Case`` does not call when its predicate is ``default``."""
    if node.op in ("If", "StatelessIf"):
        dead = "then_branch" if not bool(default) else "else_branch"
        return [node.attr[dead].func.name] if dead in node.attr else []
    branches = [f.name for f in node.attr["branches"].list.func] if "branches" in node.attr else []
    index = int(default)
    taken = index if 0 <= index < len(branches) else len(branches) - 1  # out of range: last
    return [b for i, b in enumerate(branches) if i != taken]


def _resolves_to(tensor: str, name: str, by_name: dict) -> bool:
    """Whether ``tensor`` is node ``name``'s output, through Identity chains."""
    node, seen = by_name.get(op_name(tensor)), 0
    while node is not None and node.name != name and node.op == "Identity" and seen < 100:
        node, seen = by_name.get(op_name(node.input[0])), seen + 1
    return node is not None and node.name == name


def _constant_array(tensor: str, by_name: dict):
    """The value of a tensor that is a Const (through Identity chains), else None."""
    seen = 0
    node = by_name.get(op_name(tensor))
    while node is not None and node.op == "Identity" and seen < 100:
        node = by_name.get(op_name(node.input[0]))
        seen += 1
    if node is None or node.op != "Const":
        return None
    return tensors.make_ndarray(node.attr["value"].tensor)


def _constant_value(tensor: str, by_name: dict):
    """The scalar value of a tensor that is a Const (through Identity chains), else None."""
    value = _constant_array(tensor, by_name)
    return value.item() if value is not None and value.size == 1 else None


def _constant_bool(name: str, by_name: dict) -> bool | None:
    """The value of a boolean tensor that is a Const (through Identity chains), else None."""
    value = _constant_value(name, by_name)
    return None if value is None else bool(value)


def _split(tensor: str) -> tuple[str, int]:
    name = tensor.lstrip("^")
    if ":" in name:
        node, port = name.rsplit(":", 1)
        return node, int(port)
    return name, 0


def prune_dead_branches(graph_def) -> int:
    """Remove TF1 ``tf.cond`` branches whose predicate is a constant, in place.

    A Switch with a constant predicate sends its input to one port only; everything fed
    from the other port is dead, and a Merge forwards its one live input. Dead nodes are
    removed, live Merges become Identities and constant Switches are bypassed, as TF's
    executor would do at run time. Returns the number of nodes removed.
    """
    by_name = {n.name: n for n in graph_def.node}
    dead_ports: set[tuple[str, int]] = set()
    switches: dict[str, int] = {}  # switch name → live port
    for node in graph_def.node:
        if node.op in ("Switch", "RefSwitch") and len(node.input) >= 2:
            pred = _constant_bool(node.input[1], by_name)
            if pred is not None:
                switches[node.name] = int(pred)
                dead_ports.add((node.name, 1 - int(pred)))
    if not switches:
        return 0

    dead: set[str] = set()

    def is_dead(tensor: str) -> bool:
        node, port = _split(tensor)
        return node in dead or (not tensor.startswith("^") and (node, port) in dead_ports)

    changed = True
    while changed:
        changed = False
        for node in graph_def.node:
            if node.name in dead:
                continue
            if node.op in ("Merge", "RefMerge"):
                data = [i for i in node.input if not i.startswith("^")]
                now_dead = bool(data) and all(is_dead(i) for i in data)
            else:
                now_dead = any(is_dead(i) for i in node.input)
            if now_dead:
                dead.add(node.name)
                changed = True

    rename: dict[str, str] = {}
    for node in graph_def.node:
        if node.name in dead:
            continue
        data = [i for i in node.input if not i.startswith("^")]
        if node.op in ("Merge", "RefMerge") and any(is_dead(i) for i in data):
            # a Merge of a pruned cond forwards its one live input; one whose inputs all
            # live (a cond on a placeholder kept live) stays a Merge
            live = [i for i in data if not is_dead(i)]
            controls = [i for i in node.input if i.startswith("^") and not is_dead(i)]
            dtype = node.attr["T"].type
            node.op = "Identity" if node.op == "Merge" else "RefIdentity"
            del node.input[:]
            node.input.extend(live[:1] + controls)
            for attr in list(node.attr):
                del node.attr[attr]
            node.attr["T"].type = dtype
        elif node.name in switches:
            live_port = switches[node.name]
            rename[f"{node.name}:{live_port}"] = node.input[0]
            if live_port == 0:
                rename[node.name] = node.input[0]
    kept = [n for n in graph_def.node if n.name not in dead]
    for node in kept:
        for i, tensor in enumerate(node.input):
            if not tensor.startswith("^") and tensor in rename:
                node.input[i] = rename[tensor]
    removed = len(graph_def.node) - len(kept)
    del graph_def.node[:]
    graph_def.node.extend(kept)
    return removed


def rename(graph_def, mapping: dict[str, str]) -> dict[str, str]:
    """Rename nodes (``old → new``) and every reference to them, in place.

    Names already taken are skipped; returns the renames done.
    """
    taken = {n.name for n in graph_def.node}
    done = {
        old: new for old, new in mapping.items() if old != new and new not in taken and old in taken
    }
    if not done:
        return {}
    for node in graph_def.node:
        if node.name in done:
            node.name = done[node.name]
        for i, tensor in enumerate(node.input):
            control = tensor.startswith("^")
            name, _, port = tensor.lstrip("^").partition(":")
            if name in done:
                node.input[i] = ("^" if control else "") + done[name] + (f":{port}" if port else "")
    return done


FUNCTIONAL_CONDITIONALS = {"If", "StatelessIf", "Case", "StatelessCase"}


def lower_functional_conditionals(graph_def, keep: list[str]):
    """Rewrite TF2 ``If``/``Case`` ops (a ``tf.cond`` built with control flow v2) into v1
    Switch/Merge, which ``prune_dead_branches`` can then cut at a constant predicate.

    Grappler's function optimizer does the lowering; ``keep`` lists the nodes that must
    survive (outputs, the saver's restore op). Graphs without such ops are returned as is.
    """
    if not any(n.op in FUNCTIONAL_CONDITIONALS for n in graph_def.node):
        return graph_def
    import_tf()  # quiet first
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(graph_def)
    # Lowering turns a kept If/Case itself into a NoOp (its consumers are rewired to the
    # Merges): an If named as an output is kept through an Identity(N) that takes its name.
    by_name = {n.name: n for n in meta.graph_def.node}
    wrapped = {}
    for name in keep:
        node = by_name.get(name)
        # read Tout only where the op defines it: indexing a protobuf map inserts the key
        if node is None or node.op not in FUNCTIONAL_CONDITIONALS or "Tout" not in node.attr:
            continue
        types = list(node.attr["Tout"].list.type)
        if not types:
            continue
        wrapper = meta.graph_def.node.add(name=f"{name}/_tfpersist_outputs")
        if len(types) == 1:
            wrapper.op = "Identity"
            wrapper.input.append(name)
            wrapper.attr["T"].type = types[0]
        else:
            wrapper.op = "IdentityN"
            wrapper.input.extend(f"{name}:{i}" for i in range(len(types)))
            wrapper.attr["T"].list.type.extend(types)
        wrapped[name] = wrapper.name
    meta.collection_def["train_op"].node_list.value.extend(wrapped.get(k, k) for k in keep)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers.extend(["function"])
    rewrite.min_graph_nodes = -1
    lowered = tf_optimizer.OptimizeGraph(config, meta)
    if wrapped:
        kept = [n for n in lowered.node if n.name not in wrapped]
        del lowered.node[:]
        lowered.node.extend(kept)
        for node in lowered.node:  # control edges on the old NoOp now wait for the wrapper
            for i, tensor in enumerate(node.input):
                if tensor.startswith("^") and tensor[1:] in wrapped:
                    node.input[i] = "^" + wrapped[tensor[1:]]
        rename(lowered, {w: name for name, w in wrapped.items()})
    return lowered
