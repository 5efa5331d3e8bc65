"""The layout helpers of the Python glue (``rnnfast._core.layout``, and its SIMD twins where built) against
their NumPy equivalents."""
import importlib

import numpy as np
import pytest

from rnnfast._core import dispatch as _dispatch

BUILDS = (["rnnfast._core.layout"] + (["rnnfast._core.layout_avx2"] if _dispatch.avx2_available() else [])
          + (["rnnfast._core.layout_avx512"] if _dispatch.avx512_twin_available() else []))


@pytest.fixture(params=BUILDS)
def layout(request):
    return importlib.import_module(request.param)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 7), (2, 40, 33), (0, 4, 3), (3, 0, 2), (4, 2, 0)])
def test_batch_major_into_is_swapaxes(layout, dtype, threads, shape):
    src = np.random.default_rng(0).standard_normal(shape).astype(dtype)  # (T, N, F)
    dst = np.full((shape[1], shape[0], shape[2]), np.nan, dtype=dtype)
    layout.batch_major_into(src, dst, threads)
    np.testing.assert_array_equal(dst, np.swapaxes(src, 0, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 3])
def test_count_nonfinite_steps_counts_sequences_with_a_bad_valid_step(layout, dtype, threads):
    rng = np.random.default_rng(1)
    N, T, F = 5, 9, 6
    lengths = np.array([9, 1, 4, 8, 9], dtype=np.intp)
    a = rng.standard_normal((N, T, F)).astype(dtype)
    assert layout.count_nonfinite_steps(a, lengths, threads) == 0
    a[1, 1:] = np.nan  # past sequence 1's one valid step: not counted
    a[2, 3, 5] = np.inf  # its last valid step
    a[4, 0, 0] = -np.inf
    a[4, 8, 2] = np.nan
    assert layout.count_nonfinite_steps(a, lengths, threads) == 2
    assert layout.count_nonfinite_steps(a[:0], lengths[:0], threads) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("size", [1, 15, 16, 17, (1 << 14) - 1, 1 << 14, (1 << 14) + 1, 3 * (1 << 14) + 5])
def test_count_nonfinite_finds_each_nan_and_inf(layout, dtype, threads, size):
    info = np.finfo(dtype)
    a = np.random.default_rng(size).standard_normal(size).astype(dtype)
    a[::7] = info.max
    a[1::7] = -info.max
    a[2::7] = info.smallest_subnormal
    a[3::7] = -0.0
    assert layout.count_nonfinite(a, threads) == 0
    for i in sorted({0, size // 2, size - 1}):
        for value in (np.nan, np.inf, -np.inf, -np.nan):
            b = a.copy()
            b[i] = value
            assert layout.count_nonfinite(b, threads) == 1, (i, value)
    b = a.copy()
    b[[0, size - 1]] = np.nan
    assert layout.count_nonfinite(b, threads) == (1 if size <= 1 << 14 else 2)  # blocks of 1 << 14 values
    assert layout.count_nonfinite(a[:0], threads) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 3])
def test_time_major_into_copies_the_bits_and_flags_bad_rows(layout, dtype, threads):
    rng = np.random.default_rng(2)
    N, T, D = 4, 6, 5
    src = rng.standard_normal((N, T + 2, D)).astype(dtype)[:, 1:T + 1]  # strided in T
    src[0, 0, 0] = -0.0
    lengths = np.array([6, 2, 6, 5], dtype=np.intp)
    dst = np.full((T, N, D), 7, dtype=dtype)
    assert layout.time_major_into(src, dst, lengths, threads) == 0
    valid = (np.arange(T)[:, None] < lengths[None, :])[..., None]
    expected = np.where(valid, np.swapaxes(src, 0, 1), 0)
    assert dst.tobytes() == expected.tobytes()  # -0.0 included
    src = src.copy()
    src[1, 3] = np.nan  # a padded step of sequence 1: not flagged
    src[2, 1, 4] = np.inf
    src[3, 4, :] = np.nan
    assert layout.time_major_into(src, dst, lengths, threads) == 2
    src = src[:, :, ::2]  # strided in D
    dst = np.empty((T, N, src.shape[2]), dtype=dtype)
    assert layout.time_major_into(src, dst, lengths, threads) == 2
    np.testing.assert_array_equal(dst, np.where(valid, np.swapaxes(src, 0, 1), 0))
