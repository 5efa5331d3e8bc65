"""Gradient clipping, in place."""
from __future__ import annotations

import numpy as np

from .._core import training_passes


def clip_grads_norm(grads, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``; returns the norm before."""
    grads = list(grads)
    total = float(np.sqrt(sum(_sums_of_squares(grads))))
    if np.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


def _sums_of_squares(grads: list) -> list:
    """Each gradient's sum of squares in float64, in order.  The compiled ones: one pass over all of a dtype, no
    float64 copy (src/training.pyx); the NumPy below is their twin."""
    sums = [None] * len(grads)
    compiled = [i for i, g in enumerate(grads) if training_passes.compiled(g)]
    for dtype in {grads[i].dtype for i in compiled}:
        same = [i for i in compiled if grads[i].dtype == dtype]
        for i, s in zip(same, training_passes.sums_of_squares([grads[i] for i in same])):
            sums[i] = s
    return [float(np.sum(np.asarray(g, dtype=np.float64) ** 2)) if s is None else s for g, s in zip(grads, sums)]


def clip_grads_value(grads, clip: float) -> None:
    """Clip every gradient element to ``[-clip, clip]``."""
    for g in grads:
        np.clip(g, -clip, clip, out=g)
