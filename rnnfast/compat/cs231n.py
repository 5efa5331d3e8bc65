"""Drop-in replacements for the cs231n RNN layer functions (``rnn_layers.py``), on rnnfast's kernels.

Same names, arguments, returns and conventions: batch-first ``(N, T, D)``,
weights ``(in, out)`` multiplying from the right, LSTM gate blocks in the
order **i, f, o, g**, the LSTM cell state starting at zero and not returned,
caches opaque.  The dtype of the inputs is kept (float32 or float64).
Change ``from cs231n.rnn_layers import *`` to ``from rnnfast.compat.cs231n import *``.
"""
from __future__ import annotations

import numpy as np

from .. import lstm as _lstm
from .. import rnn as _rnn
from .._core.gate_order import reorder
from .._core.validation import check_labels
from .gradient_check import (eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse,  # noqa: F401
                             rel_error)

_CS231N_LSTM = "ifog"  # cs231n's gate order; rnnfast's is "ifgo"


def sigmoid(x):
    """Numerically stable sigmoid (cs231n's helper)."""
    pos = x >= 0
    z = np.exp(np.where(pos, -x, x))
    return np.where(pos, 1 / (1 + z), z / (1 + z))


# ---- vanilla RNN (tanh) ----------------------------------------------------

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """``x (N, D)``, ``prev_h (N, H)``, ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)`` -> ``next_h, cache``."""
    return _rnn.rnn_step_forward(x, prev_h, Wx, Wh, b)


def rnn_step_backward(dnext_h, cache):
    """-> ``dx, dprev_h, dWx, dWh, db``."""
    return _rnn.rnn_step_backward(dnext_h, cache)


def rnn_forward(x, h0, Wx, Wh, b):
    """``x (N, T, D)``, ``h0 (N, H)`` -> ``h (N, T, H), cache``."""
    h, _, cache = _rnn.rnn_forward(x, Wx, Wh, b, h0)
    return h, cache


def rnn_backward(dh, cache):
    """``dh (N, T, H)`` (upstream gradients of all hidden states) -> ``dx, dh0, dWx, dWh, db``."""
    dx, dWx, dWh, db, dh0 = _rnn.rnn_backward(dh, cache)
    return dx, dh0, dWx, dWh, db


# ---- LSTM (gate order i, f, o, g) ------------------------------------------

def _to_kernel(Wx, Wh, b):
    return tuple(reorder(a, _CS231N_LSTM, "ifgo", name) for name, a in (("Wx", Wx), ("Wh", Wh), ("b", b)))


def _from_kernel(*grads):
    return tuple(reorder(g, "ifgo", _CS231N_LSTM) for g in grads)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """``x (N, D)``, ``prev_h, prev_c (N, H)``, ``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``
    -> ``next_h, next_c, cache``."""
    return _lstm.lstm_step_forward(x, prev_h, prev_c, *_to_kernel(Wx, Wh, b))


def lstm_step_backward(dnext_h, dnext_c, cache):
    """-> ``dx, dprev_h, dprev_c, dWx, dWh, db``."""
    dx, dh, dc, dWx, dWh, db = _lstm.lstm_step_backward(dnext_h, dnext_c, cache)
    return (dx, dh, dc, *_from_kernel(dWx, dWh, db))


def lstm_forward(x, h0, Wx, Wh, b):
    """``x (N, T, D)``, ``h0 (N, H)``; the cell state starts at zero -> ``h (N, T, H), cache``."""
    h, _, _, cache = _lstm.lstm_forward(x, *_to_kernel(Wx, Wh, b), h0)
    return h, cache


def lstm_backward(dh, cache):
    """``dh (N, T, H)`` -> ``dx, dh0, dWx, dWh, db``."""
    dx, dWx, dWh, db, dh0, _ = _lstm.lstm_backward(dh, cache)
    return (dx, dh0, *_from_kernel(dWx, dWh, db))


# ---- embedding, temporal affine, temporal softmax loss ---------------------

def word_embedding_forward(x, W):
    """``x (N, T)`` integer ids, ``W (V, D)`` -> ``out (N, T, D), cache``."""
    x = np.asarray(x)
    check_labels("x", x, x.shape, W.shape[0], what="integer word ids")
    return W[x], (x, W.shape, W.dtype)


def word_embedding_backward(dout, cache):
    """``dout (N, T, D)`` -> ``dW (V, D)`` (rows of repeated ids add up)."""
    x, shape, dtype = cache
    dW = np.zeros(shape, dtype=dtype)
    np.add.at(dW, x.reshape(-1), np.asarray(dout).reshape(-1, shape[1]))
    return dW


def temporal_affine_forward(x, w, b):
    """``x (N, T, D)``, ``w (D, M)``, ``b (M,)`` -> ``out (N, T, M), cache``."""
    N, T, D = x.shape
    out = (x.reshape(N * T, D) @ w).reshape(N, T, w.shape[1]) + b
    return out, (x, w, b, out)


def temporal_affine_backward(dout, cache):
    """-> ``dx, dw, db``."""
    x, w, b, _ = cache
    N, T, D = x.shape
    M = b.shape[0]
    d2 = dout.reshape(N * T, M)
    dx = (d2 @ w.T).reshape(N, T, D)
    dw = x.reshape(N * T, D).T @ d2
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Softmax cross-entropy at every step where ``mask`` is true, summed over time and
    averaged over the batch: ``x (N, T, V)`` scores, ``y (N, T)`` targets -> ``loss, dx``."""
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"x must be a 3-d numpy.ndarray (N, T, V); got {getattr(x, 'shape', type(x).__name__)}")
    N, T, V = x.shape
    check_labels("y", np.asarray(y), (N, T), V)
    mask = np.asarray(mask)
    if mask.shape != (N, T):
        raise ValueError(f"mask has shape {mask.shape}; expected ({N}, {T}) = (N, T) of x")
    x_flat = x.reshape(N * T, V)
    y_flat = np.asarray(y).reshape(N * T)
    mask_flat = mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]
    if verbose:
        print("dx_flat: ", dx_flat.shape)
    return loss, dx_flat.reshape(N, T, V)
