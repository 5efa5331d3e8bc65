"""Dropout on the way in (the sequence functions' ``input_dropout=(p, key)``): the cell reads ``x`` times
``counter_rng.dropout_mask(key, p, x.shape)``, and backward's ``dx`` is the gradient of the ``x`` given.  The
kernels drop x in their time-major copy (``rnnfast._core.buffers.time_major``) and dx in its batch-major copy;
one product per element either way, so the bits agree."""
from __future__ import annotations

import numpy as np

from .._core.counter_rng import dropout_mask
from .._core.validation import check_input_dropout


def dropped(x, input_dropout, embedding):
    """``(x, mask)``: ``x`` itself and None where nothing is dropped, else ``x * mask`` and the mask.  An ``x``
    the checks will refuse is left to them, so that both backends give the same error."""
    drop = check_input_dropout(input_dropout, embedding)
    if (drop is None or not isinstance(x, np.ndarray) or x.ndim != 3 or not x.dtype.isnative
            or x.dtype not in (np.float32, np.float64)):
        return x, None
    mask = dropout_mask(drop[1], drop[0], x.shape, x.dtype)
    return x * mask, mask


def input_gradient(cache, grads: tuple) -> tuple:
    """A backward pass's gradients with ``dx`` times the forward pass's mask, where it had one."""
    mask = getattr(cache, "input_mask", None)
    return grads if mask is None else (grads[0] * mask, *grads[1:])
