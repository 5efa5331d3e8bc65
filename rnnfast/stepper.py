"""Streaming: one step per call on weights validated and packed once.

``*_step_forward`` check and lay out the weights at every call, which is most
of their cost at batch 1.  A stepper does that once: it cuts the hidden units
into chunks (``_tiling.stepper_chunk``) and packs, per chunk, the gate columns
of ``[Wx; Wh]`` side by side into one panel of column strips; each ``step`` is
then one matrix-vector product per chunk (our own loop at batch 1, no BLAS)
plus the gate arithmetic, the chunks shared among OpenMP threads with no
barrier (two passes for the reset-before GRU).  A thread keeps the same chunks
at every step.

NumPy twins: ``rnnfast.reference.stepper`` (same signatures).
"""
from __future__ import annotations

import numpy as np

from ._dispatch import kernel_module
from ._stepper_checks import check_step_input, initial_states
from ._validation import check_weights
from ._threads import resolve_num_threads, single_threaded_blas
from ._tiling import stepper_chunk
from .reference.gru import _check_reset_after
from .reference.rnn import check_nonlinearity


def _pack(blocks, biases, chunk: int, strip_bytes: int):
    """``blocks``: G arrays (K, H) -> panels (n_chunks, K, G*chunk), chunk k holding the G blocks'
    columns of units ``k*chunk ...`` side by side (zero-padded past H); biases likewise.

    Each chunk's (K, G*chunk) panel is stored as column strips of ``strip_bytes`` (the kernels'
    ``STEP_STRIP_BYTES``), one contiguous (K, width) block after another, so that a one-row
    product reads each strip once, in order (``kernel_common.row_product``)."""
    K, H = blocks[0].shape
    n_chunks, G = -(-H // chunk), len(blocks)
    W = np.zeros((K, G, n_chunks * chunk), dtype=blocks[0].dtype)
    bp = np.zeros((G, n_chunks * chunk), dtype=blocks[0].dtype)
    for q, (blk, b) in enumerate(zip(blocks, biases)):
        W[:, q, :H] = blk
        bp[q, :H] = b
    panels = W.reshape(K, G, n_chunks, chunk).transpose(2, 0, 1, 3).reshape(n_chunks, K, G * chunk)
    b_packed = bp.reshape(G, n_chunks, chunk).transpose(1, 0, 2).reshape(n_chunks, G * chunk)
    strips = np.empty(panels.shape, dtype=panels.dtype)  # C order (empty_like would follow a view's)
    flat, width, start = strips.reshape(n_chunks, -1), strip_bytes // panels.itemsize, 0
    for s0 in range(0, G * chunk, width):
        w = min(width, G * chunk - s0)
        flat[:, start:start + K * w] = panels[:, :, s0:s0 + w].reshape(n_chunks, K * w)
        start += K * w
    return strips, np.ascontiguousarray(b_packed)


class _PackedStepper:
    """What every stepper shares: the state in two ``[x | h]`` buffers (a step reads one and
    writes ``h_t`` into the other), the batch size, threads, and the public ``step``/``h``."""

    _state_names = ("h0",)
    _groups = 1  # column groups per chunk panel

    def _setup(self, cell, Wx, Wh, states, batch_size, num_threads):
        self._kernel = kernel_module(cell)
        self.dtype = Wh.dtype
        self.num_threads = resolve_num_threads(num_threads)
        self._chunk = stepper_chunk(self.H)
        self._n_chunks = -(-self.H // self._chunk)
        self._reset(states, batch_size)

    def _pack_panels(self, blocks, biases):
        return _pack(blocks, biases, self._chunk, self._kernel.STEP_STRIP_BYTES)

    def _reset(self, states, batch_size):
        states = initial_states(list(zip(self._state_names, states)), batch_size, self.H, self.dtype,
                                getattr(self, "N", 1))
        self.N = states[0].shape[0]
        self._xh = np.zeros((2, self.N, self.D + self.H), dtype=self.dtype)
        self._xh[0, :, self.D:] = states[0]
        self._cur = 0
        self._gates = np.empty((self._n_chunks, self.N, self._groups * self._chunk), dtype=self.dtype)
        return states

    def step(self, x) -> np.ndarray:
        """``x (N, D)`` -> ``h_t (N, H)`` (a new array); the state moves on."""
        if not (type(x) is np.ndarray and x.dtype == self.dtype and x.shape == (self.N, self.D)
                and np.isfinite(x).all()):
            x = check_step_input(x, self.N, self.D, self.dtype)  # raises the precise error
        cur, nxt = self._xh[self._cur], self._xh[1 - self._cur]
        cur[:, :self.D] = x
        if self.N == 1:  # one row: the kernels call no BLAS (kernel_common.row_product), nothing to pin
            self._kernel_step(cur, nxt)
        else:
            with single_threaded_blas():
                self._kernel_step(cur, nxt)
        self._cur = 1 - self._cur
        return nxt[:, self.D:].copy()

    @property
    def h(self) -> np.ndarray:
        return self._xh[self._cur, :, self.D:].copy()


class LSTMStepper(_PackedStepper):
    """Stateful one-step LSTM for streaming and generation.

    ``step(x)`` with ``x (N, D)`` returns ``h_t (N, H)`` (a new array) and
    moves the state on; ``h``, ``c`` are copies of the state; ``reset`` starts
    again.  Equals ``lstm_step_forward`` applied step after step.

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
    """

    _state_names = ("h0", "c0")
    _groups = 4

    def __init__(self, Wx, Wh, b, h0=None, c0=None, *, batch_size=None, num_threads=None):
        Wx, Wh, (b,), self.D, self.H = check_weights(4, Wx, Wh, [("b", b)])
        W, H = np.vstack([Wx, Wh]), self.H
        self._setup("lstm", Wx, Wh, (h0, c0), batch_size, num_threads)
        self._panels, self._b_packed = self._pack_panels([W[:, q * H:(q + 1) * H] for q in range(4)],
                                                          [b[q * H:(q + 1) * H] for q in range(4)])

    def reset(self, h0=None, c0=None, *, batch_size=None) -> None:
        """Start again from ``h0, c0`` (zeros where None); the batch size may change."""
        self._reset((h0, c0), batch_size)

    def _reset(self, states, batch_size):
        states = super()._reset(states, batch_size)
        self._c = states[1]
        return states

    def _kernel_step(self, cur, nxt):
        self._kernel.packed_step(cur, self._panels, self._b_packed, self._c, nxt, self._gates, self._chunk,
                                 self.num_threads)

    @property
    def c(self) -> np.ndarray:
        return self._c.copy()


class GRUStepper(_PackedStepper):
    """Stateful one-step GRU: ``Wx (D, 3H)``, ``Wh (H, 3H)``, ``bx, bh (3H,)``, gates r, z, n,
    ``h' = (1 - z) * n + z * h``; ``reset_after`` as in ``gru_forward``.  Equals
    ``gru_step_forward`` step after step; otherwise as ``LSTMStepper`` (no ``c``)."""

    def __init__(self, Wx, Wh, bx, bh, h0=None, *, reset_after=True, batch_size=None, num_threads=None):
        self.reset_after = _check_reset_after(reset_after)
        Wx, Wh, (bx, bh), self.D, self.H = check_weights(3, Wx, Wh, [("bx", bx), ("bh", bh)])
        self._groups = 4 if self.reset_after else 3
        self._setup("gru", Wx, Wh, (h0,), batch_size, num_threads)
        H, D = self.H, self.D

        def gate(a, q):  # gate block q (r, z, n) of fused weights or biases
            return a[..., q * H:(q + 1) * H]
        r, z = (np.vstack([gate(Wx, q), gate(Wh, q)]) for q in (0, 1))
        n_x = np.vstack([gate(Wx, 2), np.zeros((H, H), self.dtype)])
        b_rz = [gate(bx, q) + gate(bh, q) for q in (0, 1)]
        if self.reset_after:
            n_h = np.vstack([np.zeros((D, H), self.dtype), gate(Wh, 2)])
            self._panels, self._b_packed = self._pack_panels([r, z, n_x, n_h], b_rz + [gate(bx, 2), gate(bh, 2)])
            self._panels_n = None
        else:
            self._panels, self._b_packed = self._pack_panels([r, z, n_x], b_rz + [gate(bx, 2) + gate(bh, 2)])
            self._panels_n, _ = self._pack_panels([gate(Wh, 2)], [np.zeros(H, self.dtype)])

    def reset(self, h0=None, *, batch_size=None) -> None:
        """Start again from ``h0`` (zeros if None); the batch size may change."""
        self._reset((h0,), batch_size)

    def _reset(self, states, batch_size):
        states = super()._reset(states, batch_size)
        self._rh = np.zeros((self.N, self.H), dtype=self.dtype)
        self._gn = np.empty((self._n_chunks, self.N, self._chunk), dtype=self.dtype)
        return states

    def _kernel_step(self, cur, nxt):
        if self.reset_after:
            self._kernel.packed_step(cur, self._panels, self._b_packed, nxt, self._gates, self.H, self._chunk,
                                     True, None, None, None, self.num_threads)
        else:
            self._kernel.packed_step(cur, self._panels, self._b_packed, nxt, self._gates, self.H, self._chunk,
                                     False, self._panels_n, self._rh, self._gn, self.num_threads)


class RNNStepper(_PackedStepper):
    """Stateful one-step vanilla RNN: ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``, ``nonlinearity``
    "tanh" or "relu".  Equals ``rnn_step_forward`` step after step."""

    def __init__(self, Wx, Wh, b, h0=None, *, nonlinearity="tanh", batch_size=None, num_threads=None):
        self.nonlinearity = check_nonlinearity(nonlinearity)
        Wx, Wh, (b,), self.D, self.H = check_weights(1, Wx, Wh, [("b", b)])
        self._setup("rnn", Wx, Wh, (h0,), batch_size, num_threads)
        self._panels, self._b_packed = self._pack_panels([np.vstack([Wx, Wh])], [b])

    def reset(self, h0=None, *, batch_size=None) -> None:
        """Start again from ``h0`` (zeros if None); the batch size may change."""
        self._reset((h0,), batch_size)

    def _kernel_step(self, cur, nxt):
        self._kernel.packed_step(cur, self._panels, self._b_packed, nxt, self._gates, self.H, self._chunk,
                                 self.nonlinearity == "relu", self.num_threads)
