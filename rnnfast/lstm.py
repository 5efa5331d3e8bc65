"""LSTM: whole-sequence and single-step forward/backward on the Cython kernels.

Same signatures and results as ``rnnfast.reference.lstm`` (the specification).
Gate blocks of the fused weights, in order: i, f, g, o (PyTorch's order).
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

_lstm = kernel_module("lstm")  # the AVX2 twin when the CPU has it


@dataclass(eq=False)
class LSTMCache:
    """What the backward pass needs; opaque to users."""

    x_tm: np.ndarray  # (T, N, D), padded steps zeroed
    Wx: np.ndarray
    Wh: np.ndarray
    hst: np.ndarray  # (T+1, N, H) state entering each step
    cst: np.ndarray  # (T+1, N, H)
    act: np.ndarray  # (T, N, 4H) gate activations
    lengths: np.ndarray
    mask: Optional[np.ndarray]
    plan: ThreadPlan


def lstm_forward(x, Wx, Wh, b, h0=None, c0=None, lengths=None, num_threads=None):
    """LSTM over a whole batch of sequences.

    Parameters
    ----------
    x : ndarray, shape (N, T, D), float32 or float64
    Wx : ndarray, shape (D, 4H);  Wh : ndarray, shape (H, 4H);  b : ndarray, shape (4H,)
        Gate blocks in the order i, f, g, o.
    h0, c0 : ndarray, shape (N, H), optional (zeros)
    lengths : int ndarray, shape (N,), optional
        Valid steps per sequence (1..T); later steps keep the state and output zeros.
    num_threads : int, optional
        OpenMP threads; default ``$RNNFAST_NUM_THREADS``, else the core count.

    Returns
    -------
    hs : (N, T, H);  hT, cT : (N, H) each sequence's last state;  cache : for ``lstm_backward``.
    """
    return _lstm_forward(x, Wx, Wh, b, h0, c0, lengths, num_threads, ("h0", "c0"))


def _lstm_forward(x, Wx, Wh, b, h0, c0, lengths, num_threads, state_names):
    # The states are named by the caller: h0/c0 here, h/c for the single-step functions.
    v = check_sequence_forward(x, Wx, Wh, [("b", b)], 4, [(n, s) for n, s in zip(state_names, (h0, c0))], lengths,
                               check_x_values=False)  # x: checked in its time-major copy
    N, T, H = v.N, v.T, v.H
    (b,), (h0, c0) = v.biases, v.states
    plan = ThreadPlan.make(N, H, 4, num_threads)
    steps = kernel_lengths(v.lengths, N, T)
    x_tm = time_major("x", v.x, steps, v.mask, plan.num_threads)
    Wx, Wh, b = (np.ascontiguousarray(a) for a in (v.Wx, v.Wh, b))
    hst, cst = initial_states(h0, T), initial_states(c0, T)
    act = workspace((T, N, 4 * H), v.dtype)
    hs = np.empty((N, T, H), dtype=v.dtype)  # the user's output, written by the kernel's tiles
    panels = step_panels(_lstm, v.dtype, H, 4, plan)
    chunked = chunked_weights(v.dtype, H, 4, T, plan, panels)
    if N:
        with single_threaded_blas():
            _lstm.forward(x_tm, Wx, Wh, b, hst, cst, act, hs, steps, panels, chunked, *plan.args())
    pool.give(panels, chunked)
    cache = LSTMCache(x_tm, Wx, Wh, hst, cst, act, steps, v.mask, plan)
    pool.give_when_dead(cache, x_tm, hst, cst, act)
    return hs, hst[T].copy(), cst[T].copy(), cache


def lstm_backward(dhs, cache, dhT=None, dcT=None):
    """Backward through time.

    Parameters
    ----------
    dhs : ndarray, shape (N, T, H)
        Gradient of the loss with respect to ``hs`` (padded steps are ignored).
    cache : from ``lstm_forward``.
    dhT, dcT : ndarray, shape (N, H), optional
        Gradient flowing into the final state; ``None`` (zeros) stops it at the
        chunk boundary, which is truncated BPTT.

    Returns
    -------
    dx (N, T, D), dWx (D, 4H), dWh (H, 4H), db (4H,), dh0 (N, H), dc0 (N, H)
    """
    cache = check_cache(cache, LSTMCache, "rnnfast.lstm_forward")
    T, N, D = cache.x_tm.shape
    H = cache.Wh.shape[0]
    dtype = cache.x_tm.dtype
    dhs, (dh, dc) = check_sequence_backward(dhs, [("dhT", dhT), ("dcT", dcT)], N, T, H, dtype, cache.mask,
                                            check_dhs_values=False)
    dhs = checked_in_place("dhs", dhs, cache.lengths, cache.mask, cache.plan.num_threads)
    dh, dc = np.array(dh, dtype=dtype, order="C"), np.array(dc, dtype=dtype, order="C")  # written in place
    dG, dx_tm = workspace((T, N, 4 * H), dtype), workspace((T, N, D), dtype)
    panels = step_panels(_lstm, dtype, H, 4, cache.plan)
    # The BLAS path's step operand; the packed path reads the panels instead.
    WhT = transposed(cache.Wh, cache.plan.num_threads) if panels.size == 0 else cache.Wh
    dWx, dWh, db = kernel_outputs(N, dtype, (D, 4 * H), (H, 4 * H), 4 * H)
    if N:
        with single_threaded_blas():
            _lstm.backward(cache.x_tm, cache.Wx, cache.Wh, WhT, cache.hst, cache.cst, cache.act, cache.lengths,
                           dhs, dh, dc, dG, dx_tm, dWx, dWh, db, panels, *cache.plan.args())
    dx = batch_major(dx_tm, cache.plan.num_threads)
    pool.give(dG, dx_tm, panels)
    if WhT is not cache.Wh:
        pool.give(WhT)
    return dx, dWx, dWh, db, dh, dc


def lstm_step_forward(x, h, c, Wx, Wh, b, num_threads=None):
    """One step: ``x (N, D)``, ``h, c (N, H)`` -> ``h_next, c_next, cache``."""
    _, h_next, c_next, cache = _lstm_forward(check_step_x(x), Wx, Wh, b, h, c, None, num_threads, ("h", "c"))
    return h_next, c_next, cache


def lstm_step_backward(dh_next, dc_next, cache):
    """Gradients of one step: returns ``dx (N, D), dh, dc, dWx, dWh, db``."""
    cache = check_cache(cache, LSTMCache, "rnnfast.lstm_step_forward")
    N, H = cache.x_tm.shape[1], cache.Wh.shape[0]
    check_step_grads([("dh_next", dh_next), ("dc_next", dc_next)], N, H, cache.x_tm.dtype)
    zeros = np.zeros((N, 1, H), dtype=cache.x_tm.dtype)
    dx, dWx, dWh, db, dh, dc = lstm_backward(zeros, cache, dh_next, dc_next)
    return dx[:, 0], dh, dc, dWx, dWh, db
