"""Dropout for sequences: fresh mask per element, or one mask per sequence (variational)."""
from __future__ import annotations

import numpy as np


class _Dropout:
    def __init__(self, p: float = 0.5, rng=None):
        if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
            raise ValueError(f"dropout p must be a number in [0, 1); got {p!r}")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.training = True
        self.params, self.grads = [], []
        self.mask = None

    def _mask_shape(self, shape):
        raise NotImplementedError

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        # float32 uniforms (24 random bits, plenty to compare with p) draw three times faster than float64
        keep = self.rng.random(self._mask_shape(x.shape), dtype=np.float32) >= self.p
        # inverted dropout: scale at training time, identity at evaluation
        self.mask = keep.astype(x.dtype)
        self.mask *= 1.0 / (1.0 - self.p)
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask


class TimeDropout(_Dropout):
    """Inverted dropout with a fresh mask for every element of ``(N, T, D)``."""

    def _mask_shape(self, shape):
        return shape


class LockedDropout(_Dropout):
    """Variational dropout (Gal & Ghahramani): one mask per sequence and feature,
    shared by all time steps of ``(N, T, D)``."""

    def _mask_shape(self, shape):
        return (shape[0], 1) + tuple(shape[2:])
