"""Streaming in plain NumPy: the specification of ``rnnfast.LSTMStepper``, ``GRUStepper`` and
``RNNStepper``.  A stepper holds the state between calls: ``step(x_t)`` advances it by one step of
the cell (``rnnfast.reference.*_step_forward``) and returns ``h_t``."""
from __future__ import annotations

import numpy as np

from .._core.stepper_checks import WholeRowStepper, WholeRowSteps, check_step_input, initial_states
from .._core.validation import check_peephole, check_weights, check_zoneout
from ..cells import GRU, LSTM, RNN
from .gru import gru_step_forward
from .lstm import lstm_step_forward
from .rnn import rnn_step_forward


class _Stepper(WholeRowStepper):
    _state_names = ("h0",)

    def _whole_rows(self, forward, Wx, Wh, biases, states, batch_size, options, variant) -> None:
        self._adopt_rows(WholeRowSteps(forward, Wx, Wh, biases, states, batch_size, options, variant))

    def _setup(self, spec, Wx, Wh, biases, states, batch_size):
        Wx, Wh, biases, self.D, self.H = check_weights(spec, Wx, Wh, biases)
        self.dtype = Wh.dtype
        self._W = [np.array(a, order="C") for a in (Wx, Wh, *biases)]
        self._reset(states, batch_size)

    def _reset(self, states, batch_size):
        self._s = initial_states(list(zip(self._state_names, states)), batch_size, self.H, self.dtype,
                                 getattr(self, "N", 1))
        self.N = self._s[0].shape[0]

    def step(self, x) -> np.ndarray:
        """``x (N, D)`` -> ``h_t (N, H)`` (a new array); the state moves on."""
        if self._rows is not None:
            return self._rows.step(x)
        x = check_step_input(x, self.N, self.D, self.dtype)
        self._s = self._advance(x)
        return self._s[0].copy()

    @property
    def h(self) -> np.ndarray:
        return (self._rows.states if self._rows is not None else self._s)[0].copy()


class LSTMStepper(_Stepper):
    """Stateful one-step LSTM (gates i, f, g, o).  Weights are copied at construction."""

    _state_names = ("h0", "c0")

    def __init__(self, Wx, Wh, b, h0=None, c0=None, *, batch_size=None, num_threads=None, peephole=None,
                 zoneout=None, projection=None, layer_norm=None):
        if projection is not None or layer_norm is not None:
            from .lstm import lstm_forward
            self._whole_rows(lstm_forward, Wx, Wh, [b], [("h0", h0), ("c0", c0)], batch_size, {},
                             {"peephole": peephole, "projection": projection, "layer_norm": layer_norm,
                              "zoneout": zoneout})
            return
        self._setup(LSTM, Wx, Wh, [b], (h0, c0), batch_size)
        peephole = check_peephole(peephole, self.H, self.dtype)
        self._variant = {"peephole": None if peephole is None else np.array(peephole),
                         "zoneout": check_zoneout(zoneout, None)[0]}  # evaluation: no seed
        if peephole is not None and zoneout is not None:
            raise ValueError("zoneout: not with peephole (one LSTM variant at a time)")

    def reset(self, h0=None, c0=None, *, batch_size=None):
        """Start again from ``h0, c0`` (zeros where None); N may change."""
        if not self._reset_rows((h0, c0), batch_size):
            self._reset((h0, c0), batch_size)

    def _advance(self, x):
        h, c, _ = lstm_step_forward(x, *self._s, *self._W, **self._variant)
        return [h, c]

    @property
    def c(self) -> np.ndarray:
        return (self._rows.states if self._rows is not None else self._s)[1].copy()


class GRUStepper(_Stepper):
    """Stateful one-step GRU (gates r, z, n; ``reset_after`` as in ``gru_forward``)."""

    def __init__(self, Wx, Wh, bx, bh, h0=None, *, reset_after=True, batch_size=None, num_threads=None,
                 layer_norm=None):
        self.reset_after = GRU.check_option(reset_after)
        if layer_norm is not None:
            from .gru import gru_forward
            self._whole_rows(gru_forward, Wx, Wh, [bx, bh], [("h0", h0)], batch_size,
                             {"reset_after": self.reset_after}, {"layer_norm": layer_norm})
            return
        self._setup(GRU, Wx, Wh, [bx, bh], (h0,), batch_size)

    def reset(self, h0=None, *, batch_size=None):
        if not self._reset_rows((h0,), batch_size):
            self._reset((h0,), batch_size)

    def _advance(self, x):
        h, _ = gru_step_forward(x, self._s[0], *self._W, reset_after=self.reset_after)
        return [h]


class RNNStepper(_Stepper):
    """Stateful one-step vanilla RNN (``nonlinearity`` "tanh" or "relu")."""

    def __init__(self, Wx, Wh, b, h0=None, *, nonlinearity="tanh", batch_size=None, num_threads=None):
        self.nonlinearity = RNN.check_option(nonlinearity)
        self._setup(RNN, Wx, Wh, [b], (h0,), batch_size)

    def reset(self, h0=None, *, batch_size=None):
        self._reset((h0,), batch_size)

    def _advance(self, x):
        h, _ = rnn_step_forward(x, self._s[0], *self._W, nonlinearity=self.nonlinearity)
        return [h]
