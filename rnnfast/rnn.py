"""Vanilla RNN (tanh or relu): whole-sequence and single-step forward/backward on the Cython kernels.

Same signatures and results as ``rnnfast.reference.rnn`` (the specification).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._dispatch import kernel_module
from ._plumbing import (ThreadPlan, batch_major, checked_in_place, chunked_weights, initial_states, kernel_lengths,
                        kernel_outputs, step_panels, time_major, transposed, workspace)
from ._workspace import pool
from ._threads import single_threaded_blas
from ._validation import (check_cache, check_sequence_backward, check_sequence_forward, check_step_grads,
                          check_step_x)
from .reference.rnn import check_nonlinearity

_rnn = kernel_module("rnn")  # the AVX2 twin when the CPU has it


@dataclass(eq=False)
class RNNCache:
    """What the backward pass needs; opaque to users."""

    x_tm: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    hst: np.ndarray  # (T+1, N, H)
    act: np.ndarray  # (T, N, H) activations
    lengths: np.ndarray
    mask: Optional[np.ndarray]
    relu: bool
    plan: ThreadPlan


def rnn_forward(x, Wx, Wh, b, h0=None, nonlinearity="tanh", lengths=None, num_threads=None):
    """Elman RNN over a whole batch: ``h_t = act(x_t Wx + h_{t-1} Wh + b)``.

    Parameters
    ----------
    x : ndarray, shape (N, T, D);  Wx : (D, H);  Wh : (H, H);  b : (H,)
    h0 : ndarray, shape (N, H), optional (zeros)
    nonlinearity : "tanh" or "relu"
    lengths : int ndarray, shape (N,), optional
    num_threads : int, optional

    Returns
    -------
    hs : (N, T, H);  hT : (N, H);  cache : for ``rnn_backward``.
    """
    return _rnn_forward(x, Wx, Wh, b, h0, nonlinearity, lengths, num_threads, ("h0",))


def _rnn_forward(x, Wx, Wh, b, h0, nonlinearity, lengths, num_threads, state_names):
    # The states are named by the caller: h0/c0 here, h/c for the single-step functions.
    relu = check_nonlinearity(nonlinearity) == "relu"
    v = check_sequence_forward(x, Wx, Wh, [("b", b)], 1, [(state_names[0], h0)], lengths,
                               check_x_values=False)  # x: checked in its time-major copy
    N, T, H = v.N, v.T, v.H
    (b,), (h0,) = v.biases, v.states
    plan = ThreadPlan.make(N, H, 1, num_threads)
    steps = kernel_lengths(v.lengths, N, T)
    x_tm = time_major("x", v.x, steps, v.mask, plan.num_threads)
    Wx, Wh, b = (np.ascontiguousarray(a) for a in (v.Wx, v.Wh, b))
    hst = initial_states(h0, T)
    act = workspace((T, N, H), v.dtype)
    hs = np.empty((N, T, H), dtype=v.dtype)  # the user's output, written by the kernel's tiles
    panels = step_panels(_rnn, v.dtype, H, 1, plan)
    chunked = chunked_weights(v.dtype, H, 1, T, plan, panels)
    if N:
        with single_threaded_blas():
            _rnn.forward(x_tm, Wx, Wh, b, hst, act, hs, steps, relu, panels, chunked, *plan.args())
    pool.give(panels, chunked)
    cache = RNNCache(x_tm, Wx, Wh, hst, act, steps, v.mask, relu, plan)
    pool.give_when_dead(cache, x_tm, hst, act)
    return hs, hst[T].copy(), cache


def rnn_backward(dhs, cache, dhT=None):
    """Backward through time. Returns ``dx (N, T, D), dWx (D, H), dWh (H, H), db (H,), dh0 (N, H)``."""
    cache = check_cache(cache, RNNCache, "rnnfast.rnn_forward")
    T, N, D = cache.x_tm.shape
    H = cache.Wh.shape[0]
    dtype = cache.x_tm.dtype
    dhs, (dh,) = check_sequence_backward(dhs, [("dhT", dhT)], N, T, H, dtype, cache.mask,
                                         check_dhs_values=False)
    dhs = checked_in_place("dhs", dhs, cache.lengths, cache.mask, cache.plan.num_threads)
    dh = np.array(dh, dtype=dtype, order="C")  # written in place
    dG, dx_tm = workspace((T, N, H), dtype), workspace((T, N, D), dtype)
    panels = step_panels(_rnn, dtype, H, 1, cache.plan)
    # The BLAS path's step operand; the packed path reads the panels instead.
    WhT = transposed(cache.Wh, cache.plan.num_threads) if panels.size == 0 else cache.Wh
    dWx, dWh, db = kernel_outputs(N, dtype, (D, H), (H, H), H)
    if N:
        with single_threaded_blas():
            _rnn.backward(cache.x_tm, cache.Wx, cache.Wh, WhT, cache.hst, cache.act, cache.lengths, cache.relu,
                          dhs, dh, dG, dx_tm, dWx, dWh, db, panels, *cache.plan.args())
    dx = batch_major(dx_tm, cache.plan.num_threads)
    pool.give(dG, dx_tm, panels)
    if WhT is not cache.Wh:
        pool.give(WhT)
    return dx, dWx, dWh, db, dh


def rnn_step_forward(x, h, Wx, Wh, b, nonlinearity="tanh", num_threads=None):
    """One step: ``x (N, D)``, ``h (N, H)`` -> ``h_next, cache``."""
    _, h_next, cache = _rnn_forward(check_step_x(x), Wx, Wh, b, h, nonlinearity, None, num_threads, ("h",))
    return h_next, cache


def rnn_step_backward(dh_next, cache):
    """Gradients of one step: returns ``dx (N, D), dh, dWx, dWh, db``."""
    cache = check_cache(cache, RNNCache, "rnnfast.rnn_step_forward")
    N, H = cache.x_tm.shape[1], cache.Wh.shape[0]
    check_step_grads([("dh_next", dh_next)], N, H, cache.x_tm.dtype)
    zeros = np.zeros((N, 1, H), dtype=cache.x_tm.dtype)
    dx, dWx, dWh, db, dh = rnn_backward(zeros, cache, dh_next)
    return dx[:, 0], dh, dWx, dWh, db
