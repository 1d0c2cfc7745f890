"""A graph's signature: the input and output nodes a client feeds and fetches.

Written as ``signature.json`` beside the release checkpoint and inside the frozen model's
card, so tools (and people) know the node names, dtypes and shapes without opening TF.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfpersist.core import layout
from tfpersist.tfapi import capi, dtypes


def tensor_info(tensor) -> dict:
    shape = tensor.shape
    return {
        "name": tensor.op.name,
        "tensor": tensor.name,
        "dtype": tensor.dtype.name,
        "shape": None if shape.rank is None else shape.as_list(),
    }


def describe(graph, inputs: list[str], outputs: list[str]) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` for node names in ``graph`` (first outputs)."""
    return {
        "inputs": [tensor_info(graph.get_tensor_by_name(f"{n}:0")) for n in inputs],
        "outputs": [tensor_info(graph.get_tensor_by_name(f"{n}:0")) for n in outputs],
    }


def placeholders(graph_def) -> list[str]:
    """Names of the Placeholder nodes: a frozen graph's inputs."""
    return [n.name for n in graph_def.node if n.op == "Placeholder"]


def defaulted(graph_def) -> list[str]:
    """Names of the PlaceholderWithDefault nodes: inputs a client may feed or leave out."""
    return [n.name for n in graph_def.node if n.op == "PlaceholderWithDefault"]


def describe_graph_def(graph_def, outputs: list[str]) -> dict:
    """The signature of a GraphDef: its placeholders as inputs, ``outputs`` as outputs, and
    (when there are any) its defaulted placeholders as ``optional_inputs``; dtypes and shapes
    from TensorFlow's shape inference (its C library: no TensorFlow import)."""
    with capi.Graph(graph_def) as graph:

        def info(name: str) -> dict:
            dtype, shape = graph.output(name)
            name_of_dtype = dtypes.as_dtype(dtype).name
            return {"name": name, "tensor": f"{name}:0", "dtype": name_of_dtype, "shape": shape}

        sig = {"inputs": [info(n) for n in placeholders(graph_def)]}
        sig["outputs"] = [info(n) for n in outputs]
        optional = defaulted(graph_def)
        if optional:
            sig["optional_inputs"] = [info(n) for n in optional]
    return sig


def beside(path: str | Path) -> dict | None:
    """The signature written next to a model: ``model.json`` beside ``model.pb`` (its
    "signature"), ``signature.json`` in a release checkpoint directory, or for a shipped
    format the export directory's card (``export.json``, which lists the file); None if
    absent."""
    path = Path(path)
    card = _read_card(layout.card(path))
    if card is None:
        card = _export_card_of(path)
    sig = card.get("signature", card) if isinstance(card, dict) else None
    if isinstance(sig, dict) and "inputs" in sig and "outputs" in sig:
        return sig
    return None


def _read_card(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _export_card_of(path: Path) -> dict | None:
    """The export card of the directory ``path`` was shipped to (``model.onnx`` beside it,
    ``saved_model/1`` two levels down), if that card lists ``path``."""
    here = path.resolve()
    for directory in (path.parent, path.parent.parent):
        card = _read_card(directory / layout.EXPORT_CARD)
        shipped = card.get("formats") if isinstance(card, dict) else None
        if isinstance(shipped, dict) and any(
            isinstance(f, dict) and (directory / str(f.get("path", ""))).resolve() == here
            for f in shipped.values()
        ):
            return card
    return None


RELEASE_KEYS = ("features", "label", "num_classes")


def data_of(sig: dict | None) -> dict:
    """The data description (feature columns, label, classes) a signature carries, or {}."""
    return {k: sig[k] for k in RELEASE_KEYS if k in (sig or {})}


def release_data(source: str | Path) -> dict:
    """The data description in a release checkpoint directory's ``signature.json``, or {}."""
    path = Path(source)
    return data_of(beside(path if path.is_dir() else path.parent))
