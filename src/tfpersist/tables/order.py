"""Keyed bijections of [0, n): a shuffled order whose i-th element costs O(1) to compute.

``Permutation(n, *key)(positions)`` gives the rows at those positions of a pseudo-random
order of ``n`` rows fixed by ``key`` — without drawing the whole order (a full permutation of
10M rows is 80 MB and ~0.2 s; recomputing it per step made a step's cost grow with the data).
A Feistel network over the 2h-bit words (4^h ≥ n), six rounds of splitmix64's finalizer,
cycle-walked into [0, n) (fewer than 4 rounds on average). Used for the batch order
(training: key (seed, epoch)) and the stratified split (prepare: key (seed, class)).
"""

from __future__ import annotations

import functools
import math

import numpy as np

ROUNDS = 6
_M1, _M2, _GOLDEN = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15
_U64 = 2**64 - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 (wrapping) arrays."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def derive(*key: int) -> int:
    """One 64-bit key from integers (a tag, a seed, an epoch …): each folded in through the
    mixer, so (1, 2) and (2, 1) differ."""
    z = np.zeros(1, np.uint64)
    for part in key:
        z = _mix(z ^ np.uint64((int(part) * _GOLDEN + 1) & _U64))
    return int(z[0])


class Permutation:
    """A bijection of [0, n) keyed by integers: ``p(positions)`` → rows (int64)."""

    def __init__(self, n: int, *key: int):
        if n < 1:
            raise ValueError(f"a permutation of {n} elements")
        self.n = n
        self.half = max(1, ((n - 1).bit_length() + 1) // 2)  # 4**half >= n
        self.mask = np.uint64((1 << self.half) - 1)
        self.keys = [np.uint64(derive(*key, r)) for r in range(ROUNDS)]

    def _feistel(self, x: np.ndarray) -> np.ndarray:
        h, mask = np.uint64(self.half), self.mask
        left, right = x >> h, x & mask
        for k in self.keys:
            left, right = right, left ^ (_mix(right ^ k) & mask)
        return (left << h) | right

    def __call__(self, positions) -> np.ndarray:
        x = np.asarray(positions, dtype=np.int64)
        if x.size and (x.min() < 0 or x.max() >= self.n):
            raise IndexError(f"positions outside [0, {self.n})")
        out = x.astype(np.uint64).ravel()
        todo = np.arange(out.size)
        n = np.uint64(self.n)
        while todo.size:  # cycle walking: a value past n goes round again, a bijection on [0, n)
            out[todo] = self._feistel(out[todo])
            todo = todo[out[todo] >= n]
        return out.astype(np.int64).reshape(x.shape)


BATCH_KEY = 2  # the batch order's tag (prepare's split uses 1)
_BLOCK = 4096  # positions of an epoch's order computed at once


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Rows of the batch for global ``step``: positions [i·batch, (i+1)·batch) of epoch e's
    order, a keyed bijection of [0, n) (key: seed, e) — O(batch) per step, whatever n, and a
    pure function of (seed, epoch, position): a resume needs nothing but the step."""
    per_epoch = math.ceil(n / batch_size)
    epoch, i = divmod(step, per_epoch)
    lo, hi = i * batch_size, min((i + 1) * batch_size, n)
    first, last = lo // _BLOCK, (hi - 1) // _BLOCK
    order = np.concatenate([_order_block(n, seed, epoch, b) for b in range(first, last + 1)])
    return order[lo - first * _BLOCK : hi - first * _BLOCK]


@functools.lru_cache(maxsize=4)
def _order_block(n: int, seed: int, epoch: int, block: int) -> np.ndarray:
    """Positions [block·_BLOCK, …) of epoch ``epoch``'s order: numpy's per-call cost shared
    by the steps of a block."""
    start = block * _BLOCK
    return Permutation(n, BATCH_KEY, seed, epoch)(np.arange(start, min(start + _BLOCK, n)))
