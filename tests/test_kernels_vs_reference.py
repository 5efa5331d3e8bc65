"""Every kernel against its NumPy twin: all cells, both dtypes, with and without lengths, h0/c0, dhT/dcT."""
import numpy as np
import pytest

from cells import CELLS, IMPLS, rel_err, run

TOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("with_states", [False, True])
@pytest.mark.parametrize("with_dfinal", [False, True])
@pytest.mark.parametrize("shape", [(5, 7, 3, 4), (3, 4, 6, 130), (1, 9, 2, 70)])
def test_kernel_matches_reference(cell, dtype, with_lengths, with_states, with_dfinal, shape, rng):
    N, T, D, H = shape
    x = rng.standard_normal((N, T, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    states = cell.states(rng, N, H, dtype) if with_states else None
    lengths = rng.integers(1, T + 1, size=N) if with_lengths else None
    if with_lengths:
        lengths[0] = T
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dfinals = cell.states(rng, N, H, dtype) if with_dfinal else None
    outs_k, grads_k = run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals)
    outs_r, grads_r = run(cell, IMPLS["reference"], x, params, states, lengths, dhs, dfinals)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert k.dtype == dtype
        assert k.shape == r.shape
        assert rel_err(k, r) <= TOL[dtype]


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_padded_outputs_and_gradients_are_zero(cell, rng):
    N, T, D, H = 4, 6, 3, 5
    x = rng.standard_normal((N, T, D))
    params = cell.params(rng, D, H, np.float64)
    lengths = np.array([6, 2, 4, 1])
    dhs = rng.standard_normal((N, T, H))
    outs, grads = run(cell, IMPLS["kernel"], x, params, None, lengths, dhs)
    hs, dx = outs[0], grads[0]
    for n, L in enumerate(lengths):
        assert np.all(hs[n, L:] == 0)
        assert np.all(dx[n, L:] == 0)
        assert np.any(hs[n, :L] != 0)
        # the final state is the state after the sequence's own last step
        np.testing.assert_array_equal(outs[1][n], hs[n, L - 1])


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("impl", ["kernel", "reference"])
def test_nan_in_padded_steps_changes_nothing(cell, impl, rng):
    N, T, D, H = 3, 5, 2, 4
    x = rng.standard_normal((N, T, D))
    params = cell.params(rng, D, H, np.float64)
    lengths = np.array([5, 2, 3])
    dhs = rng.standard_normal((N, T, H))
    clean = run(cell, IMPLS[impl], x, params, None, lengths, dhs)
    x_nan, dhs_nan = x.copy(), dhs.copy()
    for n, L in enumerate(lengths):
        x_nan[n, L:] = np.nan
        dhs_nan[n, L:] = np.inf
    dirty = run(cell, IMPLS[impl], x_nan, params, None, lengths, dhs_nan)
    for a, b in zip(clean[0] + clean[1], dirty[0] + dirty[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_batch_of_zero_gives_empty_results(cell, rng):
    D, H, T = 3, 4, 5
    params = cell.params(rng, D, H, np.float32)
    x = np.zeros((0, T, D), dtype=np.float32)
    outs, grads = run(cell, IMPLS["kernel"], x, params, None, None, np.zeros((0, T, H), np.float32))
    assert outs[0].shape == (0, T, H)
    assert grads[0].shape == (0, T, D)
    for g, p in zip(grads[1:], params):
        assert g.shape == p.shape and not g.any()


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_batch_of_one_with_padding_and_outputs_do_not_alias_the_cache(cell, rng):
    """Regression (found by hypothesis): with N = 1 the output was a view of the cached states, so
    zeroing the padded outputs zeroed the final state."""
    x = rng.standard_normal((1, 3, 2))
    params = cell.params(rng, 2, 3, np.float64)
    lengths = np.array([1])
    dhs = rng.standard_normal((1, 3, 3))
    k_out, k_grad = run(cell, IMPLS["kernel"], x, params, None, lengths, dhs)
    r_out, r_grad = run(cell, IMPLS["reference"], x, params, None, lengths, dhs)
    for k, r in zip(k_out + k_grad, r_out + r_grad):
        assert rel_err(k, r) <= 1e-12
    hs, finals, cache = cell.forward(IMPLS["kernel"], x, params, None, None)
    before = cell.backward(IMPLS["kernel"], dhs, cache, None)
    hs[...] = 123.0  # editing an output in place must not change the gradients
    for f in finals:
        f[...] = 7.0
    after = cell.backward(IMPLS["kernel"], dhs, cache, None)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


class _PoisonedNumpy:
    """numpy, except that ``empty`` hands out NaN-filled memory: uninitialized output or scratch
    that a kernel fails to write then shows up as NaN."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, order="C"):
        return np.full(shape, np.nan, dtype=dtype, order=order)


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("shape", [(5, 7, 3, 4), (33, 5, 17, 130)])
def test_kernels_write_every_element_they_return(cell, with_lengths, shape, rng, monkeypatch):
    import rnnfast._core.buffers
    import rnnfast._core.driver
    import rnnfast._core.workspace

    for module in (rnnfast._core.driver, rnnfast._core.workspace, rnnfast._core.buffers):
        monkeypatch.setattr(module, "np", _PoisonedNumpy())
    monkeypatch.setattr(rnnfast._core.workspace.pool, "_free", type(rnnfast._core.workspace.pool._free)())  # no clean reuse
    N, T, D, H = shape
    x = rng.standard_normal((N, T, D))
    params = cell.params(rng, D, H, np.float64)
    lengths = rng.integers(1, T + 1, size=N) if with_lengths else None
    dhs = rng.standard_normal((N, T, H))
    outs_k, grads_k = run(cell, IMPLS["kernel"], x, params, None, lengths, dhs, None)
    outs_r, grads_r = run(cell, IMPLS["reference"], x, params, None, lengths, dhs, None)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert np.isfinite(k).all()
        assert rel_err(k, r) <= 1e-10
