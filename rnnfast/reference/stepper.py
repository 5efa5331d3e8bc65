"""Streaming LSTM in plain NumPy: the specification of ``rnnfast.LSTMStepper``.

A stepper holds the state ``(h, c)`` between calls: ``step(x_t)`` advances it
by one LSTM step (``rnnfast.reference.lstm_step_forward``) and returns ``h_t``.
"""
from __future__ import annotations

import numpy as np

from .._stepper_checks import check_lstm_weights, check_step_input, initial_lstm_state
from .lstm import lstm_step_forward


class LSTMStepper:
    """Stateful one-step LSTM.  Weights are copied at construction.

    Parameters
    ----------
    Wx : (D, 4H);  Wh : (H, 4H);  b : (4H,)  -- gate blocks i, f, g, o
    h0, c0 : (N, H), optional (zeros)
    batch_size : int, optional -- N when no state is given (default 1)
    num_threads : accepted for the same signature as the fast stepper; unused
    """

    def __init__(self, Wx, Wh, b, h0=None, c0=None, *, batch_size=None, num_threads=None):
        Wx, Wh, b, self.D, self.H = check_lstm_weights(Wx, Wh, b)
        self.dtype = Wh.dtype
        self._W = [np.array(a, order="C") for a in (Wx, Wh, b)]
        self.reset(h0, c0, batch_size=batch_size)

    def reset(self, h0=None, c0=None, *, batch_size=None):
        """Start again from ``h0, c0`` (zeros where None); N may change."""
        self._h, self._c = initial_lstm_state(h0, c0, batch_size, self.H, self.dtype, getattr(self, "N", 1))
        self.N = self._h.shape[0]

    def step(self, x) -> np.ndarray:
        """``x (N, D)`` -> ``h_t (N, H)`` (a new array); the state moves on."""
        x = check_step_input(x, self.N, self.D, self.dtype)
        self._h, self._c, _ = lstm_step_forward(x, self._h, self._c, *self._W)
        return self._h.copy()

    @property
    def h(self) -> np.ndarray:
        return self._h.copy()

    @property
    def c(self) -> np.ndarray:
        return self._c.copy()
