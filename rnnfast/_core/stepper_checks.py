"""Argument checks of the streaming steppers (fast and reference alike)."""
from __future__ import annotations

import numpy as np

from .validation import check_finite, check_float_array, check_shape, check_states


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int; got {type(batch_size).__name__}")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0; got {batch_size}")
    return int(batch_size)


def initial_states(states, batch_size, H: int, dtype, default_n: int = 1):
    """C-contiguous copies of the named states ``(N, H)`` (zeros where None); N from the states,
    else ``batch_size``, else ``default_n``."""
    given = [s for _, s in states if isinstance(s, np.ndarray) and s.ndim == 2]
    N = given[0].shape[0] if given else check_batch_size(default_n if batch_size is None else batch_size)
    if batch_size is not None and check_batch_size(batch_size) != N:
        names = "/".join(n for n, _ in states)
        raise ValueError(f"batch_size = {batch_size} but {names} have {N} rows; expected the same N")
    checked = check_states(states, N, H, dtype, "with N = batch size, H = Wh.shape[0]")
    return [np.array(s, dtype=dtype, order="C") for s in checked]


def check_step_input(x, N: int, D: int, dtype) -> np.ndarray:
    x = check_float_array("x", x, 2, "(N, D)", dtype)
    check_shape("x", x, (N, D), "(N, D) with N = the stepper's batch size, D = Wx.shape[0]")
    check_finite("x", x)
    return x


class WholeRowStepper:
    """What the fast and the NumPy steppers share for the whole-row cells: ``_rows`` (a ``WholeRowSteps``,
    which then holds the state), taken on by ``_adopt_rows`` and reset by ``_reset_rows``."""

    _rows = None
    _state_names = ("h0",)

    def _adopt_rows(self, rows: "WholeRowSteps") -> None:
        self._rows = rows
        self.N, self.D, self.H, self.dtype = rows.N, rows.D, rows.H, rows.dtype

    def _reset_rows(self, states, batch_size) -> bool:
        """The whole-row cells' reset (True), or False for the others."""
        if self._rows is None:
            return False
        self._rows.reset(list(zip(self._state_names, states)), batch_size)
        self.N = self._rows.N
        return True


class WholeRowSteps:
    """The streaming steps of the cells that need every unit of a row between a step's product and the next
    step: the projection LSTM (``h = m @ Whr``) and the layer-normalized LSTM and GRU (statistics over all
    ``G`` pre-activations of a row).  Here each step is a one-step call of ``forward`` in inference mode (the
    NumPy twins' ``lstm_forward``/``gru_forward``), on copies of the weights checked once; the compiled
    steppers run their own products on packed strips (``rnnfast.stepper.PackedWholeRows``) and take the
    checks, the copies and the state from here.

    ``states`` are ``(name, array or None)`` pairs of the cell's states (``h0`` P wide with a projection,
    ``c0`` H wide); ``biases`` the cell's; ``options`` the forward's other keywords (``reset_after``,
    ``num_threads``) and ``variant`` its variant weights (``projection``, ``layer_norm``, ``peephole``)."""

    def __init__(self, forward, Wx, Wh, biases, states, batch_size, options: dict, variant: dict):
        self._forward, self._options = forward, options
        self.N = self._rows(states, batch_size, 1)
        self.D = np.shape(Wx)[0] if np.ndim(Wx) == 2 else 0
        dtype = getattr(Wx, "dtype", np.dtype(np.float64))
        # one step from the given states on x = 0: the forward's own checks, and its messages (h0, c0, Wx, ...)
        _, *finals, _ = forward(np.zeros((self.N, 1, self.D), dtype if dtype.kind == "f" else np.float64), Wx, Wh,
                                *biases, *(s for _, s in states), need_grad=False, **options, **variant)
        self.dtype = finals[0].dtype
        self._W = [np.array(a, dtype=self.dtype, order="C") for a in (Wx, Wh, *biases)]  # later edits don't reach
        self._variant = {k: np.array(v, dtype=self.dtype, order="C") for k, v in variant.items() if v is not None}
        self._names = [n for n, _ in states]
        self.widths = [f.shape[1] for f in finals]  # h: P wide with a projection; c: H wide
        self.H = self.widths[-1]
        self.reset(states, batch_size)

    def _rows(self, states, batch_size, default_n: int) -> int:
        given = [s for _, s in states if isinstance(s, np.ndarray) and s.ndim == 2]
        N = given[0].shape[0] if given else check_batch_size(default_n if batch_size is None else batch_size)
        if batch_size is not None and check_batch_size(batch_size) != N:
            names = "/".join(n for n, _ in states)
            raise ValueError(f"batch_size = {batch_size} but {names} have {N} rows; expected the same N")
        return N

    def reset(self, states, batch_size) -> None:
        """Start again from ``states`` (zeros where None); the batch size may change."""
        N = self._rows(states, batch_size, getattr(self, "N", 1))
        checked = [check_states([(name, s)], N, w, self.dtype, f"with N = the batch size, {w} = the state's width")[0]
                   for (name, s), w in zip(states, self.widths)]
        self.states = [np.array(s, order="C") for s in checked]
        self.N = N

    def step(self, x) -> np.ndarray:
        """``x (N, D)`` -> ``h_t`` (a new array); the state moves on."""
        x = check_step_input(x, self.N, self.D, self.dtype)
        _, *self.states, _ = self._forward(x[:, None, :], *self._W, *self.states, need_grad=False,
                                           check_finite=False, **self._options, **self._variant)
        return self.states[0].copy()
