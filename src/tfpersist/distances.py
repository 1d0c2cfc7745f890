"""How far apart two arrays are: the one distance every comparison uses (evaluation,
shipping's parity, compare, localize, the reproducibility check). numpy only.
"""

from __future__ import annotations

import numpy as np


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute elementwise difference (0 for empty arrays), in float64."""
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(diff.max()) if diff.size else 0.0
