"""GRU in plain NumPy: the specification of ``rnnfast.gru_forward``/``gru_backward``.

Shapes: x (N, T, D), Wx (D, 3H), Wh (H, 3H), bx, bh (3H,), h (N, H).
Gate blocks of the fused weights, in order: r, z, n (PyTorch's order).

reset_after=True (PyTorch, cuDNN):
    r = sigmoid(x_t @ Wx_r + bx_r + h @ Wh_r + bh_r)
    z = sigmoid(x_t @ Wx_z + bx_z + h @ Wh_z + bh_z)
    n = tanh(x_t @ Wx_n + bx_n + r * (h @ Wh_n + bh_n))
reset_after=False (Cho et al. 2014, the textbook form):
    n = tanh(x_t @ Wx_n + bx_n + (r * h) @ Wh_n + bh_n)
both:
    h_t = (1 - z) * n + z * h

With ``layer_norm`` (6H,), the layer-normalized GRU (reset-after): ``rnnfast/reference/layer_norm.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core.validation import (check_cache, check_flag, check_gru_layer_norm, check_need_grad,
                                check_sequence_backward, check_sequence_forward, check_step_x)
from ..cells import GRU
from ._math import sigmoid
from ._steps import step_backward
from ._out import written_into
from .input_dropout import dropped, input_gradient
from .token_input import embedded, embedding_gradient
from . import layer_norm as layer_norm_steps


@dataclass(eq=False)
class GRUCache:
    x: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    reset_after: bool
    h_prev: list
    gates: list  # per step (r, z, n)
    hn: list  # per step: h @ Wh_n + bh_n (reset_after) or (r*h) @ Wh_n + bh_n
    valid: list
    mask: object
    layer_norm: object = None  # layer_norm.LayerNormSteps (layer-normalized GRU)
    tokens: object = None  # token input: (ids, V) (token_input.py)


def gru_forward(x, Wx, Wh, bx, bh, h0=None, lengths=None, reset_after=True, num_threads=None, need_grad=True,
                check_finite=True, *, layer_norm=None, embedding=None, input_dropout=None):
    """Returns ``hs (N, T, H), hT (N, H), cache`` (None with ``need_grad=False``). ``num_threads`` is ignored.
    ``embedding``: token input (``token_input.py``)."""
    keep = check_need_grad(need_grad)
    x, tokens = embedded(x, embedding, Wx, check_finite)
    x, input_mask = dropped(x, input_dropout, embedding)
    hs, hT, cache = _gru_forward(x, Wx, Wh, bx, bh, h0, lengths, reset_after, num_threads, ("h0",), check_finite,
                                 layer_norm)
    cache.tokens, cache.input_mask = tokens, input_mask
    return hs, hT, cache if keep else None


def _gru_forward(x, Wx, Wh, bx, bh, h0, lengths, reset_after, num_threads, state_names, check_finite,
                 layer_norm=None):
    # The states are named by the caller: h0/c0 here, h/c for the single-step functions.
    reset_after = GRU.check_option(reset_after)
    finite = check_flag("check_finite", check_finite)
    v = check_sequence_forward(GRU, x, Wx, Wh, [bx, bh], [(state_names[0], h0)], lengths, finite=finite)
    N, T, H = v.N, v.T, v.H
    (bx, bh), (h,) = v.biases, v.states
    ln = check_gru_layer_norm(layer_norm, H, v.dtype, finite)
    if ln is not None and not reset_after:
        raise ValueError("layer_norm: the layer-normalized GRU is the reset-after one; got reset_after=False")
    steps = v.lengths if v.lengths is not None else np.full(N, T)
    Wh_rz, Wh_n = v.Wh[:, :2 * H], v.Wh[:, 2 * H:]
    hs = np.zeros((N, T, H), dtype=v.dtype)
    cache = GRUCache(v.x, v.Wx, v.Wh, reset_after, [], [], [], [], v.mask,
                     None if ln is None else layer_norm_steps.LayerNormSteps(ln))
    for t in range(T):
        if ln is not None:
            r, z, n, hn, h_new = layer_norm_steps.gru_step_forward(v.x[:, t], h, v.Wx, v.Wh, bx, bh, ln,
                                                                   cache.layer_norm)
        else:
            ax = v.x[:, t] @ v.Wx + bx
            ah_rz = h @ Wh_rz + bh[:2 * H]
            r = sigmoid(ax[:, :H] + ah_rz[:, :H])
            z = sigmoid(ax[:, H:2 * H] + ah_rz[:, H:])
            if reset_after:
                hn = h @ Wh_n + bh[2 * H:]
                n = np.tanh(ax[:, 2 * H:] + r * hn)
            else:
                hn = (r * h) @ Wh_n + bh[2 * H:]
                n = np.tanh(ax[:, 2 * H:] + hn)
            h_new = (1 - z) * n + z * h
        valid = (t < steps)[:, None]
        cache.h_prev.append(h)
        cache.gates.append((r, z, n))
        cache.hn.append(hn)
        cache.valid.append(valid)
        h = np.where(valid, h_new, h)
        hs[:, t] = np.where(valid, h_new, 0)
    return hs, h.copy(), cache


def gru_backward(dhs, cache, dhT=None, check_finite=True, *, out=None):
    """Returns ``dx, dWx, dWh, dbx, dbh, dh0`` (and ``dlayer_norm`` after a layer-normalized forward pass);
    ``dx`` is the embedding's gradient after token input; the weight gradients in ``out``'s arrays where given."""
    grads = embedding_gradient(cache, input_gradient(cache, _gru_backward(dhs, cache, dhT, check_finite)))
    return written_into(out, grads, 2, 1, (dhs, dhT, cache.Wx, cache.Wh))


def _gru_backward(dhs, cache, dhT, check_finite):
    cache = check_cache(cache, GRUCache, "rnnfast.reference.gru_forward")
    N, T, D = cache.x.shape
    H = cache.Wh.shape[0]
    dhs, (dh,) = check_sequence_backward(dhs, [("dhT", dhT)], N, T, H, cache.x.dtype, cache.mask,
                                         finite=check_flag("check_finite", check_finite))
    if cache.layer_norm is not None:
        return layer_norm_steps.gru_backward(dhs, cache, dh)
    Wh_rz, Wh_n = cache.Wh[:, :2 * H], cache.Wh[:, 2 * H:]
    dx = np.zeros_like(cache.x)
    dWx = np.zeros_like(cache.Wx)
    dWh = np.zeros_like(cache.Wh)
    dbx = np.zeros(3 * H, dtype=cache.x.dtype)
    dbh = np.zeros(3 * H, dtype=cache.x.dtype)
    for t in reversed(range(T)):
        r, z, n = cache.gates[t]
        h_prev, hn, valid = cache.h_prev[t], cache.hn[t], cache.valid[t]
        dh_t = dh + dhs[:, t]
        dh_v = np.where(valid, dh_t, 0)  # padded steps send no gradient into the gates
        dz = dh_v * (h_prev - n)
        dan = dh_v * (1 - z) * (1 - n**2)  # gradient at n's pre-activation
        daz = dz * z * (1 - z)
        if cache.reset_after:
            dar = dan * hn * r * (1 - r)
            dah = np.concatenate([dar, daz, dan * r], axis=1)  # at h @ Wh + bh
            dh_prev = dh_t * z + dah @ cache.Wh.T
            dWh += h_prev.T @ dah
        else:
            drh = dan @ Wh_n.T  # at r * h
            dar = drh * h_prev * r * (1 - r)
            dah = np.concatenate([dar, daz, dan], axis=1)
            dh_prev = dh_t * z + drh * r + dah[:, :2 * H] @ Wh_rz.T
            dWh[:, :2 * H] += h_prev.T @ dah[:, :2 * H]
            dWh[:, 2 * H:] += (r * h_prev).T @ dan
        dax = np.concatenate([dar, daz, dan], axis=1)  # at x @ Wx + bx
        dx[:, t] = np.where(valid, dax @ cache.Wx.T, 0)  # zero at padded steps, even with NaN in Wx
        dWx += cache.x[:, t].T @ dax
        dbx += dax.sum(axis=0)
        dbh += dah.sum(axis=0)
        dh = np.where(valid, dh_prev, dh_t)
    return dx, dWx, dWh, dbx, dbh, dh


def gru_step_forward(x, h, Wx, Wh, bx, bh, reset_after=True, check_finite=True, *, layer_norm=None):
    """One step: ``x (N, D)``, ``h (N, H)`` -> ``h_next, cache``."""
    _, h_next, cache = _gru_forward(check_step_x(x), Wx, Wh, bx, bh, h, None, reset_after, None, ("h",), check_finite,
                                    layer_norm)
    return h_next, cache


def gru_step_backward(dh_next, cache, check_finite=True):
    """Returns ``dx (N, D), dh, dWx, dWh, dbx, dbh`` (and ``dlayer_norm`` after a layer-normalized step)."""
    return step_backward(GRU, gru_backward, GRUCache, [dh_next], cache, check_finite)
