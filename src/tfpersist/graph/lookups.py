"""Lookup tables frozen with their contents.

A traced function that reads a ``tf.lookup`` table (Keras's StringLookup, IntegerLookup,
TextVectorization; a TF2 SavedModel's signature) captures the table's resource handle:
``convert_variables_to_constants_v2`` leaves it as a placeholder the frozen graph cannot be
fed. ``embed_tables`` puts the table itself in the graph, filled from constants.

Imports: the core (TensorFlow's Python layer, to read the tables).
"""

from __future__ import annotations

from tfpersist.core.errors import TfpersistError, first_line
from tfpersist.tfapi.tensornames import op_name
from tfpersist.tfapi.tfcompat import import_tf

LOOKUPS = ("LookupTableFindV2", "LookupTableSizeV2")


def embed_tables(traced, graph_def, what) -> None:
    """The lookup tables the model reads (StringLookup, IntegerLookup, TextVectorization:
    a ``StaticHashTable`` each), in place: the trace leaves each as a resource placeholder;
    it becomes a ``HashTableV2`` filled from constants (its keys and values exported from the
    model's table now) by a ``LookupTableImportV2`` that every lookup waits for — the frozen
    graph runs on its own, no init op to call; importing the same pairs again is idempotent.
    ``traced``: the concrete function the graph was frozen from (its captures hold the
    tables)."""
    tf = import_tf()
    by_name = {n.name: n for n in graph_def.node}

    def table(tensor: str):
        node = by_name.get(op_name(tensor))
        while node is not None and node.op == "Identity":
            node = by_name.get(op_name(node.input[0]))
        return node

    users: dict[str, list] = {}
    for node in graph_def.node:
        if node.op in LOOKUPS and node.input:
            found = table(node.input[0])
            if found is not None and found.op == "Placeholder":
                users.setdefault(found.name, []).append(node)
    if not users:
        return
    captured = {inner.op.name: outer for outer, inner in traced.graph.captures}
    for name, lookups in users.items():
        handle = captured.get(name)
        find = next((n for n in lookups if n.op == "LookupTableFindV2"), None)
        if handle is None or find is None:
            raise TfpersistError(f"{what}: cannot read the lookup table behind '{name}'")
        key_type, value_type = find.attr["Tin"].type, find.attr["Tout"].type
        try:
            keys, values = tf.raw_ops.LookupTableExportV2(
                table_handle=handle, Tkeys=tf.as_dtype(key_type), Tvalues=tf.as_dtype(value_type)
            )
        except tf.errors.OpError as e:  # a Keras 2 .h5 rebuilds the layer without its table
            raise TfpersistError(
                f"{what}: the lookup table behind '{name}' was never filled "
                f"({first_line(e)}); the model cannot run as loaded (Keras's own predict "
                "fails too): save it as .keras, which keeps the vocabulary"
            ) from None
        node = by_name[name]
        node.op = "HashTableV2"
        node.ClearField("attr")
        node.ClearField("input")
        node.attr["key_dtype"].type = key_type
        node.attr["value_dtype"].type = value_type
        node.attr["shared_name"].s = f"table_{name}".encode()  # tf2onnx names tables by it
        node.attr["container"].s = b""
        node.attr["use_node_name_sharing"].b = False
        for suffix, value, dtype in (("keys", keys, key_type), ("values", values, value_type)):
            const = graph_def.node.add(name=f"{name}/{suffix}", op="Const")
            const.attr["dtype"].type = dtype
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value.numpy(), dtype))
        fill = graph_def.node.add(
            name=f"{name}/fill",
            op="LookupTableImportV2",
            input=[name, f"{name}/keys", f"{name}/values"],
        )
        fill.attr["Tin"].type = key_type
        fill.attr["Tout"].type = value_type
        for lookup in lookups:
            lookup.input.append(f"^{fill.name}")
