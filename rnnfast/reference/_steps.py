"""The single-step backward functions of the reference: one step's backward is the sequence backward of a
length-1 sequence, with the step's state gradients flowing in and its arguments named as a step's."""
from __future__ import annotations

import numpy as np

from .._core.validation import check_cache, check_flag, check_step_grads


def step_backward(spec, sequence_backward, cache_type, dnext, cache, check_finite=True):
    """``(dx (N, D), *dstates, dWx, dWh, *dbiases, *extra)`` of one step of ``spec`` (``rnnfast.cells``);
    ``extra``: the gradients of a variant's own weights (the LSTM's peepholes)."""
    cache = check_cache(cache, cache_type, f"rnnfast.reference.{spec.name}_step_forward")
    N, P = cache.x.shape[0], cache.Wh.shape[0]  # P: the width of h (H but for the projection LSTM)
    H = cache.Wx.shape[1] // spec.gates
    finite = check_flag("check_finite", check_finite)
    for name, d, width in zip(spec.state_names, dnext, (P, H)):
        check_step_grads([(f"d{name}_next", d)], N, width, cache.x.dtype, finite)
    zeros = np.zeros((N, 1, P), dtype=cache.x.dtype)
    dx, dWx, dWh, *rest = sequence_backward(zeros, cache, *dnext, check_finite=finite)
    nb, ns = len(spec.bias_names), len(spec.state_names)
    return (dx[:, 0], *rest[nb:nb + ns], dWx, dWh, *rest[:nb], *rest[nb + ns:])


def add_step_grads(t, da, valid, cache, dx, dWx, dWh):
    """Step t's share of the input and weight gradients, from the gates' pre-activation gradient ``da``
    (zero at padded rows): ``dx[:, t]`` (zero at padded steps, even with NaN in ``Wx``), ``dWx``, ``dWh``."""
    dx[:, t] = np.where(valid, da @ cache.Wx.T, 0)
    dWx += cache.x[:, t].T @ da
    dWh += cache.h_prev[t].T @ da
