"""One uniform face for the seven cell variants (the three cells of ``rnnfast.cells``, their options and the
LSTM's peepholes and zoneout), so
tests are written once and parametrized over cells, implementations (Cython kernels, NumPy reference) and
dtypes.  With ``plan=``, a kernel call goes through the driver on that plan (a test's choice of path)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import rnnfast
import rnnfast.reference as reference
from rnnfast._core import driver
from rnnfast._core.plan import StepPlan
from rnnfast.cells import CELLS as SPECS, CellSpec

IMPLS = {"kernel": rnnfast, "reference": reference}


@dataclass(frozen=True)
class Cell:
    name: str
    spec: CellSpec
    option: object = None  # the spec's option (reset_after, nonlinearity)
    peephole: bool = False  # LSTM: its params end with the peepholes (3H,), its gradients with theirs
    zoneout: bool = False  # LSTM: zoneout in training (rates and seed fixed here)

    @property
    def n_weights(self) -> int:
        """Parameters after Wx, Wh and the biases: the peepholes."""
        return int(self.peephole)

    def __str__(self):
        return self.name

    @property
    def gates(self) -> int:
        return self.spec.gates

    @property
    def n_biases(self) -> int:
        return len(self.spec.bias_names)

    @property
    def n_states(self) -> int:
        return len(self.spec.state_names)

    def _option(self):
        return {self.spec.option: self.option} if self.spec.option else {}

    def _extra(self, p):
        """The keyword arguments of the parameters after the biases, and zoneout's."""
        if self.zoneout:
            return {"zoneout": (0.25, 0.4), "zoneout_seed": 3}
        return {"peephole": p[2 + self.n_biases]} if self.peephole else {}

    def weights(self, params) -> list:
        """The positional parameters of the functions: ``Wx, Wh, *biases``."""
        return list(params[:2 + self.n_biases])

    def keywords(self, params) -> dict:
        """The keyword arguments of the functions: the option and the peepholes."""
        return {**self._option(), **self._extra(params)}

    def forward(self, impl, x, p, s, lengths=None, num_threads=None, plan=None):
        """-> (hs, finals, cache)."""
        biases = p[2:2 + self.n_biases]
        if plan is not None:
            assert impl is rnnfast, "a plan is for the kernels"
            hs, finals, cache = driver.sequence_forward(self.spec, x, p[0], p[1], biases, s or [None] * self.n_states,
                                                        lengths, self.option, num_threads, plan=plan,
                                                        **self._extra(p))
            return hs, tuple(finals), cache
        fn = getattr(impl, f"{self.spec.name}_forward")
        hs, *finals, cache = fn(x, p[0], p[1], *biases, *(s or [None] * self.n_states), lengths=lengths,
                                num_threads=num_threads, **self._option(), **self._extra(p))
        return hs, tuple(finals), cache

    def backward(self, impl, dhs, cache, d):
        """-> (dx, dWx, dWh, *dbiases, *dweights, *dstates0): the gradients in the order of ``[x, *params,
        *states]`` (the functions return the peepholes' last, after the states')."""
        grads = getattr(impl, f"{self.spec.name}_backward")(dhs, cache, *(d or [None] * self.n_states))
        if not self.n_weights:
            return grads
        k = 3 + self.n_biases
        return (*grads[:k], *grads[len(grads) - self.n_weights:], *grads[k:len(grads) - self.n_weights])

    def plan(self, N, T, H, dtype, num_threads=None, **force) -> StepPlan:
        return StepPlan.choose(self.gates, N, T, H, dtype, num_threads, **force)

    def params(self, rng, D, H, dtype, scale=0.5):
        G = self.gates * H
        Wx = rng.standard_normal((D, G)) * scale / np.sqrt(D)
        Wh = rng.standard_normal((H, G)) * scale / np.sqrt(H) * 2
        biases = [rng.standard_normal(G) * 0.2 for _ in range(self.n_biases)]
        extra = [rng.standard_normal(3 * H) * 0.5] if self.peephole else []
        return [a.astype(dtype) for a in (Wx, Wh, *biases, *extra)]

    def states(self, rng, N, H, dtype):
        return [rng.standard_normal((N, H)).astype(dtype) * 0.5 for _ in range(self.n_states)]


CELLS = [
    Cell("lstm", SPECS["lstm"]),
    Cell("lstm_peephole", SPECS["lstm"], peephole=True),
    Cell("lstm_zoneout", SPECS["lstm"], zoneout=True),
    Cell("gru_reset_after", SPECS["gru"], True),
    Cell("gru_reset_before", SPECS["gru"], False),
    Cell("rnn_tanh", SPECS["rnn"], "tanh"),
    Cell("rnn_relu", SPECS["rnn"], "relu"),
]
CELL_BY_NAME = {c.name: c for c in CELLS}


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(b)), 1e-30) if b.size else 1.0
    return float(np.max(np.abs(a - b)) / scale) if a.size else 0.0


def run(cell, impl, x, params, states, lengths=None, dhs=None, dfinals=None, num_threads=None, plan=None):
    """Forward then backward; returns (outputs, gradients) as flat lists of arrays."""
    hs, finals, cache = cell.forward(impl, x, params, states, lengths, num_threads, plan)
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
