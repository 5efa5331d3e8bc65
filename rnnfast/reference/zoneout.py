"""The LSTM with zoneout (Krueger et al. 2016) in plain NumPy: the specification of ``rnnfast.lstm_forward(...,
zoneout=(z_c, z_h), zoneout_seed=s)``.

Each unit of each state keeps its previous value with probability ``z`` (zones out) instead of taking the new
one; the output and the new cell state's tanh are the LSTM's:

    c~ = f * c_{t-1} + i * g;           h~ = o * tanh(c~)
    c_t = k_c * c_{t-1} + (1 - k_c) * c~;   h_t = k_h * h_{t-1} + (1 - k_h) * h~

Training (a ``zoneout_seed``): ``k`` is 0 or 1 per step, sequence and unit, 1 with probability ``z``, from a
counter-based generator (``masks``), so the same seed gives the same masks whatever the thread count.
Evaluation (no seed): ``k = z``, the masks' expectation.  With ``lengths``, as the LSTM's.
"""
from __future__ import annotations

import numpy as np

from .._core.counter_rng import splitmix64


def masks(seed: int, t: int, N: int, T: int, H: int, z_c: float, z_h: float, dtype=np.float64):
    """Step t's ``(k_c, k_h)``, each ``(N, H)`` of 0/1 in ``dtype``: unit j of sequence n zones out where the
    uniform number of counter ``((n * T + t) * H + j) * 2 + (0 for c, 1 for h)`` is below the rate."""
    key = splitmix64(np.array([seed], dtype=np.uint64))[0]
    n = np.arange(N, dtype=np.uint64)[:, None]
    j = np.arange(H, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        counter = ((n * np.uint64(T) + np.uint64(t)) * np.uint64(H) + j) * np.uint64(2)
        out = []
        for which, rate in ((0, z_c), (1, z_h)):
            u = (splitmix64(key + counter + np.uint64(which)) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
            out.append((u < rate).astype(dtype))
    return out
