"""LSTM in plain NumPy: the specification that ``rnnfast.lstm_forward`` and
``rnnfast.lstm_backward`` are tested against.

Shapes: x (N, T, D), Wx (D, 4H), Wh (H, 4H), b (4H,), states (N, H).
Gate blocks of the fused weights, in order: i, f, g, o (PyTorch's order).

    a_t = x_t @ Wx + h_{t-1} @ Wh + b
    i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

With ``peephole`` p = [p_i | p_f | p_o] (3H,), the peephole LSTM of Gers & Schmidhuber (2000), as
Graves (2013) writes it: the gates see the cell state through diagonal weights,

    i = sigmoid(a_i + p_i * c_{t-1})   f = sigmoid(a_f + p_f * c_{t-1})   o = sigmoid(a_o + p_o * c_t)

With ``projection`` Whr (H, P), the projection LSTM (LSTMP) of Sak et al. (2014), as PyTorch's
``nn.LSTM(proj_size=P)``: the state carried and output is the projection of the LSTM's

    m_t = o * tanh(c_t)      h_t = m_t @ Whr

so ``Wh`` is (P, 4H), ``h0``/``hT`` and ``hs`` are P wide and ``c`` stays H wide.

With ``layer_norm`` (10H,), the layer-normalized LSTM: ``rnnfast/reference/layer_norm.py``.  With ``zoneout``
(and ``zoneout_seed``), zoneout: ``rnnfast/reference/zoneout.py``.

With ``lengths``, a step t >= lengths[n] leaves sequence n's state unchanged
and outputs zeros there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core.validation import (check_cache, check_flag, check_layer_norm, check_need_grad, check_peephole,
                                check_projected_forward, check_sequence_backward, check_sequence_forward, check_states,
                                check_step_x, check_zoneout)
from . import layer_norm as layer_norm_steps
from . import zoneout as zoneout_steps
from ..cells import LSTM
from ._math import sigmoid
from ._steps import add_step_grads, step_backward
from ._out import written_into
from .input_dropout import dropped, input_gradient
from .token_input import embedded, embedding_gradient


@dataclass(eq=False)
class LSTMCache:
    x: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    h_prev: list  # per step, (N, H)
    c_prev: list
    c: list
    gates: list  # per step, (i, f, g, o) activations
    valid: list  # per step, (N, 1) bool
    mask: object
    peephole: object = None  # (3H,) or None
    projection: object = None  # (H, P) or None
    m: list = None  # per step, (N, H) o * tanh(c) (projection LSTM)
    layer_norm: object = None  # layer_norm.LayerNormSteps (layer-normalized LSTM)
    zone: list = None  # per step, (k_c, k_h) (zoneout); None without
    tokens: object = None  # token input: (ids, V) (token_input.py)


def lstm_forward(x, Wx, Wh, b, h0=None, c0=None, lengths=None, num_threads=None, need_grad=True,
                 check_finite=True, *, peephole=None, projection=None, layer_norm=None, zoneout=None,
                 zoneout_seed=None, embedding=None, input_dropout=None):
    """Returns ``hs (N, T, H), hT (N, H), cT (N, H), cache`` (None with ``need_grad=False``); with
    ``projection``, ``hs`` and ``hT`` are P wide.  ``num_threads`` is ignored.  ``embedding``: token input
    (``token_input.py``)."""
    keep = check_need_grad(need_grad)
    x, tokens = embedded(x, embedding, Wx, check_finite)
    x, input_mask = dropped(x, input_dropout, embedding)
    hs, hT, cT, cache = _lstm_forward(x, Wx, Wh, b, h0, c0, lengths, num_threads, ("h0", "c0"), check_finite,
                                      peephole, projection, layer_norm, zoneout, zoneout_seed)
    cache.tokens, cache.input_mask = tokens, input_mask
    return hs, hT, cT, cache if keep else None


def _lstm_forward(x, Wx, Wh, b, h0, c0, lengths, num_threads, state_names, check_finite, peephole=None,
                  projection=None, layer_norm=None, zoneout=None, zoneout_seed=None):
    # The states are named by the caller: h0/c0 here, h/c for the single-step functions.
    finite = check_flag("check_finite", check_finite)
    states = list(zip(state_names, (h0, c0)))
    if projection is None:
        v = check_sequence_forward(LSTM, x, Wx, Wh, [b], states, lengths, finite=finite)
    else:
        v = check_projected_forward(x, Wx, Wh, b, projection, states, lengths, finite=finite)
    N, T, H = v.N, v.T, v.H
    p = check_peephole(peephole, H, v.dtype, finite)
    p_i, p_f, p_o = (0, 0, 0) if p is None else (p[:H], p[H:2 * H], p[2 * H:])
    ln = check_layer_norm(layer_norm, H, v.dtype, finite)
    if ln is not None and (p is not None or v.Whr is not None):
        raise ValueError("layer_norm: not with peephole or projection (one LSTM variant at a time)")
    zone, seed = check_zoneout(zoneout, zoneout_seed)
    if zone is not None and (p is not None or v.Whr is not None or ln is not None):
        raise ValueError("zoneout: not with peephole, projection or layer_norm (one LSTM variant at a time)")
    (b,), (h, c) = v.biases, v.states
    steps = v.lengths if v.lengths is not None else np.full(N, T)
    hs = np.zeros((N, T, h.shape[1]), dtype=v.dtype)
    cache = LSTMCache(v.x, v.Wx, v.Wh, [], [], [], [], [], v.mask, p, v.Whr, [],
                      None if ln is None else layer_norm_steps.LayerNormSteps(ln),
                      None if zone is None else [])
    for t in range(T):
        if ln is not None:
            i, f, g, o, c_new, h_new = layer_norm_steps.step_forward(t, v.x[:, t], h, c, v.Wx, v.Wh, b, ln,
                                                                     cache.layer_norm)
            _keep_step(cache, h, c, c_new, (i, f, g, o), (t < steps)[:, None])
            h, c = _advance(cache, hs, t, h, c, h_new, c_new)
            continue
        a = v.x[:, t] @ v.Wx + h @ v.Wh + b
        i = sigmoid(a[:, :H] + p_i * c)
        f = sigmoid(a[:, H:2 * H] + p_f * c)
        g = np.tanh(a[:, 2 * H:3 * H])
        c_new = f * c + i * g
        o = sigmoid(a[:, 3 * H:] + p_o * c_new)
        h_new = o * np.tanh(c_new)
        if zone is not None:  # c_new stays c~ in the cache, for its tanh
            k_c, k_h = zoneout_steps.masks(seed, t, N, T, H, *zone, v.dtype) if seed is not None else zone
            cache.zone.append((k_c, k_h))
            valid = (t < steps)[:, None]
            _keep_step(cache, h, c, c_new, (i, f, g, o), valid)
            h, c = _advance(cache, hs, t, h, c, k_h * h + (1 - k_h) * h_new, k_c * c + (1 - k_c) * c_new)
            continue
        if v.Whr is not None:
            cache.m.append(h_new)
            h_new = h_new @ v.Whr
        valid = (t < steps)[:, None]
        _keep_step(cache, h, c, c_new, (i, f, g, o), valid)
        h, c = _advance(cache, hs, t, h, c, h_new, c_new)
    return hs, h.copy(), c.copy(), cache


def _keep_step(cache, h, c, c_new, gates, valid):
    cache.h_prev.append(h)
    cache.c_prev.append(c)
    cache.c.append(c_new)
    cache.gates.append(gates)
    cache.valid.append(valid)


def _advance(cache, hs, t, h, c, h_new, c_new):
    """The state after step t (sequences that ended keep theirs), and the step's output."""
    valid = cache.valid[t]
    hs[:, t] = np.where(valid, h_new, 0)
    return np.where(valid, h_new, h), np.where(valid, c_new, c)


