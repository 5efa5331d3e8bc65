"""The layout helpers of the Python glue (``rnnfast._core.layout``) against their NumPy equivalents."""
import numpy as np
import pytest

from rnnfast._core import layout as _layout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 7), (2, 40, 33), (0, 4, 3), (3, 0, 2), (4, 2, 0)])
def test_batch_major_into_is_swapaxes(dtype, threads, shape):
    src = np.random.default_rng(0).standard_normal(shape).astype(dtype)  # (T, N, F)
    dst = np.full((shape[1], shape[0], shape[2]), np.nan, dtype=dtype)
    _layout.batch_major_into(src, dst, threads)
    np.testing.assert_array_equal(dst, np.swapaxes(src, 0, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 3])
def test_count_nonfinite_steps_counts_valid_steps_only(dtype, threads):
    rng = np.random.default_rng(1)
    N, T, F = 5, 9, 6
    lengths = np.array([9, 1, 4, 8, 9], dtype=np.intp)
    a = rng.standard_normal((N, T, F)).astype(dtype)
    assert _layout.count_nonfinite_steps(a, lengths, threads) == 0
    a[rng.random((N, T, F)) < 0.2] = np.nan
    a[rng.random((N, T, F)) < 0.1] = -np.inf
    valid = np.arange(T)[None, :] < lengths[:, None]
    expected = int((~np.isfinite(a[valid])).sum())
    assert expected > 0
    assert _layout.count_nonfinite_steps(a, lengths, threads) == expected
    assert _layout.count_nonfinite_steps(a[:0], lengths[:0], threads) == 0
