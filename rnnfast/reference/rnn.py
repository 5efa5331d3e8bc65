"""Vanilla (Elman) RNN in plain NumPy: the specification of ``rnnfast.rnn_forward``/``rnn_backward``.

Shapes: x (N, T, D), Wx (D, H), Wh (H, H), b (H,), h (N, H).

    h_t = act(x_t @ Wx + h_{t-1} @ Wh + b),   act = tanh or relu
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core.validation import (check_cache, check_flag, check_need_grad, check_sequence_backward,
                                check_sequence_forward, check_step_x)
from ..cells import RNN
from ._steps import add_step_grads, step_backward
from ._out import written_into
from .input_dropout import dropped, input_gradient
from .token_input import embedded, embedding_gradient

@dataclass(eq=False)
class RNNCache:
    x: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    nonlinearity: str
    h_prev: list
    h: list  # per step, the activation
    valid: list
    mask: object
    tokens: object = None  # token input: (ids, V) (token_input.py)


def rnn_forward(x, Wx, Wh, b, h0=None, nonlinearity="tanh", lengths=None, num_threads=None, need_grad=True,
                check_finite=True, *, embedding=None, input_dropout=None):
    """Returns ``hs (N, T, H), hT (N, H), cache`` (None with ``need_grad=False``). ``num_threads`` is ignored.
    ``embedding``: token input (``token_input.py``)."""
    keep = check_need_grad(need_grad)
    x, tokens = embedded(x, embedding, Wx, check_finite)
    x, input_mask = dropped(x, input_dropout, embedding)
    hs, hT, cache = _rnn_forward(x, Wx, Wh, b, h0, nonlinearity, lengths, num_threads, ("h0",), check_finite)
    cache.tokens, cache.input_mask = tokens, input_mask
    return hs, hT, cache if keep else None


def _rnn_forward(x, Wx, Wh, b, h0, nonlinearity, lengths, num_threads, state_names, check_finite):
    # The states are named by the caller: h0/c0 here, h/c for the single-step functions.
    nonlinearity = RNN.check_option(nonlinearity)
    v = check_sequence_forward(RNN, x, Wx, Wh, [b], [(state_names[0], h0)], lengths,
                               finite=check_flag("check_finite", check_finite))
    N, T, H = v.N, v.T, v.H
    (b,), (h,) = v.biases, v.states
    steps = v.lengths if v.lengths is not None else np.full(N, T)
    hs = np.zeros((N, T, H), dtype=v.dtype)
    cache = RNNCache(v.x, v.Wx, v.Wh, nonlinearity, [], [], [], v.mask)
    for t in range(T):
        a = v.x[:, t] @ v.Wx + h @ v.Wh + b
        h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
        valid = (t < steps)[:, None]
        cache.h_prev.append(h)
        cache.h.append(h_new)
        cache.valid.append(valid)
        h = np.where(valid, h_new, h)
        hs[:, t] = np.where(valid, h_new, 0)
    return hs, h.copy(), cache


def rnn_backward(dhs, cache, dhT=None, check_finite=True, *, out=None):
    """Returns ``dx, dWx, dWh, db, dh0``; ``dx`` is the embedding's gradient after token input; the weight
    gradients in ``out``'s arrays where given."""
    grads = embedding_gradient(cache, input_gradient(cache, _rnn_backward(dhs, cache, dhT, check_finite)))
    return written_into(out, grads, 1, 1, (dhs, dhT, cache.Wx, cache.Wh))


def _rnn_backward(dhs, cache, dhT, check_finite):
    cache = check_cache(cache, RNNCache, "rnnfast.reference.rnn_forward")
    N, T, D = cache.x.shape
    H = cache.Wh.shape[0]
    dhs, (dh,) = check_sequence_backward(dhs, [("dhT", dhT)], N, T, H, cache.x.dtype, cache.mask,
                                         finite=check_flag("check_finite", check_finite))
    dx = np.zeros_like(cache.x)
    dWx = np.zeros_like(cache.Wx)
    dWh = np.zeros_like(cache.Wh)
    db = np.zeros(H, dtype=cache.x.dtype)
    for t in reversed(range(T)):
        h_new, valid = cache.h[t], cache.valid[t]
        dh_t = dh + dhs[:, t]
        if cache.nonlinearity == "tanh":
            da = dh_t * (1 - h_new**2)
        else:
            da = dh_t * (h_new > 0)
        da = np.where(valid, da, 0)
        add_step_grads(t, da, valid, cache, dx, dWx, dWh)
        db += da.sum(axis=0)
        dh = np.where(valid, da @ cache.Wh.T, dh_t)
    return dx, dWx, dWh, db, dh


def rnn_step_forward(x, h, Wx, Wh, b, nonlinearity="tanh", check_finite=True):
    """One step: ``x (N, D)``, ``h (N, H)`` -> ``h_next, cache``."""
    _, h_next, cache = _rnn_forward(check_step_x(x), Wx, Wh, b, h, nonlinearity, None, None, ("h",), check_finite)
    return h_next, cache


def rnn_step_backward(dh_next, cache, check_finite=True):
    """Returns ``dx (N, D), dh, dWx, dWh, db``."""
    return step_backward(RNN, rnn_backward, RNNCache, [dh_next], cache, check_finite)
