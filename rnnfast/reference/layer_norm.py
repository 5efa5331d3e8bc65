"""The layer-normalized LSTM and GRU in plain NumPy (Ba et al. 2016; the LSTM as haste's ``LayerNormLSTM``
computes it): the specification of ``rnnfast.lstm_forward(..., layer_norm=ln)`` and ``rnnfast.gru_forward(...,
layer_norm=ln)``.

Three layer normalizations, each over one row's units with the biased variance and EPS = 1e-5:

    a_t = LN(x_t @ Wx; g_x) + LN(h_{t-1} @ Wh; g_h) + b          (over the 4H pre-activations; gains only)
    i, f, o = sigmoid(a_i, a_f, a_o);   g = tanh(a_g);   c_t = f * c_{t-1} + i * g
    h_t = o * tanh(LN(c_t; g_c, b_c))                              (over the H units; gain and bias)

where ``LN(v; g, b) = (v - mean(v)) / sqrt(var(v) + EPS) * g + b``.  ``ln (10H,) = [g_x (4H) | g_h (4H) |
g_c (H) | b_c (H)]``.  The carried cell state is the one before its normalization.  With ``lengths``, as the
LSTM's.

The GRU (reset-after, PyTorch's form) takes the same two normalizations of its pre-activations, gains only
(its biases stay where the plain GRU has them), and has no cell state to normalize:

    a_x = LN(x_t @ Wx; g_x) + b_x;   a_h = LN(h_{t-1} @ Wh; g_h) + b_h      (each over the 3H pre-activations)
    r = sigmoid(a_x,r + a_h,r);   z = sigmoid(a_x,z + a_h,z);   n = tanh(a_x,n + r * a_h,n)
    h_t = (1 - z) * n + z * h_{t-1}

``ln (6H,) = [g_x (3H) | g_h (3H)]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._math import sigmoid
from ._steps import add_step_grads

EPS = 1e-5


def split(ln: np.ndarray, H: int):
    """``(g_x, g_h, g_c, b_c)`` of the flat ``(10H,)`` layer-norm parameters."""
    return ln[:4 * H], ln[4 * H:8 * H], ln[8 * H:9 * H], ln[9 * H:]


def normalize(v: np.ndarray):
    """``((v - mean) * rstd, rstd)`` over the last axis."""
    mu = v.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((v - mu) ** 2).mean(axis=-1, keepdims=True) + EPS)
    return (v - mu) * rstd, rstd


def normalize_backward(dy: np.ndarray, v_hat: np.ndarray, rstd: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The gradient at ``v`` of ``LN(v) = v_hat * gain + bias``, from the gradient ``dy`` at its output."""
    d = dy * gain
    return rstd * (d - d.mean(axis=-1, keepdims=True) - v_hat * (d * v_hat).mean(axis=-1, keepdims=True))


@dataclass(eq=False)
class LayerNormSteps:
    """What the layer-normalized LSTM's and GRU's backward passes read, per step (the GRU has no cell state:
    its ``c_*`` stay empty)."""

    ln: np.ndarray
    x_hat: list = field(default_factory=list)  # (N, G) normalized x_t @ Wx, and its rstd (N, 1)
    x_rstd: list = field(default_factory=list)
    h_hat: list = field(default_factory=list)  # (N, G) normalized h_{t-1} @ Wh, and its rstd
    h_rstd: list = field(default_factory=list)
    c_hat: list = field(default_factory=list)  # LSTM: (N, H) normalized c_t, and its rstd
    c_rstd: list = field(default_factory=list)

    def keep(self, **step) -> None:
        """Append one step's normalized rows and 1/std, by name."""
        for name, value in step.items():
            getattr(self, name).append(value)


def step_forward(t, x_t, h, c, Wx, Wh, b, ln, steps: LayerNormSteps):
    """One step: ``(i, f, g, o, c_new, h_new)``; what backward needs goes to ``steps``."""
    H = Wh.shape[0]
    g_x, g_h, g_c, b_c = split(ln, H)
    x_hat, x_rstd = normalize(x_t @ Wx)
    h_hat, h_rstd = normalize(h @ Wh)
    a = x_hat * g_x + h_hat * g_h + b
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    c_new = f * c + i * g
    c_hat, c_rstd = normalize(c_new)
    h_new = o * np.tanh(c_hat * g_c + b_c)
    steps.keep(x_hat=x_hat, x_rstd=x_rstd, h_hat=h_hat, h_rstd=h_rstd, c_hat=c_hat, c_rstd=c_rstd)
    return i, f, g, o, c_new, h_new


