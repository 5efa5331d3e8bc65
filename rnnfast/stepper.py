"""Streaming: one step per call on weights validated and packed once.

``*_step_forward`` check and lay out the weights at every call, which is most of their cost at batch 1.
A stepper does that once: it cuts the hidden units into unit blocks (``plan.stream_unit_block``) and packs,
per block, the gate columns of ``[Wx; Wh]`` side by side as column strips; each ``step`` is then one
product per block (our own loop at batch 1, no BLAS) plus the gate arithmetic, the blocks shared among
OpenMP threads with no barrier (two passes for the reset-before GRU).  A thread keeps the same blocks at
every step.  The compiled step is ``kernels.stream_step``, one per cell in ``src/*_cell.pxd``.

The projection and layer-normalized cells need every unit of a row between a step's products and the next
step, which independent unit blocks do not give: their steppers run the products on packed strips in the same
way (``kernels.strip_products``, the blocks shared among threads), then the row's maths on whole rows
(``kernels.stream_whole_rows``, the sequence kernels' own row functions): ``PackedWholeRows``.

NumPy twins: ``rnnfast.reference.stepper`` (same signatures).
"""
from __future__ import annotations

import numpy as np

from ._core.dispatch import kernel_module
from ._core.plan import CONSTANTS, stream_unit_block
from ._core.stepper_checks import WholeRowStepper, WholeRowSteps, check_step_input, initial_states
from ._core.threads import resolve_num_threads, single_threaded_blas
from ._core.validation import check_peephole, check_weights, check_zoneout
from ._core.workspace import aligned_empty
from .cells import GRU, LSTM, RNN

_kernels = kernel_module("kernels")  # the AVX-512 or AVX2 twin where the CPU runs it


