"""GRU: whole-sequence and single-step forward/backward on the Cython kernels.

Same signatures and results as ``rnnfast.reference.gru`` (the specification).
Gate blocks of the fused weights, in order: r, z, n; h' = (1 - z) * n + z * h.
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
from .reference.gru import _check_reset_after

_gru = kernel_module("gru")  # the AVX2 twin when the CPU has it


@dataclass(eq=False)
class GRUCache:
    """What the backward pass needs; opaque to users."""

    x_tm: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    hst: np.ndarray  # (T+1, N, H)
    act: np.ndarray  # (T, N, 3H): r, z, n
    hg: np.ndarray  # (T, N, 3H): recurrent pre-activations
    rh: np.ndarray  # (T, N, H): r * h_{t-1} (reset_before), else empty
    lengths: np.ndarray
    mask: Optional[np.ndarray]
    reset_after: bool
    plan: ThreadPlan


def gru_forward(x, Wx, Wh, bx, bh, h0=None, lengths=None, reset_after=True, num_threads=None):
    """GRU over a whole batch of sequences.

    Parameters
    ----------
    x : ndarray, shape (N, T, D), float32 or float64
    Wx : ndarray, shape (D, 3H);  Wh : ndarray, shape (H, 3H);  bx, bh : ndarray, shape (3H,)
        Gate blocks in the order r, z, n.
    h0 : ndarray, shape (N, H), optional (zeros)
    lengths : int ndarray, shape (N,), optional
    reset_after : bool
        True: n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)) (PyTorch, cuDNN).
        False: n = tanh(x Wx_n + bx_n + (r * h) Wh_n + bh_n) (Cho et al., the textbook).
    num_threads : int, optional

    Returns
    -------
    hs : (N, T, H);  hT : (N, H);  cache : for ``gru_backward``.
    """
    return _gru_forward(x, Wx, Wh, bx, bh, h0, lengths, reset_after, num_threads, ("h0",))


def _gru_forward(x, Wx, Wh, bx, bh, h0, lengths, reset_after, num_threads, state_names):
    # The states are named by the caller: h0/c0 here, h/c for the single-step functions.
    reset_after = _check_reset_after(reset_after)
    v = check_sequence_forward(x, Wx, Wh, [("bx", bx), ("bh", bh)], 3, [(state_names[0], h0)], lengths,
                               check_x_values=False)  # x: checked in its time-major copy
    N, T, H = v.N, v.T, v.H
    (bx, bh), (h0,) = v.biases, v.states
    plan = ThreadPlan.make(N, H, 3, num_threads)
    steps = kernel_lengths(v.lengths, N, T)
    x_tm = time_major("x", v.x, steps, v.mask, plan.num_threads)
    Wx, Wh, bx, bh = (np.ascontiguousarray(a) for a in (v.Wx, v.Wh, bx, bh))
    hst = initial_states(h0, T)
    act, hg = workspace((T, N, 3 * H), v.dtype), workspace((T, N, 3 * H), v.dtype)
    rh = workspace((0, 0, 0) if reset_after else (T, N, H), v.dtype)
    hs = np.empty((N, T, H), dtype=v.dtype)  # the user's output, written by the kernel's tiles
    panels = step_panels(_gru, v.dtype, H, 3, plan)
    chunked = chunked_weights(v.dtype, H, 3, T, plan, panels)
    if N:
        with single_threaded_blas():
            _gru.forward(x_tm, Wx, Wh, bx, bh, hst, act, hg, rh, hs, steps, reset_after, panels, chunked,
                         *plan.args())
    pool.give(panels, chunked)
    cache = GRUCache(x_tm, Wx, Wh, hst, act, hg, rh, steps, v.mask, reset_after, plan)
    pool.give_when_dead(cache, x_tm, hst, act, hg, rh)
    return hs, hst[T].copy(), cache


def gru_backward(dhs, cache, dhT=None):
    """Backward through time.

    Parameters
    ----------
    dhs : ndarray, shape (N, T, H);  cache : from ``gru_forward``
    dhT : ndarray, shape (N, H), optional; ``None`` stops the gradient at the chunk boundary.

    Returns
    -------
    dx (N, T, D), dWx (D, 3H), dWh (H, 3H), dbx (3H,), dbh (3H,), dh0 (N, H)
    """
    cache = check_cache(cache, GRUCache, "rnnfast.gru_forward")
    T, N, D = cache.x_tm.shape
    H = cache.Wh.shape[0]
    dtype = cache.x_tm.dtype
    dhs, (dh,) = check_sequence_backward(dhs, [("dhT", dhT)], N, T, H, dtype, cache.mask,
                                         check_dhs_values=False)
    dhs = checked_in_place("dhs", dhs, cache.lengths, cache.mask, cache.plan.num_threads)
    dh = np.array(dh, dtype=dtype, order="C")  # written in place
    dGx = workspace((T, N, 3 * H), dtype)
    # reset_before: the x-side and h-side pre-activation gradients coincide.
    dGh = workspace((T, N, 3 * H), dtype) if cache.reset_after else dGx
    drh = np.empty((N, H), dtype=dtype)
    dx_tm = workspace((T, N, D), dtype)
    panels = step_panels(_gru, dtype, H, 3, cache.plan)
    # The BLAS path's step operand; the packed path reads the panels instead.
    WhT = transposed(cache.Wh, cache.plan.num_threads) if panels.size == 0 else cache.Wh
    dWx, dWh, dbx, dbh = kernel_outputs(N, dtype, (D, 3 * H), (H, 3 * H), 3 * H, 3 * H)
    if N:
        with single_threaded_blas():
            _gru.backward(cache.x_tm, cache.Wx, cache.Wh, WhT, cache.hst, cache.act, cache.hg, cache.rh,
                          cache.lengths, cache.reset_after, dhs, dh, drh, dGx, dGh,
                          dx_tm, dWx, dWh, dbx, dbh, panels, *cache.plan.args())
    dx = batch_major(dx_tm, cache.plan.num_threads)
    pool.give(dGx, dx_tm, panels, *([dGh] if cache.reset_after else []))
    if WhT is not cache.Wh:
        pool.give(WhT)
    return dx, dWx, dWh, dbx, dbh, dh


def gru_step_forward(x, h, Wx, Wh, bx, bh, reset_after=True, num_threads=None):
    """One step: ``x (N, D)``, ``h (N, H)`` -> ``h_next, cache``."""
    _, h_next, cache = _gru_forward(check_step_x(x), Wx, Wh, bx, bh, h, None, reset_after, num_threads, ("h",))
    return h_next, cache


def gru_step_backward(dh_next, cache):
    """Gradients of one step: returns ``dx (N, D), dh, dWx, dWh, dbx, dbh``."""
    cache = check_cache(cache, GRUCache, "rnnfast.gru_step_forward")
    N, H = cache.x_tm.shape[1], cache.Wh.shape[0]
    check_step_grads([("dh_next", dh_next)], N, H, cache.x_tm.dtype)
    zeros = np.zeros((N, 1, H), dtype=cache.x_tm.dtype)
    dx, dWx, dWh, dbx, dbh, dh = gru_backward(zeros, cache, dh_next)
    return dx[:, 0], dh, dWx, dWh, dbx, dbh
