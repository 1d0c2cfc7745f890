"""Distances between two versions' weights and outputs, for compare and the reproducibility
check (which reports how far a stage that did not reproduce is from the committed one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfpersist.formats import bundles, checkpoints
from tfpersist.numerics.distances import max_abs_diff

if TYPE_CHECKING:
    from tfpersist.running.runner import Runner


def checkpoint_weights(source: str | Path) -> dict[str, np.ndarray]:
    """Every variable in a checkpoint (dir or prefix) by name, read from its files
    (bundles.py; TensorFlow's reader for a V1-format checkpoint, which has no .index)."""
    reader = bundles.reader(checkpoints.resolve(source))
    return {
        name: reader.read(name)
        for name in sorted(reader.variables())
        if not name.startswith("_CHECKPOINTABLE")
    }


def weight_distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    """Max abs difference over variables both sides hold with the same shape."""
    common = [n for n in a if n in b and np.shape(a[n]) == np.shape(b[n])]
    diffs = {
        n: max_abs_diff(a[n], b[n])
        for n in common
        if np.size(a[n]) and np.issubdtype(np.asarray(a[n]).dtype, np.number)
    }
    worst = max(diffs, key=diffs.get) if diffs else None
    return {
        "max_abs": diffs[worst] if worst else 0.0,
        "worst": worst,
        "compared": len(diffs),
        "only_a": sorted(set(a) - set(b)),
        "only_b": sorted(set(b) - set(a)),
        "shape_changed": sorted(n for n in a if n in b and np.shape(a[n]) != np.shape(b[n])),
    }


def output_distance(
    a: Runner, b: Runner, x: np.ndarray, input_node: str, output_nodes: list[str]
) -> dict[str, float]:
    """Max abs difference of each output on the rows of ``x``."""
    out_a = a.run(x, input_node, output_nodes)
    out_b = b.run(x, input_node, output_nodes)
    return {n: max_abs_diff(out_a[n], out_b[n]) for n in output_nodes}
