"""A counter-based random generator (SplitMix64's output function): the same number for the same counter,
whichever thread asks.  Zoneout's and dropout's masks come from it; the kernels' twin is ``src/zoneout.pxd``."""
from __future__ import annotations

import math

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 (wrapping arithmetic); the kernels' twin is ``zoneout.pxd``."""
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


# --- Inverted dropout's masks (``rnnfast.layers.dropout``, the sequence functions' ``input_dropout``) ---

def dropout_draw(p: float) -> tuple:
    """``(threshold, scale)`` of a mask at rate ``p``: an element is kept where the top 24 bits of its
    counter's number are at least ``threshold``, and then scaled by ``1 / (1 - p)``.  Exact: ``p * 2^24`` is a
    float64 without rounding."""
    return math.ceil(p * (1 << 24)), 1.0 / (1.0 - p)


def dropout_mask(key: int, p: float, shape, dtype) -> np.ndarray:
    """Inverted dropout's mask of ``shape``: element i (C order) is ``1 / (1 - p)`` where the top 24 bits of
    ``splitmix64(key + i)`` (a uniform number in [0, 1) with 2^-24 steps) are at least ``p``, else 0.  The
    specification of the compiled passes (``src/training.pyx``, ``src/layout.pyx``), which give the same bits."""
    threshold, scale = dropout_draw(p)
    dtype = np.dtype(dtype)
    counters = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint64) + np.uint64(key)  # wraps, as in C
    keep = (splitmix64(counters) >> np.uint64(40)) >= np.uint64(threshold)
    return np.where(keep, dtype.type(scale), dtype.type(0)).reshape(shape)
