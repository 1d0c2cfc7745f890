"""Any model frozen in memory, with the names to run it by: ``load_model`` (what compare,
export, the graph pages and predict's loaders start from) and ``outputs_of`` (which outputs a
model has: asked for, its card's, or its graph's likely ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfpersist import formats, safety
from tfpersist.core.digests import digest
from tfpersist.formats import checkpoints
from tfpersist.freezing import freeze
from tfpersist.graph import graphdefs, signature


@dataclass
class Model:
    """One side of a comparison, frozen in memory whatever its source format."""

    spec: str
    kind: str
    graph_def: object
    input_node: str | None  # the card's first input, or the only placeholder
    input_nodes: list[str]  # the card's inputs, or every placeholder
    outputs: list[str]
    features: list[str] | None
    sha256: str
    size: int


def outputs_of(path: Path, kind: str, card: dict | None, asked=None, graph_def=None):
    """The output nodes to use: those ``asked`` for, else the card's, else for a .pb or a
    checkpoint the likely outputs of its graph (``graph_def`` if already read); None for a
    SavedModel (its signature names them)."""
    if asked:
        return asked
    if card:
        return [o["name"] for o in card["outputs"]]
    if kind not in (formats.GRAPH_DEF, formats.CHECKPOINT):
        return None
    from tfpersist.formats import inspection

    if graph_def is None:
        graph_def = (
            graphdefs.read_graph_def(path)
            if kind == formats.GRAPH_DEF
            else graphdefs.read_meta_graph(checkpoints.resolve(path)).graph_def
        )
    return inspection.likely_outputs(graph_def)


def load_model(
    path: str | Path,
    output_nodes: list[str] | None = None,
    trust=safety.TRUST_NOTHING,
    spec: str | None = None,
    architecture: str | Path | None = None,
) -> Model:
    """Freeze the model at ``path`` in memory (a .pb is read as is) with the names its card
    gives; ``spec`` is how the user named it (``model.pb@v1``), by default the path.
    ``architecture`` (a .keras or its config) is what Keras weights or a TF2 checkpoint at
    ``path`` are restored into; a model that holds its own architecture ignores it (compare
    passes it for both sides)."""
    path = Path(path)
    card = signature.beside(path)
    kind = formats.detect(path, weights=architecture is not None)
    if kind not in (formats.KERAS_WEIGHTS, formats.TF2_CHECKPOINT):
        architecture = None
    outputs = outputs_of(path, kind, card, output_nodes)
    graph_def, names = freeze.freeze(path, outputs, trust=trust, architecture=architecture)
    inputs = [i["name"] for i in card["inputs"]] if card else signature.placeholders(graph_def)
    input_node = inputs[0] if card or len(inputs) == 1 else None
    sha, size = digest(path)
    return Model(
        spec or str(path),
        kind,
        graph_def,
        input_node,
        inputs,
        names,
        (card or {}).get("features"),
        sha,
        size,
    )
