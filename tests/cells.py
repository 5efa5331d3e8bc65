"""One uniform face for the five cell variants, so tests are written once and
parametrized over cells, implementations (Cython kernels, NumPy reference) and dtypes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import rnnfast
import rnnfast.reference as reference

IMPLS = {"kernel": rnnfast, "reference": reference}


@dataclass(frozen=True)
class Cell:
    name: str
    gates: int
    n_biases: int
    n_states: int  # 2 for LSTM (h, c), else 1
    forward: Callable  # (impl, x, params, states, lengths, num_threads) -> (hs, finals, cache)
    backward: Callable  # (impl, dhs, cache, dfinals) -> (dx, dWx, dWh, *dbiases, *dstates0)

    def __str__(self):
        return self.name

    def params(self, rng, D, H, dtype, scale=0.5):
        G = self.gates * H
        Wx = rng.standard_normal((D, G)) * scale / np.sqrt(D)
        Wh = rng.standard_normal((H, G)) * scale / np.sqrt(H) * 2
        biases = [rng.standard_normal(G) * 0.2 for _ in range(self.n_biases)]
        return [a.astype(dtype) for a in (Wx, Wh, *biases)]

    def states(self, rng, N, H, dtype):
        return [rng.standard_normal((N, H)).astype(dtype) * 0.5 for _ in range(self.n_states)]


def _lstm_fwd(impl, x, p, s, lengths=None, num_threads=None):
    h0, c0 = s if s else (None, None)
    hs, hT, cT, cache = impl.lstm_forward(x, *p, h0, c0, lengths=lengths, num_threads=num_threads)
    return hs, (hT, cT), cache


def _lstm_bwd(impl, dhs, cache, d):
    return impl.lstm_backward(dhs, cache, *(d if d else (None, None)))


def _gru_fwd(reset_after):
    def fwd(impl, x, p, s, lengths=None, num_threads=None):
        hs, hT, cache = impl.gru_forward(x, *p, s[0] if s else None, lengths=lengths,
                                         reset_after=reset_after, num_threads=num_threads)
        return hs, (hT,), cache
    return fwd


def _one_state_bwd(name):
    def bwd(impl, dhs, cache, d):
        return getattr(impl, f"{name}_backward")(dhs, cache, d[0] if d else None)
    return bwd


def _rnn_fwd(nonlinearity):
    def fwd(impl, x, p, s, lengths=None, num_threads=None):
        hs, hT, cache = impl.rnn_forward(x, *p, s[0] if s else None, nonlinearity=nonlinearity,
                                         lengths=lengths, num_threads=num_threads)
        return hs, (hT,), cache
    return fwd


CELLS = [
    Cell("lstm", 4, 1, 2, _lstm_fwd, _lstm_bwd),
    Cell("gru_reset_after", 3, 2, 1, _gru_fwd(True), _one_state_bwd("gru")),
    Cell("gru_reset_before", 3, 2, 1, _gru_fwd(False), _one_state_bwd("gru")),
    Cell("rnn_tanh", 1, 1, 1, _rnn_fwd("tanh"), _one_state_bwd("rnn")),
    Cell("rnn_relu", 1, 1, 1, _rnn_fwd("relu"), _one_state_bwd("rnn")),
]
CELL_BY_NAME = {c.name: c for c in CELLS}


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(b)), 1e-30) if b.size else 1.0
    return float(np.max(np.abs(a - b)) / scale) if a.size else 0.0


def run(cell, impl, x, params, states, lengths=None, dhs=None, dfinals=None, num_threads=None):
    """Forward then backward; returns (outputs, gradients) as flat lists of arrays."""
    hs, finals, cache = cell.forward(impl, x, params, states, lengths, num_threads)
    if dhs is None:
        return [hs, *finals], None
    grads = cell.backward(impl, dhs, cache, dfinals)
    return [hs, *finals], list(grads)


def problem(cell, rng, N, T, D, H, dtype=np.float32):
    """A random forward + backward problem with padding: ``x, params, states, lengths, dhs, dfinals``."""
    x = rng.standard_normal((N, T, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    states = cell.states(rng, N, H, dtype)
    lengths = rng.integers(1, T + 1, size=N)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dfinals = cell.states(rng, N, H, dtype)
    return x, params, states, lengths, dhs, dfinals
