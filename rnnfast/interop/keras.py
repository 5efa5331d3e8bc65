"""Keras weight layouts as NumPy arrays, without importing Keras.

Keras stores ``kernel (D, G*H)``, ``recurrent_kernel (H, G*H)`` multiplying from the right (as
rnnfast) and ``bias``.  LSTM gates are i, f, c, o (rnnfast's i, f, g, o).  GRU gates are z, r, h
with ``h' = z * h + (1 - z) * h~`` (rnnfast's convention); ``reset_after=True`` (Keras 2.3+ default,
cuDNN-compatible) has ``bias (2, 3H)``: input and recurrent biases, ``reset_after=False`` one
``bias (3H,)`` and the reset gate applied before the recurrent matmul.  ``SimpleRNN``: ``(D, H)``,
``(H, H)``, ``(H,)``.  Layer weights come from ``layer.get_weights()`` in this order.
"""
from __future__ import annotations

import numpy as np

from .._core.gate_order import check_fused, reorder


KERAS_NAMES = ("kernel", "recurrent_kernel", "bias")


def _arrays(*arrays):
    return [np.array(a) for a in arrays]


def lstm_from_keras(kernel, recurrent_kernel, bias=None):
    """-> rnnfast ``Wx, Wh, b`` (gate orders coincide)."""
    check_fused(kernel, recurrent_kernel, bias, 4, KERAS_NAMES)
    kernel, recurrent_kernel = _arrays(kernel, recurrent_kernel)
    b = np.zeros(kernel.shape[1], kernel.dtype) if bias is None else np.array(bias)
    return kernel, recurrent_kernel, b


def lstm_to_keras(Wx, Wh, b):
    """-> Keras ``[kernel, recurrent_kernel, bias]``."""
    check_fused(Wx, Wh, b, 4)
    return _arrays(Wx, Wh, b)


def gru_from_keras(kernel, recurrent_kernel, bias=None, reset_after=True):
    """-> rnnfast ``Wx, Wh, bx, bh`` for ``gru_forward(..., reset_after=reset_after)``."""
    check_fused(kernel, recurrent_kernel, None, 3, KERAS_NAMES)
    kernel, recurrent_kernel = _arrays(kernel, recurrent_kernel)
    G = kernel.shape[1]
    if bias is None:
        bias = np.zeros((2, G) if reset_after else G, kernel.dtype)
    bias = np.array(bias)
    expected = (2, G) if reset_after else (G,)
    if bias.shape != expected:
        raise ValueError(f"bias has shape {bias.shape}; a Keras GRU with reset_after={reset_after} has {expected}")
    bx, bh = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
    return [reorder(a, "zrn", "rzn") for a in (kernel, recurrent_kernel, bx, bh)]


def gru_to_keras(Wx, Wh, bx, bh, reset_after=True):
    """rnnfast GRU parameters -> Keras ``[kernel, recurrent_kernel, bias]``.

    ``reset_after=False``: both biases sit on the same side of every nonlinearity, so their sum is
    Keras's one bias (exact as a function; one rounding in the sum)."""
    check_fused(Wx, Wh, bx, 3, ("Wx", "Wh", "bx"))
    check_fused(Wx, Wh, bh, 3, ("Wx", "Wh", "bh"))
    kernel, recurrent, bx, bh = [reorder(a, "rzn", "zrn") for a in (Wx, Wh, bx, bh)]
    bias = np.stack([bx, bh]) if reset_after else bx + bh
    return [kernel, recurrent, bias]


def simple_rnn_from_keras(kernel, recurrent_kernel, bias=None):
    """``SimpleRNN`` -> rnnfast ``Wx, Wh, b``."""
    check_fused(kernel, recurrent_kernel, bias, 1, KERAS_NAMES)
    kernel, recurrent_kernel = _arrays(kernel, recurrent_kernel)
    return kernel, recurrent_kernel, np.zeros(kernel.shape[1], kernel.dtype) if bias is None else np.array(bias)


def simple_rnn_to_keras(Wx, Wh, b):
    check_fused(Wx, Wh, b, 1)
    return _arrays(Wx, Wh, b)