def pack_strips(blocks, biases, width: int, strip_bytes: int = CONSTANTS["strip_bytes"]):
    """``blocks``: G arrays (K, H) -> strips (unit blocks, K, G*width), block k holding the G blocks'
    columns of units ``k*width ...`` side by side (zero-padded past H); biases likewise.

    Each block's (K, G*width) columns are stored as column strips of ``strip_bytes`` (the kernels'), one
    contiguous (K, strip width) block after another, so that a one-row product reads each strip once, in
    order (``strips.row_product``)."""
    K, H = blocks[0].shape
    n_blocks, G = -(-H // width), len(blocks)
    W = np.zeros((K, G, n_blocks * width), dtype=blocks[0].dtype)
    bp = np.zeros((G, n_blocks * width), dtype=blocks[0].dtype)
    for q, (blk, b) in enumerate(zip(blocks, biases)):
        W[:, q, :H] = blk
        bp[q, :H] = b
    columns = W.reshape(K, G, n_blocks, width).transpose(2, 0, 1, 3).reshape(n_blocks, K, G * width)
    b_strips = bp.reshape(G, n_blocks, width).transpose(1, 0, 2).reshape(n_blocks, G * width)
    strips = aligned_empty(columns.shape, columns.dtype)  # C order, on a cache line (``workspace.aligned_empty``)
    flat, strip, start = strips.reshape(n_blocks, -1), strip_bytes // columns.itemsize, 0
    for s0 in range(0, G * width, strip):
        w = min(strip, G * width - s0)
        flat[:, start:start + K * w] = columns[:, :, s0:s0 + w].reshape(n_blocks, K * w)
        start += K * w
    return strips, np.ascontiguousarray(b_strips)


class PackedWholeRows(WholeRowSteps):
    """The whole-row cells' steps on packed weights: the projection LSTM (one product of ``[x | h]`` with
    ``[Wx; Wh]`` and the bias, the gates, then ``m @ Whr``) and the layer-normalized LSTM and GRU (``x @ Wx``
    and ``h @ Wh`` apart, each normalized over the row).  The products run on column strips per unit block
    (``kernels.strip_products``), as the other steppers' do; the row's maths after them are the sequence
    kernels' row functions (``kernels.stream_whole_rows``).  Arguments are checked as ``WholeRowSteps`` checks
    them (one step of ``forward``)."""

    def __init__(self, forward, Wx, Wh, biases, states, batch_size, options: dict, variant: dict):
        super().__init__(forward, Wx, Wh, biases, states, batch_size, options, variant)
        Wx, Wh, *biases = self._W
        H, dtype = self.H, self.dtype
        self.num_threads = options["num_threads"]
        self.groups = Wx.shape[1] // H
        self.width = stream_unit_block(H)
        self.gru = self.groups == 3

        def blocks(W):  # the gate blocks of fused weights
            return [W[:, q * H:(q + 1) * H] for q in range(self.groups)]
        zeros = [np.zeros(H, dtype)] * self.groups
        Whr = self._variant.pop("projection", None)
        self.P = None if Whr is None else Whr.shape[1]
        if Whr is not None:  # a = [x | h] @ [Wx; Wh] + b in one product; then h = m @ Whr
            b = biases[0]
            self.xh_strips = pack_strips(blocks(np.vstack([Wx, Wh])), [b[q * H:(q + 1) * H] for q in range(4)],
                                         self.width)
            self.r_width = stream_unit_block(self.P)
            self.r_strips = pack_strips([Whr], [np.zeros(self.P, dtype)], self.r_width)
        else:  # the two products are normalized apart, before any bias
            self.x_strips = pack_strips(blocks(Wx), zeros, self.width)[0]
            self.h_strips = pack_strips(blocks(Wh), zeros, self.width)[0]
        # the biases the row maths add ([b_x | b_h] for the GRU); the weights live on in the strips alone
        self.bias = np.concatenate(biases) if self.gru else biases[0]
        del self._W

    def _product(self, strips, b_strips, x, groups: int, width: int, units: int) -> np.ndarray:
        """``x (N, K) @`` the packed columns (+ their biases): ``(N, groups * units)``, gate blocks in order."""
        N, blocks = x.shape[0], strips.shape[0]
        out = np.empty((blocks, N, groups * width), dtype=self.dtype)
        x = np.ascontiguousarray(x)
        if N == 1:  # one row: the strips' own loop, no BLAS
            _kernels.strip_products(strips, x, out, b_strips, self.num_threads)
        else:
            with single_threaded_blas():
                _kernels.strip_products(strips, x, out, b_strips, self.num_threads)
        columns = out.reshape(blocks, N, groups, width).transpose(1, 2, 0, 3).reshape(N, groups, blocks * width)
        return np.ascontiguousarray(columns[:, :, :units].reshape(N, groups * units))  # the row maths' input

    def step(self, x) -> np.ndarray:
        x = check_step_input(x, self.N, self.D, self.dtype)
        h, *c = self.states
        H, G, N = self.H, self.groups, self.N
        new_h = np.empty((N, H), self.dtype)
        new_c = np.empty((N, H), self.dtype) if c else None
        if self.P is not None:  # new_h gets m = o * tanh(c_t), then h_t = m @ Whr
            a = self._product(*self.xh_strips, np.hstack([x, h]), G, self.width, H)
            _kernels.stream_whole_rows("lstm", a, None, None, c[0], None, None, self._variant.get("peephole"),
                                       new_h, new_c, None)
            self.states = [self._product(*self.r_strips, new_h, 1, self.r_width, self.P), new_c]
        else:
            ax = self._product(self.x_strips, None, x, G, self.width, H)
            ah = self._product(self.h_strips, None, h, G, self.width, H)
            ln = self._variant["layer_norm"]
            if self.gru:
                _kernels.stream_whole_rows("gru_layer_norm", ax, ah, h, None, ln, self.bias, None, new_h, None,
                                           None)
                self.states = [new_h]
            else:
                _kernels.stream_whole_rows("lstm_layer_norm", ax, ah, None, c[0], ln, self.bias, None, new_h,
                                           new_c, np.empty((N, H), self.dtype))
                self.states = [new_h, new_c]
        return self.states[0].copy()


class _PackedStepper(WholeRowStepper):
    """What every stepper shares: the state in two ``[x | h]`` buffers (a step reads one and writes ``h_t``
    into the other), the batch size, threads, and the public ``step``/``h``.  Its attributes are also the
    buffers ``kernels.stream_step`` reads: ``cell``, ``reset_after``, ``relu``, ``H``, ``width``,
    ``groups``, ``strips``, ``b_strips``, ``strips_n``, ``c_state``, ``rh``, ``gn``, ``gates``, ``num_threads``."""

    _state_names = ("h0",)
    groups = 1  # column groups per unit block
    reset_after = relu = False
    strips_n = c_state = rh = gn = None
    peep = zoneout = None  # the LSTM's variants: peepholes (3H,), zoneout's rates (z_c, z_h)

    def _whole_rows(self, forward, Wx, Wh, biases, states, batch_size, num_threads, options, variant) -> None:
        self.num_threads = resolve_num_threads(num_threads)
        self._adopt_rows(PackedWholeRows(forward, Wx, Wh, biases, states, batch_size,
                                         {"num_threads": self.num_threads, **options}, variant))

    def _setup(self, spec, Wx, Wh, states, batch_size, num_threads):
        self.cell = _kernels.CELLS[spec.name]
        self.dtype = Wh.dtype
        self.num_threads = resolve_num_threads(num_threads)
        self.width = stream_unit_block(self.H)
        self._unit_blocks = -(-self.H // self.width)
        self._reset(states, batch_size)

    def _pack(self, blocks, biases):
        return pack_strips(blocks, biases, self.width)

    def _reset(self, states, batch_size):
        states = initial_states(list(zip(self._state_names, states)), batch_size, self.H, self.dtype,
                                getattr(self, "N", 1))
        self.N = states[0].shape[0]
        self._xh = np.zeros((2, self.N, self.D + self.H), dtype=self.dtype)
        self._xh[0, :, self.D:] = states[0]
        self._cur = 0
        self.gates = np.empty((self._unit_blocks, self.N, self.groups * self.width), dtype=self.dtype)
        return states

    def step(self, x) -> np.ndarray:
        """``x (N, D)`` -> ``h_t (N, H)`` (a new array); the state moves on."""
        if self._rows is not None:
            return self._rows.step(x)
        if not (type(x) is np.ndarray and x.dtype == self.dtype and x.shape == (self.N, self.D)
                and np.isfinite(x).all()):
            x = check_step_input(x, self.N, self.D, self.dtype)  # raises the precise error
        cur, nxt = self._xh[self._cur], self._xh[1 - self._cur]
        cur[:, :self.D] = x
        if self.N == 1:  # one row: the kernels call no BLAS (strips.row_product), nothing to pin
            _kernels.stream_step(self, cur, nxt)
        else:
            with single_threaded_blas():
                _kernels.stream_step(self, cur, nxt)
        self._cur = 1 - self._cur
        return nxt[:, self.D:].copy()

    @property
    def h(self) -> np.ndarray:
        if self._rows is not None:
            return self._rows.states[0].copy()
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
    peephole : ndarray, shape (3H,), optional
        The peephole LSTM's diagonal weights, as in ``lstm_forward``.
    zoneout : (z_c, z_h), optional
        Zoneout's rates: the evaluation form of ``lstm_forward(..., zoneout=...)`` (each unit of c and h keeps
        that share of its previous value), as a trained zoneout LSTM generates.
    projection : ndarray, shape (H, P), optional
        The projection LSTM's ``Whr``, as in ``lstm_forward``: ``Wh`` is then ``(P, 4H)``, ``h0`` and ``h``
        P wide (with ``peephole`` too).
    layer_norm : ndarray, shape (10H,), optional
        The layer-normalized LSTM's parameters, as in ``lstm_forward``.

    Notes
    -----
    The projection and layer-normalized LSTMs need every unit of a row between the products and the next step:
    their products run on packed strips, then each whole row's maths (``PackedWholeRows``); they equal
    ``lstm_step_forward`` step after step to rounding.
    """

    _state_names = ("h0", "c0")
    groups = 4

    def __init__(self, Wx, Wh, b, h0=None, c0=None, *, batch_size=None, num_threads=None, peephole=None,
                 zoneout=None, projection=None, layer_norm=None):
        if projection is not None or layer_norm is not None:
            from .lstm import lstm_forward
            self._whole_rows(lstm_forward, Wx, Wh, [b], [("h0", h0), ("c0", c0)], batch_size, num_threads, {},
                             {"peephole": peephole, "projection": projection, "layer_norm": layer_norm,
                              "zoneout": zoneout})
            return
        Wx, Wh, (b,), self.D, self.H = check_weights(LSTM, Wx, Wh, [b])
        peephole = check_peephole(peephole, self.H, Wh.dtype)
        zoneout = check_zoneout(zoneout, None)[0]
        if peephole is not None and zoneout is not None:
            raise ValueError("zoneout: not with peephole (one LSTM variant at a time)")
        self.peep = None if peephole is None else np.array(peephole, order="C")
        self.zoneout = zoneout
        W, H = np.vstack([Wx, Wh]), self.H
        self._setup(LSTM, Wx, Wh, (h0, c0), batch_size, num_threads)
        self.strips, self.b_strips = self._pack([W[:, q * H:(q + 1) * H] for q in range(4)],
                                                [b[q * H:(q + 1) * H] for q in range(4)])

    def reset(self, h0=None, c0=None, *, batch_size=None) -> None:
        """Start again from ``h0, c0`` (zeros where None); the batch size may change."""
        if not self._reset_rows((h0, c0), batch_size):
            self._reset((h0, c0), batch_size)

    def _reset(self, states, batch_size):
        states = super()._reset(states, batch_size)
        self.c_state = states[1]  # updated in place by the kernel
        return states

    @property
    def c(self) -> np.ndarray:
        if self._rows is not None:
            return self._rows.states[1].copy()
        return self.c_state.copy()


class GRUStepper(_PackedStepper):
    """Stateful one-step GRU: ``Wx (D, 3H)``, ``Wh (H, 3H)``, ``bx, bh (3H,)``, gates r, z, n,
    ``h' = (1 - z) * n + z * h``; ``reset_after`` as in ``gru_forward``.  Equals
    ``gru_step_forward`` step after step; otherwise as ``LSTMStepper`` (no ``c``).  ``layer_norm (6H,)``: the
    layer-normalized GRU (reset-after), as in ``gru_forward``, on whole rows as ``LSTMStepper``'s."""

    def __init__(self, Wx, Wh, bx, bh, h0=None, *, reset_after=True, batch_size=None, num_threads=None,
                 layer_norm=None):
        self.reset_after = GRU.check_option(reset_after)
        if layer_norm is not None:
            from .gru import gru_forward
            self._whole_rows(gru_forward, Wx, Wh, [bx, bh], [("h0", h0)], batch_size, num_threads,
                             {"reset_after": self.reset_after}, {"layer_norm": layer_norm})
            return
        Wx, Wh, (bx, bh), self.D, self.H = check_weights(GRU, Wx, Wh, [bx, bh])
        self.groups = 4 if self.reset_after else 3
        self._setup(GRU, Wx, Wh, (h0,), batch_size, num_threads)
        H, D = self.H, self.D

        def gate(a, q):  # gate block q (r, z, n) of fused weights or biases
            return a[..., q * H:(q + 1) * H]
        r, z = (np.vstack([gate(Wx, q), gate(Wh, q)]) for q in (0, 1))
        n_x = np.vstack([gate(Wx, 2), np.zeros((H, H), self.dtype)])
        b_rz = [gate(bx, q) + gate(bh, q) for q in (0, 1)]
        if self.reset_after:
            n_h = np.vstack([np.zeros((D, H), self.dtype), gate(Wh, 2)])
            self.strips, self.b_strips = self._pack([r, z, n_x, n_h], b_rz + [gate(bx, 2), gate(bh, 2)])
        else:
            self.strips, self.b_strips = self._pack([r, z, n_x], b_rz + [gate(bx, 2) + gate(bh, 2)])
            self.strips_n, _ = self._pack([gate(Wh, 2)], [np.zeros(H, self.dtype)])

    def reset(self, h0=None, *, batch_size=None) -> None:
        """Start again from ``h0`` (zeros if None); the batch size may change."""
        if not self._reset_rows((h0,), batch_size):
            self._reset((h0,), batch_size)

    def _reset(self, states, batch_size):
        states = super()._reset(states, batch_size)
        if not self.reset_after:
            self.rh = np.zeros((self.N, self.H), dtype=self.dtype)
            self.gn = np.empty((self._unit_blocks, self.N, self.width), dtype=self.dtype)
        return states


class RNNStepper(_PackedStepper):
    """Stateful one-step vanilla RNN: ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``, ``nonlinearity``
    "tanh" or "relu".  Equals ``rnn_step_forward`` step after step."""

    def __init__(self, Wx, Wh, b, h0=None, *, nonlinearity="tanh", batch_size=None, num_threads=None):
        self.nonlinearity = RNN.check_option(nonlinearity)
        self.relu = self.nonlinearity == "relu"
        Wx, Wh, (b,), self.D, self.H = check_weights(RNN, Wx, Wh, [b])
        self._setup(RNN, Wx, Wh, (h0,), batch_size, num_threads)
        self.strips, self.b_strips = self._pack([np.vstack([Wx, Wh])], [b])

    def reset(self, h0=None, *, batch_size=None) -> None:
        """Start again from ``h0`` (zeros if None); the batch size may change."""
        self._reset((h0,), batch_size)
