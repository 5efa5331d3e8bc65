"""Truncated BPTT: chunked forward equals whole-sequence forward; dhT=None stops the gradient."""
import numpy as np
import pytest

from cells import CELLS, IMPLS, run


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("impl", ["kernel", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_forward_equals_whole_sequence(cell, impl, dtype, rng):
    if cell.zoneout:
        pytest.skip("zoneout's training masks are drawn per call (a chunk takes its own seed); "
                    "test_zoneout.py checks evaluation-mode chunks")
    N, T, D, H = 3, 12, 4, 6
    x = rng.standard_normal((N, T, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    whole, _ = run(cell, IMPLS[impl], x, params, None)
    states, pieces = None, []
    for t0 in range(0, T, 5):
        outs, _ = run(cell, IMPLS[impl], x[:, t0:t0 + 5], params, states)
        pieces.append(outs[0])
        states = outs[1:]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole[0], rtol=1e-5 if dtype == np.float32 else 1e-12)
    for a, b in zip(states, whole[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_backward_without_dhT_stops_at_the_chunk(cell, rng):
    """The gradient of the second chunk's loss w.r.t. the first chunk's
    parameters is exactly what backward on the second chunk alone gives."""
    N, D, H = 2, 3, 4
    x = rng.standard_normal((N, 8, D))
    params = cell.params(rng, D, H, np.float64)
    first, _ = run(cell, IMPLS["kernel"], x[:, :4], params, None)
    dhs = rng.standard_normal((N, 4, H))
    _, g_none = run(cell, IMPLS["kernel"], x[:, 4:], params, first[1:], dhs=dhs, dfinals=None)
    zeros = [np.zeros((N, H)) for _ in first[1:]]
    _, g_zero = run(cell, IMPLS["kernel"], x[:, 4:], params, first[1:], dhs=dhs, dfinals=zeros)
    for a, b in zip(g_none, g_zero):
        np.testing.assert_array_equal(a, b)
    # and the chunk's dh0 is what would flow on if we did not truncate
    assert np.any(g_none[-1] != 0)
