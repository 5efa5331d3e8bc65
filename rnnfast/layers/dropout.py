"""Dropout for sequences: fresh mask per element, or one mask per sequence (variational)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .._core import training_passes
from .._core.counter_rng import dropout_draw, dropout_mask
from .._core.validation import check_dropout_key, check_dropout_rate
from .._core.workspace import pool


def keep_mask(key: int, p: float, shape, dtype) -> np.ndarray:
    """Inverted dropout's mask: ``1 / (1 - p)`` where an element is kept, else 0.  Element i (C order) is kept
    where the top 24 bits of ``splitmix64(key + i)`` (a uniform number in [0, 1) with 2^-24 steps) are at
    least ``p``; whichever thread draws it, the same ``key`` gives the same mask (``counter_rng.dropout_mask``,
    the specification of the compiled pass in ``src/training.pyx``, which gives the same bits)."""
    threshold, scale = _draw(key, p)
    mask = pool.output(shape, dtype)
    if training_passes.compiled(mask):
        training_passes.dropout_keep(key, threshold, scale, mask)
        return mask
    mask[...] = dropout_mask(key, p, mask.shape, mask.dtype)
    return mask


def _draw(key, p):
    """(threshold, scale) of ``keep_mask``'s draw, after checking ``key`` and ``p``."""
    p = check_dropout_rate(p)
    check_dropout_key(key)
    return dropout_draw(p)


class _Dropout:
    def __init__(self, p: float = 0.5, rng=None):
        self.p = check_dropout_rate(p)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.training = True
        self.params, self.grads = [], []
        self._mask = None
        self._drawn = None  # (key, shape, dtype) of a mask drawn but not stored: the compiled pass's

    def _mask_shape(self, shape):
        raise NotImplementedError

    @property
    def mask(self):
        """The last forward's mask (None in evaluation), made from its key where the compiled pass did not
        store it."""
        if self._mask is None and self._drawn is not None:
            key, shape, dtype = self._drawn
            self._mask = keep_mask(key, self.p, shape, dtype)
        return self._mask

    @mask.setter
    def mask(self, value):  # a mask set from outside is the one backward uses, as when it was a plain attribute
        self._mask, self._drawn = value, None

    def forward(self, x):
        self._mask = self._drawn = None
        if not self.training or self.p == 0.0:
            return x
        key = self._key()
        x = np.asarray(x)
        shape = tuple(self._mask_shape(x.shape))
        if shape == x.shape and training_passes.compiled_inputs(x):  # NumPy twin: the two lines below
            self._drawn = (key, shape, x.dtype)
            return _dropped(key, self.p, x)
        self._mask = keep_mask(key, self.p, shape, x.dtype)
        return _times(x, self._mask)

    def _key(self) -> int:
        # One key per call from the layer's generator, then a counter-based draw per element: a pass of
        # compiled code where the generator's own uniforms took twice as long as everything else.
        return int(self.rng.integers(0, 2**64, dtype=np.uint64))

    def handed_over(self, shape, dtype) -> Optional[tuple]:
        """In place of ``forward`` on an array of ``shape`` and ``dtype``: this call's draw as ``(p, key)``, for
        the layer after to apply (its ``input_dropout``, folded into its copy of x), or None where nothing is
        dropped (evaluation, p = 0).  The same generator draw as ``forward``; ``mask`` then gives the mask, and
        the layer after's ``dx`` is already the gradient of this layer's input: no ``backward``."""
        self._mask = self._drawn = None
        if not self.training or self.p == 0.0:
            return None
        if tuple(self._mask_shape(shape)) != tuple(shape):
            raise ValueError(f"{type(self).__name__} draws a mask of shape {tuple(self._mask_shape(shape))}, not one "
                             f"per element of {tuple(shape)}: it cannot be handed over")
        key = self._key()
        self._drawn = (key, tuple(shape), np.dtype(dtype))
        return self.p, key

    def backward(self, dout):
        if self._drawn is not None:  # the same mask, drawn again from its key rather than stored and read back
            key, shape, dtype = self._drawn
            dout = np.asarray(dout)
            if dout.shape == shape and dout.dtype == dtype and training_passes.compiled_inputs(dout):
                return _dropped(key, self.p, dout)
        mask = self.mask
        return dout if mask is None else _times(dout, mask)


def _dropped(key, p, a):
    """``a * keep_mask(key, p, a.shape, a.dtype)`` in one compiled pass that does not store the mask."""
    threshold, scale = _draw(key, p)
    out = pool.output(a.shape, a.dtype)
    training_passes.dropout_times(key, threshold, scale, a, out)
    return out


def _times(a, mask):
    """``a * mask`` into an output of the pool (``pool.output``): the layer's product is new every batch."""
    a = np.asarray(a)
    out = pool.output(np.broadcast_shapes(a.shape, mask.shape), np.result_type(a, mask))
    if training_passes.compiled_inputs(a, mask, out):  # one pass on the layer's threads; NumPy twin below
        training_passes.times(a, mask, out)
        return out
    return np.multiply(a, mask, out=out)


class TimeDropout(_Dropout):
    """Inverted dropout with a fresh mask for every element of ``(N, T, D)``."""

    def _mask_shape(self, shape):
        return shape


class LockedDropout(_Dropout):
    """Variational dropout (Gal & Ghahramani): one mask per sequence and feature,
    shared by all time steps of ``(N, T, D)``."""

    def _mask_shape(self, shape):
        return (shape[0], 1) + tuple(shape[2:])
