"""Saturation and long sequences: huge pre-activations and 10,000 steps stay finite."""
import numpy as np
import pytest

from cells import CELLS, IMPLS, run

SATURATING = [c for c in CELLS if c.name != "rnn_relu"]  # ReLU is unbounded by design


def _all_finite(arrays):
    return all(np.isfinite(a).all() for a in arrays)


@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("cell", SATURATING, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e3, 1e10, 1e30, "max"])
def test_saturated_gates_give_finite_outputs_and_gradients(impl, cell, dtype, scale):
    rng = np.random.default_rng(0)
    N, T, H = 3, 4, 5
    if scale == "max":  # the float limit itself: one input feature, weights of +-1
        D = 1
        x = rng.choice([-1.0, 1.0], size=(N, T, D)) * np.finfo(dtype).max
        params = cell.params(rng, D, H, np.float64)
        params[0] = rng.choice([-1.0, 1.0], size=params[0].shape)
    else:
        D = 4
        x = rng.choice([-1.0, 1.0], size=(N, T, D)) * scale
        params = cell.params(rng, D, H, np.float64)
        params[1] = params[1] * 10  # recurrent pre-activations large too
    x = x.astype(dtype)
    params = [p.astype(dtype) for p in params]
    states = cell.states(rng, N, H, dtype)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    outs, grads = run(cell, IMPLS[impl], x, params, states, None, dhs, cell.states(rng, N, H, dtype))
    assert _all_finite(outs), "forward overflowed"
    assert _all_finite(grads), "backward overflowed"
    assert np.abs(outs[0]).max() <= 1.0  # bounded cells stay bounded


@pytest.mark.parametrize("cell", SATURATING, ids=str)
def test_ten_thousand_steps_with_spectral_radius_above_one(cell):
    rng = np.random.default_rng(1)
    N, T, D, H = 2, 10_000, 3, 16
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    params = cell.params(rng, D, H, np.float32)
    Wh = params[1].astype(np.float64)
    rho = max(np.abs(np.linalg.eigvals(Wh[:, k * H:(k + 1) * H])).max() for k in range(cell.gates))
    params[1] = (params[1] * (3.0 / rho)).astype(np.float32)  # largest gate block: spectral radius 3
    outs, _ = run(cell, IMPLS["kernel"], x, params, cell.states(rng, N, H, np.float32))
    assert _all_finite(outs)
