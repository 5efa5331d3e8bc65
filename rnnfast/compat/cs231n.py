"""Drop-in replacements for the cs231n RNN layer functions (``rnn_layers.py``), on rnnfast's kernels.

Same names, arguments, returns and conventions: batch-first ``(N, T, D)``,
weights ``(in, out)`` multiplying from the right, LSTM gate blocks in the
order **i, f, o, g**, the LSTM cell state starting at zero and not returned,
caches opaque; ``affine_forward``/``affine_backward`` too (``rnn_layers.py`` has them since 2021, and
``CaptioningRNN`` takes them from there).  Mixed dtypes promote as NumPy does (float32 weights with a
float64 ``h0`` compute and return float64), and NaN/Inf propagate as in NumPy (no error).
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


# NaN and Inf go through as in the assignment's NumPy (a diverged run prints nan losses).
_NUMPY_LIKE = dict(check_finite=False)


def _promoted(*arrays):
    """The arrays in the dtype NumPy's arithmetic on them would give (float32 stays float32, anything mixed
    with float64 becomes float64; integers compute in float64), for the kernels, which take one dtype."""
    given = [a for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind in "biuf"]
    if not given:
        return list(arrays)
    dtype = np.result_type(*given)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64) if dtype.kind != "f" or dtype.itemsize > 8 else np.dtype(np.float32)
    # anything else (None, a list) goes on as it came: the kernels' checks name it
    return [a.astype(dtype, copy=False) if any(a is g for g in given) else a for a in arrays]


def _backward_dtype(dout, cache):
    """Upstream gradients in the dtype of the forward pass (the cache's); the results in what NumPy would
    give for both (float64 if either is)."""
    dout = np.asarray(dout)
    fwd = cache.x_tm.dtype
    return dout.astype(fwd, copy=False), np.result_type(fwd, dout.dtype if dout.dtype.kind == "f" else fwd)


def _as_dtype(arrays, dtype):
    return tuple(a.astype(dtype, copy=False) for a in arrays)


def affine_forward(x, w, b):
    """``x (N, d_1, ..., d_k)`` flattened to ``(N, D)``, ``w (D, M)``, ``b (M,)`` -> ``out (N, M), cache``."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """-> ``dx`` (shaped like ``x``), ``dw``, ``db``."""
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = np.sum(dout, axis=0)
    return dx, dw, db


def sigmoid(x):
    """Numerically stable sigmoid (cs231n's helper)."""
    pos = x >= 0
    z = np.exp(np.where(pos, -x, x))
    return np.where(pos, 1 / (1 + z), z / (1 + z))


# ---- vanilla RNN (tanh) ----------------------------------------------------

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """``x (N, D)``, ``prev_h (N, H)``, ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)`` -> ``next_h, cache``."""
    return _rnn.rnn_step_forward(*_promoted(x, prev_h, Wx, Wh, b), **_NUMPY_LIKE)


def rnn_step_backward(dnext_h, cache):
    """-> ``dx, dprev_h, dWx, dWh, db``."""
    dnext_h, out = _backward_dtype(dnext_h, cache)
    return _as_dtype(_rnn.rnn_step_backward(dnext_h, cache, **_NUMPY_LIKE), out)


def rnn_forward(x, h0, Wx, Wh, b):
    """``x (N, T, D)``, ``h0 (N, H)`` -> ``h (N, T, H), cache``."""
    x, h0, Wx, Wh, b = _promoted(x, h0, Wx, Wh, b)
    h, _, cache = _rnn.rnn_forward(x, Wx, Wh, b, h0, **_NUMPY_LIKE)
    return h, cache


def rnn_backward(dh, cache):
    """``dh (N, T, H)`` (upstream gradients of all hidden states) -> ``dx, dh0, dWx, dWh, db``."""
    dh, out = _backward_dtype(dh, cache)
    dx, dWx, dWh, db, dh0 = _rnn.rnn_backward(dh, cache, **_NUMPY_LIKE)
    return _as_dtype((dx, dh0, dWx, dWh, db), out)


# ---- LSTM (gate order i, f, o, g) ------------------------------------------

def _to_kernel(Wx, Wh, b):
    return tuple(reorder(a, _CS231N_LSTM, "ifgo", name) for name, a in (("Wx", Wx), ("Wh", Wh), ("b", b)))


def _from_kernel(*grads):
    return tuple(reorder(g, "ifgo", _CS231N_LSTM) for g in grads)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """``x (N, D)``, ``prev_h, prev_c (N, H)``, ``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``
    -> ``next_h, next_c, cache``."""
    x, prev_h, prev_c, Wx, Wh, b = _promoted(x, prev_h, prev_c, Wx, Wh, b)
    return _lstm.lstm_step_forward(x, prev_h, prev_c, *_to_kernel(Wx, Wh, b), **_NUMPY_LIKE)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """-> ``dx, dprev_h, dprev_c, dWx, dWh, db``."""
    dnext_h, out = _backward_dtype(dnext_h, cache)
    dnext_c, out_c = _backward_dtype(dnext_c, cache)
    dx, dh, dc, dWx, dWh, db = _lstm.lstm_step_backward(dnext_h, dnext_c, cache, **_NUMPY_LIKE)
    return _as_dtype((dx, dh, dc, *_from_kernel(dWx, dWh, db)), np.result_type(out, out_c))


def lstm_forward(x, h0, Wx, Wh, b):
    """``x (N, T, D)``, ``h0 (N, H)``; the cell state starts at zero -> ``h (N, T, H), cache``."""
    x, h0, Wx, Wh, b = _promoted(x, h0, Wx, Wh, b)
    h, _, _, cache = _lstm.lstm_forward(x, *_to_kernel(Wx, Wh, b), h0, **_NUMPY_LIKE)
    return h, cache


def lstm_backward(dh, cache):
    """``dh (N, T, H)`` -> ``dx, dh0, dWx, dWh, db``."""
    dh, out = _backward_dtype(dh, cache)
    dx, dWx, dWh, db, dh0, _ = _lstm.lstm_backward(dh, cache, **_NUMPY_LIKE)
    return _as_dtype((dx, dh0, *_from_kernel(dWx, dWh, db)), out)


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
