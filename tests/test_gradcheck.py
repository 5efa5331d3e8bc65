"""Central finite differences in float64 for every input and parameter of every cell."""
import numpy as np
import pytest

from cells import CELLS, IMPLS, run


def numerical_gradient(f, a, eps=1e-6):
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def assert_layer_gradients_and_steps(layer, x, R):
    """A time layer's gradients (every parameter) against central differences of ``sum(forward(x) * R)``, then
    its ``step`` token by token against its inference forward pass."""
    def loss():
        return float(np.sum(layer.forward(x) * R))

    loss()
    layer.backward(R)
    for p, g in zip(layer.params, [g.copy() for g in layer.grads]):
        np.testing.assert_allclose(g, numerical_gradient(loss, p), rtol=1e-5, atol=1e-8)
    hs = layer.forward(x, need_grad=False)
    state = None
    for t in range(x.shape[1]):
        h, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(h, hs[:, t], rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gradients_match_finite_differences(cell, impl, with_lengths, rng):
    N, T, D, H = 3, 4, 3, 3
    x = rng.standard_normal((N, T, D))
    params = cell.params(rng, D, H, np.float64, scale=1.0)
    states = cell.states(rng, N, H, np.float64)
    lengths = np.array([4, 2, 3]) if with_lengths else None
    # loss = <hs, R> + <finals, S>: its gradients are R and S
    R = rng.standard_normal((N, T, H))
    S = cell.states(rng, N, H, np.float64)

    def loss():
        outs, _ = run(cell, IMPLS[impl], x, params, states, lengths)
        return sum(float(np.sum(o * w)) for o, w in zip(outs, [R, *S]))

    _, grads = run(cell, IMPLS[impl], x, params, states, lengths, R, S)
    inputs = [x, *params, *states]
    assert len(grads) == len(inputs)
    for a, g in zip(inputs, grads):
        num = numerical_gradient(loss, a)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)
