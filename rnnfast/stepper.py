"""Streaming LSTM: one step per call on weights validated and packed once.

``lstm_step_forward`` checks and lays out the weights at every call, which is
most of its cost at batch 1.  A stepper does that once: it stacks ``[Wx; Wh]``
and cuts the gate columns into per-chunk panels (``_tiling.stepper_chunk``),
then each ``step`` is a GEMV per chunk plus the gate arithmetic, with the
chunks shared among OpenMP threads and no barrier.

NumPy twin: ``rnnfast.reference.stepper.LSTMStepper`` (same signature).
"""
from __future__ import annotations

import numpy as np

from ._dispatch import kernel_module
from ._stepper_checks import check_lstm_weights, check_step_input, initial_lstm_state
from ._threads import resolve_num_threads, single_threaded_blas
from ._tiling import stepper_chunk

_lstm = kernel_module("lstm")


def _pack_lstm(Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray, chunk: int):
    """``panels (n_chunks, D+H, 4*chunk)``: chunk k holds the i, f, g, o columns of units
    ``k*chunk ...`` side by side (zero-padded past H); ``b_packed (n_chunks, 4*chunk)`` likewise."""
    D, H = Wx.shape[0], Wh.shape[0]
    n_chunks = -(-H // chunk)
    W = np.zeros((D + H, 4, n_chunks * chunk), dtype=Wh.dtype)
    W[:D, :, :H] = Wx.reshape(D, 4, H)
    W[D:, :, :H] = Wh.reshape(H, 4, H)
    panels = W.reshape(D + H, 4, n_chunks, chunk).transpose(2, 0, 1, 3).reshape(n_chunks, D + H, 4 * chunk)
    bp = np.zeros((4, n_chunks * chunk), dtype=Wh.dtype)
    bp[:, :H] = b.reshape(4, H)
    b_packed = bp.reshape(4, n_chunks, chunk).transpose(1, 0, 2).reshape(n_chunks, 4 * chunk)
    return np.ascontiguousarray(panels), np.ascontiguousarray(b_packed)


class LSTMStepper:
    """Stateful one-step LSTM for streaming and generation.

    Parameters
    ----------
    Wx : ndarray, shape (D, 4H);  Wh : ndarray, shape (H, 4H);  b : ndarray, shape (4H,)
        Gate blocks in the order i, f, g, o.  Copied (packed) at construction:
        later changes to these arrays do not reach the stepper.
    h0, c0 : ndarray, shape (N, H), optional
        Initial state (zeros where None).
    batch_size : int, optional
        N when no state is given (default 1).
    num_threads : int, optional
        OpenMP threads; default ``$RNNFAST_NUM_THREADS``, else the core count.

    ``step(x)`` with ``x (N, D)`` returns ``h_t (N, H)`` (a new array) and
    moves the state on; ``h``, ``c`` are copies of the state; ``reset`` starts
    again.  Equals ``lstm_step_forward`` applied step after step.
    """

    def __init__(self, Wx, Wh, b, h0=None, c0=None, *, batch_size=None, num_threads=None):
        Wx, Wh, b, self.D, self.H = check_lstm_weights(Wx, Wh, b)
        self.dtype = Wh.dtype
        self.num_threads = resolve_num_threads(num_threads)
        self._chunk = stepper_chunk(self.H)
        self._panels, self._b_packed = _pack_lstm(Wx, Wh, b, self._chunk)
        self.reset(h0, c0, batch_size=batch_size)

    def reset(self, h0=None, c0=None, *, batch_size=None) -> None:
        """Start again from ``h0, c0`` (zeros where None); the batch size may change."""
        h, c = initial_lstm_state(h0, c0, batch_size, self.H, self.dtype, getattr(self, "N", 1))
        self.N, K = h.shape[0], self.D + self.H
        # Two [x | h] buffers: a step reads one and writes h_t into the other.
        self._xh = np.zeros((2, self.N, K), dtype=self.dtype)
        self._xh[0, :, self.D:] = h
        self._c = c
        self._cur = 0
        self._gates = np.empty((self._panels.shape[0], self.N, 4 * self._chunk), dtype=self.dtype)

    def step(self, x) -> np.ndarray:
        """``x (N, D)`` -> ``h_t (N, H)``."""
        if not (type(x) is np.ndarray and x.dtype == self.dtype and x.shape == (self.N, self.D)
                and np.isfinite(x).all()):
            x = check_step_input(x, self.N, self.D, self.dtype)  # raises the precise error
        cur = self._xh[self._cur]
        nxt = self._xh[1 - self._cur]
        cur[:, :self.D] = x
        with single_threaded_blas():
            _lstm.packed_step(cur, self._panels, self._b_packed, self._c, nxt, self._gates, self._chunk,
                              self.num_threads)
        self._cur = 1 - self._cur
        return nxt[:, self.D:].copy()

    @property
    def h(self) -> np.ndarray:
        return self._xh[self._cur, :, self.D:].copy()

    @property
    def c(self) -> np.ndarray:
        return self._c.copy()
