"""A model of any format, ready to run: a frozen .pb, a TF1 checkpoint or a SavedModel
(frozen in memory under the inference allowlist, run in a TF session), a .tflite or an .onnx
(interpreters.py). ``predict`` and ``serve`` open models here, so one command runs every format
the same way, with the same checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpersist import formats, safety
from tfpersist.core.errors import TfpersistError
from tfpersist.formats import interpreters
from tfpersist.formats.interpreters import Tensor, check_names


def open_model(
    path: str | Path,
    output_nodes: list[str] | None = None,
    signature_key: str | None = None,
    trust: safety.Trust = safety.TRUST_NOTHING,
    threads: int | None = None,
    architecture: str | Path | None = None,
):
    """The model at ``path`` loaded for running (GraphModel, TFLiteModel or OnnxModel);
    ``architecture``: the Keras model that weights at ``path`` belong to."""
    kind = formats.detect(path, runnable=True, weights=architecture is not None)
    if signature_key and kind != formats.SAVED_MODEL:
        raise TfpersistError(f"--signature: {path} is a {kind}, not a SavedModel")
    if kind == formats.TFLITE:
        return interpreters.TFLiteModel(path, trust, threads).select(output_nodes)
    if kind == formats.ONNX:
        return interpreters.OnnxModel(path, trust, threads).select(output_nodes)
    return GraphModel.open(path, kind, output_nodes, signature_key, trust, threads, architecture)


class GraphModel:
    """A frozen GraphDef in a TF session (runner.Runner); names are node names, or for a
    SavedModel its signature's keys."""

    format = "TensorFlow graph"

    def __init__(self, graph_def, source: str, inputs: dict, outputs: dict, trust, threads=None):
        from tfpersist.graph.signature import defaulted, describe
        from tfpersist.running.runner import Runner

        safety.check(graph_def, list(outputs.values()), source, trust)
        optional = {n: n for n in defaulted(graph_def) if n not in inputs.values()}
        self.source, self._outputs = source, outputs
        self._inputs = {**inputs, **optional}
        self._runner = Runner.from_graph_def(graph_def, source, threads)
        self._runner.trust = trust
        sig = describe(self._runner.graph, list(self._inputs.values()), list(outputs.values()))
        by_node = {t["name"]: t for t in sig["inputs"] + sig["outputs"]}

        def spec(key, node):
            t = by_node[node]
            return Tensor(key, t["dtype"], t["shape"])

        self.inputs = [spec(k, n) for k, n in inputs.items()]
        # placeholders with a default (a flag freezing kept live): fed only when given
        self.optional_inputs = [spec(k, n) for k, n in optional.items()]
        self.outputs = [spec(k, n) for k, n in outputs.items()]

    @classmethod
    def open(
        cls, path, kind, output_nodes, signature_key, trust, threads, architecture=None
    ) -> GraphModel:
        from tfpersist.freezing import freeze, models
        from tfpersist.graph import graphdefs, signature

        path = Path(path)
        # a SavedModel's own signature names its inputs and outputs (its card, if any, is
        # read for the feature columns only: prediction.py)
        card = None if kind == formats.SAVED_MODEL else signature.beside(path)
        if kind == formats.GRAPH_DEF:
            graph_def = graphdefs.read_graph_def(path)
            names = models.outputs_of(path, kind, card, output_nodes, graph_def)
            names = graphdefs.node_names(names or [])
            if not names:
                raise TfpersistError(f"{path}: no output nodes found; name them --output-nodes")
            graphdefs.check_nodes(graph_def, names)
        else:
            asked = models.outputs_of(path, kind, card, output_nodes)
            graph_def, names = freeze.freeze(
                path, asked, trust=trust, signature_key=signature_key, architecture=architecture
            )
        placeholders = signature.placeholders(graph_def)
        if card:
            placeholders = [i["name"] for i in card["inputs"]]
        inputs = {p: p for p in placeholders}
        outputs = {n: n for n in names}
        if kind == formats.SAVED_MODEL:
            inputs, outputs = _saved_model_keys(path, signature_key, placeholders, names)
        return cls(graph_def, str(path), inputs, outputs, trust, threads)

    def run(self, feeds: dict[str, np.ndarray], batch_size: int = 1024) -> dict[str, np.ndarray]:
        check_names(self.source, feeds, list(self._inputs), all_needed=False)
        nodes = {self._inputs[k]: v for k, v in feeds.items()}
        got = self._runner.run(nodes, None, list(self._outputs.values()), batch_size)
        return {k: got[n] for k, n in self._outputs.items()}

    def close(self) -> None:
        self._runner.close()


def _saved_model_keys(path, signature_key, placeholders, names):
    """A SavedModel's signature keys → the frozen graph's placeholder and output nodes."""
    from tfpersist.formats import saved_models
    from tfpersist.tfapi.tensornames import op_name

    meta = saved_models.meta_graph(saved_models.read(path), path)
    sig = meta.signature_def[signature_key or saved_models.DEFAULT_SIGNATURE]
    inputs = {}
    for key in sorted(sig.inputs):
        node = op_name(sig.inputs[key].name)
        inputs[key] = node if node in placeholders else key
    if sorted(inputs.values()) != sorted(placeholders):  # renamed on the way: node names
        inputs = {p: p for p in placeholders}
    keys = sorted(sig.outputs)
    outputs = dict(zip(keys, names, strict=True)) if len(keys) == len(names) else {}
    return inputs, outputs or {n: n for n in names}