def lstm_backward(dhs, cache, dhT=None, dcT=None, check_finite=True, *, out=None):
    """Returns ``dx, dWx, dWh, db, dh0, dc0``, then ``dpeephole`` (3H,) when the forward pass had peepholes and
    ``dprojection`` (H, P) when it had a projection; ``dx`` is the embedding's gradient after token input;
    the weight gradients in ``out``'s arrays where given."""
    grads = embedding_gradient(cache, input_gradient(cache, _lstm_backward(dhs, cache, dhT, dcT, check_finite)))
    return written_into(out, grads, 1, 2, (dhs, dhT, dcT, cache.Wx, cache.Wh, cache.peephole, cache.projection))


def _lstm_backward(dhs, cache, dhT, dcT, check_finite):
    cache = check_cache(cache, LSTMCache, "rnnfast.reference.lstm_forward")
    N, T, D = cache.x.shape
    H = cache.Wx.shape[1] // 4
    Whr = cache.projection
    P = H if Whr is None else Whr.shape[1]
    finite = check_flag("check_finite", check_finite)
    dhs, (dh,) = check_sequence_backward(dhs, [("dhT", dhT)], N, T, P, cache.x.dtype, cache.mask, finite=finite)
    (dc,) = check_states([("dcT", dcT)], N, H, cache.x.dtype, "of the forward pass", finite)
    if cache.layer_norm is not None:
        return layer_norm_steps.backward(dhs, cache, dh, dc)
    dWhr = None if Whr is None else np.zeros_like(Whr)
    dx = np.zeros_like(cache.x)
    dWx = np.zeros_like(cache.Wx)
    dWh = np.zeros_like(cache.Wh)
    db = np.zeros(4 * H, dtype=cache.x.dtype)
    p = cache.peephole
    p_i, p_f, p_o = (0, 0, 0) if p is None else (p[:H], p[H:2 * H], p[2 * H:])
    dp = np.zeros(3 * H, dtype=cache.x.dtype)
    for t in reversed(range(T)):
        i, f, g, o = cache.gates[t]
        valid = cache.valid[t]
        dh_t = dh + dhs[:, t]
        dm = dh_t
        dc_in = dc  # at c_t (zoned)
        if cache.zone is not None:  # the gradients at h~, c~, and the kept shares
            k_c, k_h = cache.zone[t]
            dm, dc = (1 - k_h) * dh_t, (1 - k_c) * dc_in
        if Whr is not None:
            dWhr += cache.m[t].T @ np.where(valid, dh_t, 0)
            dm = dh_t @ Whr.T
        tc = np.tanh(cache.c[t])
        da_o = dm * tc * o * (1 - o)
        dc_t = dc + dm * o * (1 - tc**2) + da_o * p_o
        da = np.concatenate([
            dc_t * g * i * (1 - i),
            dc_t * cache.c_prev[t] * f * (1 - f),
            dc_t * i * (1 - g**2),
            da_o,
        ], axis=1)
        da = np.where(valid, da, 0)
        add_step_grads(t, da, valid, cache, dx, dWx, dWh)
        db += da.sum(axis=0)
        dp += np.concatenate([(da[:, :H] * cache.c_prev[t]).sum(axis=0), (da[:, H:2 * H] * cache.c_prev[t]).sum(axis=0),
                              (da[:, 3 * H:] * cache.c[t]).sum(axis=0)])
        if cache.zone is not None:
            dh = np.where(valid, da @ cache.Wh.T + k_h * dh_t, dh_t)
            dc = np.where(valid, dc_t * f + k_c * dc_in, dc_in)
            continue
        dh = np.where(valid, da @ cache.Wh.T, dh_t)
        dc = np.where(valid, dc_t * f + da[:, :H] * p_i + da[:, H:2 * H] * p_f, dc)
    return (dx, dWx, dWh, db, dh, dc) + ((dp,) if p is not None else ()) + ((dWhr,) if Whr is not None else ())


def lstm_step_forward(x, h, c, Wx, Wh, b, check_finite=True, *, peephole=None, projection=None, layer_norm=None,
                      zoneout=None, zoneout_seed=None):
    """One step: ``x (N, D)``, ``h, c (N, H)`` -> ``h_next, c_next, cache`` (zoneout's masks: those of t = 0)."""
    _, h_next, c_next, cache = _lstm_forward(check_step_x(x), Wx, Wh, b, h, c, None, None, ("h", "c"), check_finite,
                                             peephole, projection, layer_norm, zoneout, zoneout_seed)
    return h_next, c_next, cache


def lstm_step_backward(dh_next, dc_next, cache, check_finite=True):
    """Returns ``dx (N, D), dh, dc, dWx, dWh, db`` (then ``dpeephole``, ``dprojection`` where the step had
    them)."""
    return step_backward(LSTM, lstm_backward, LSTMCache, [dh_next, dc_next], cache, check_finite)
