"""Streaming in plain NumPy: the specification of ``rnnfast.LSTMStepper``, ``GRUStepper`` and
``RNNStepper``.  A stepper holds the state between calls: ``step(x_t)`` advances it by one step of
the cell (``rnnfast.reference.*_step_forward``) and returns ``h_t``."""
from __future__ import annotations

import numpy as np

from .._core.stepper_checks import check_step_input, initial_states
from .._core.validation import check_peephole, check_weights, check_zoneout
from ..cells import GRU, LSTM, RNN
from .gru import gru_step_forward
from .lstm import lstm_step_forward
from .rnn import rnn_step_forward


class _Stepper:
    _state_names = ("h0",)

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
        x = check_step_input(x, self.N, self.D, self.dtype)
        self._s = self._advance(x)
        return self._s[0].copy()

    @property
    def h(self) -> np.ndarray:
        return self._s[0].copy()


class LSTMStepper(_Stepper):
    """Stateful one-step LSTM (gates i, f, g, o).  Weights are copied at construction."""

    _state_names = ("h0", "c0")

    def __init__(self, Wx, Wh, b, h0=None, c0=None, *, batch_size=None, num_threads=None, peephole=None,
                 zoneout=None):
        self._setup(LSTM, Wx, Wh, [b], (h0, c0), batch_size)
        peephole = check_peephole(peephole, self.H, self.dtype)
        self._variant = {"peephole": None if peephole is None else np.array(peephole),
                         "zoneout": check_zoneout(zoneout, None)[0]}  # evaluation: no seed
        if peephole is not None and zoneout is not None:
            raise ValueError("zoneout: not with peephole (one LSTM variant at a time)")

    def reset(self, h0=None, c0=None, *, batch_size=None):
        """Start again from ``h0, c0`` (zeros where None); N may change."""
        self._reset((h0, c0), batch_size)

    def _advance(self, x):
        h, c, _ = lstm_step_forward(x, *self._s, *self._W, **self._variant)
        return [h, c]

    @property
    def c(self) -> np.ndarray:
        return self._s[1].copy()


class GRUStepper(_Stepper):
    """Stateful one-step GRU (gates r, z, n; ``reset_after`` as in ``gru_forward``)."""

    def __init__(self, Wx, Wh, bx, bh, h0=None, *, reset_after=True, batch_size=None, num_threads=None):
        self.reset_after = GRU.check_option(reset_after)
        self._setup(GRU, Wx, Wh, [bx, bh], (h0,), batch_size)

    def reset(self, h0=None, *, batch_size=None):
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
