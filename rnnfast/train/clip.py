"""Gradient clipping, in place."""
from __future__ import annotations

import numpy as np

from .._core import training_passes


def clip_grads_norm(grads, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``; returns the norm before."""
    total = float(np.sqrt(sum(_sum_of_squares(g) for g in grads)))
    if np.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


def _sum_of_squares(g) -> float:
    if training_passes.compiled(g):  # one pass, no float64 copy (src/training.pyx); the NumPy below is its twin
        return training_passes.sum_of_squares(g)
    return float(np.sum(np.asarray(g, dtype=np.float64) ** 2))


def clip_grads_value(grads, clip: float) -> None:
    """Clip every gradient element to ``[-clip, clip]``."""
    for g in grads:
        np.clip(g, -clip, clip, out=g)
