"""Gradient clipping, in place."""
from __future__ import annotations

import numpy as np


def clip_grads_norm(grads, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``; returns the norm before."""
    total = float(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)))
    if np.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


def clip_grads_value(grads, clip: float) -> None:
    """Clip every gradient element to ``[-clip, clip]``."""
    for g in grads:
        np.clip(g, -clip, clip, out=g)
