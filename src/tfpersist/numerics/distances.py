"""How far apart two arrays are: the one distance every comparison uses (evaluation,
shipping's parity, compare, localize, the reproducibility check). numpy only.
"""

from __future__ import annotations

import numpy as np


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute elementwise difference (0 for empty arrays), in float64."""
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(diff.max()) if diff.size else 0.0


def excess(want: np.ndarray, got: np.ndarray, rtol: float) -> tuple[float, float, float]:
    """How far ``got`` is from ``want`` beyond a relative allowance, as ``np.allclose`` judges
    closeness (``|got - want| <= atol + rtol·|want|``): (the largest ``|got - want| -
    rtol·|want|``, that element's difference, ``want`` there), in float64; compared with
    atol by the caller. A NaN or inf where the other side has none is infinitely far; (0, 0, 0)
    for empty arrays."""
    a, b = np.asarray(want, np.float64).ravel(), np.asarray(got, np.float64).ravel()
    if not a.size:
        return 0.0, 0.0, 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities and NaNs: no distance
    diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    over = diff - rtol * np.where(np.isfinite(a), np.abs(a), 0.0)
    i = int(np.argmax(over))
    return float(over[i]), float(diff[i]), float(a[i])