def backward(dhs, cache, dh, dc):
    """``lstm_backward`` of a layer-normalized forward pass: ``(dx, dWx, dWh, db, dh0, dc0, dln)``."""
    s: LayerNormSteps = cache.layer_norm
    N, T, _ = cache.x.shape
    H = cache.Wh.shape[0]
    g_x, g_h, g_c, b_c = split(s.ln, H)
    dx, dWx, dWh = np.zeros_like(cache.x), np.zeros_like(cache.Wx), np.zeros_like(cache.Wh)
    db = np.zeros(4 * H, dtype=cache.x.dtype)
    dg_x, dg_h, dg_c, db_c = (np.zeros_like(a) for a in (g_x, g_h, g_c, b_c))
    for t in reversed(range(T)):
        i, f, g, o = cache.gates[t]
        valid = cache.valid[t]
        dh_t = dh + dhs[:, t]
        tc = np.tanh(s.c_hat[t] * g_c + b_c)
        do = dh_t * tc * o * (1 - o)
        dcn = np.where(valid, dh_t * o * (1 - tc ** 2), 0)  # at LN(c_t)'s output
        dg_c += (dcn * s.c_hat[t]).sum(axis=0)
        db_c += dcn.sum(axis=0)
        dc_t = dc + normalize_backward(dcn, s.c_hat[t], s.c_rstd[t], g_c)
        da = np.concatenate([dc_t * g * i * (1 - i), dc_t * cache.c_prev[t] * f * (1 - f),
                             dc_t * i * (1 - g ** 2), do], axis=1)
        da = np.where(valid, da, 0)
        db += da.sum(axis=0)
        dg_x += (da * s.x_hat[t]).sum(axis=0)
        dg_h += (da * s.h_hat[t]).sum(axis=0)
        dq = normalize_backward(da, s.x_hat[t], s.x_rstd[t], g_x)  # at x_t @ Wx
        dr = normalize_backward(da, s.h_hat[t], s.h_rstd[t], g_h)  # at h_{t-1} @ Wh
        add_step_grads(t, dq, valid, cache, dx, dWx, np.zeros_like(dWh))
        dWh += cache.h_prev[t].T @ dr
        dh = np.where(valid, dr @ cache.Wh.T, dh_t)
        dc = np.where(valid, dc_t * f, dc)
    return dx, dWx, dWh, db, dh, dc, np.concatenate([dg_x, dg_h, dg_c, db_c])


def gru_step_forward(x_t, h, Wx, Wh, bx, bh, ln, steps: LayerNormSteps):
    """One step of the layer-normalized GRU: ``(r, z, n, a_hn, h_new)``, ``a_hn`` the recurrent part of n's
    pre-activation (what r multiplies); what backward needs goes to ``steps``."""
    H = Wh.shape[0]
    g_x, g_h = ln[:3 * H], ln[3 * H:]
    x_hat, x_rstd = normalize(x_t @ Wx)
    h_hat, h_rstd = normalize(h @ Wh)
    ax = x_hat * g_x + bx
    ah = h_hat * g_h + bh
    r = sigmoid(ax[:, :H] + ah[:, :H])
    z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    h_new = (1 - z) * n + z * h
    steps.keep(x_hat=x_hat, x_rstd=x_rstd, h_hat=h_hat, h_rstd=h_rstd)
    return r, z, n, ah[:, 2 * H:], h_new


def gru_backward(dhs, cache, dh):
    """``gru_backward`` of a layer-normalized forward pass: ``(dx, dWx, dWh, dbx, dbh, dh0, dln)``."""
    s: LayerNormSteps = cache.layer_norm
    N, T, _ = cache.x.shape
    H = cache.Wh.shape[0]
    g_x, g_h = s.ln[:3 * H], s.ln[3 * H:]
    dx, dWx, dWh = np.zeros_like(cache.x), np.zeros_like(cache.Wx), np.zeros_like(cache.Wh)
    dbx, dbh = np.zeros(3 * H, dtype=cache.x.dtype), np.zeros(3 * H, dtype=cache.x.dtype)
    dg_x, dg_h = np.zeros_like(g_x), np.zeros_like(g_h)
    for t in reversed(range(T)):
        r, z, n = cache.gates[t]
        h_prev, ah_n, valid = cache.h_prev[t], cache.hn[t], cache.valid[t]
        dh_t = dh + dhs[:, t]
        dh_v = np.where(valid, dh_t, 0)  # padded steps send no gradient into the gates
        dan = dh_v * (1 - z) * (1 - n ** 2)
        daz = dh_v * (h_prev - n) * z * (1 - z)
        dar = dan * ah_n * r * (1 - r)
        dax = np.concatenate([dar, daz, dan], axis=1)  # at a_x
        dah = np.concatenate([dar, daz, dan * r], axis=1)  # at a_h
        dbx += dax.sum(axis=0)
        dbh += dah.sum(axis=0)
        dg_x += (dax * s.x_hat[t]).sum(axis=0)
        dg_h += (dah * s.h_hat[t]).sum(axis=0)
        dq = normalize_backward(dax, s.x_hat[t], s.x_rstd[t], g_x)  # at x_t @ Wx
        dr = normalize_backward(dah, s.h_hat[t], s.h_rstd[t], g_h)  # at h_{t-1} @ Wh
        add_step_grads(t, dq, valid, cache, dx, dWx, np.zeros_like(dWh))
        dWh += h_prev.T @ dr
        dh = np.where(valid, dh_t * z + dr @ cache.Wh.T, dh_t)
    return dx, dWx, dWh, dbx, dbh, dh, np.concatenate([dg_x, dg_h])
