"""Bitwise determinism across thread counts, and memory layouts that must not change the bits."""
import numpy as np
import pytest

import rnnfast
from cells import CELLS, IMPLS, problem, run


@pytest.mark.parametrize("cell", CELLS, ids=str)
# (64, .., 100): 4 row blocks, owned whole by 2 threads, shared per step by 3;
# (48, .., 300): 3 row blocks, the other way round (the plan's "owned_rows" schedule).
@pytest.mark.parametrize("shape", [(7, 5, 9, 70), (131, 3, 20, 300), (1, 4, 8, 260), (64, 4, 10, 100),
                                   (48, 3, 5, 300)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_equal_for_1_2_3_threads(cell, shape, dtype, rng):
    if not rnnfast.config_info()["openmp"]:
        pytest.skip("serial build")
    x, params, states, lengths, dhs, dfinals = problem(cell, rng, *shape, dtype=dtype)
    N, T, D, H = shape
    results = []
    for nt in (1, 2, 3):
        outs, grads = run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals, num_threads=nt)
        results.append(outs + grads)
        # small calls run on one thread by default: every schedule, named, on nt threads, each thread visiting
        # its tiles of a step in either order
        for schedule in ("serial", "owned_rows", "shared_tiles"):
            for order in ("row_major", "unit_major"):
                plan = cell.plan(N, T, H, dtype, nt, schedule=schedule, tile_order=order)
                outs, grads = run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals, plan=plan)
                results.append(outs + grads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def _variants(a):
    """The same values as C-contiguous, Fortran-order, strided and read-only arrays."""
    f = np.asfortranarray(a)
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    strided = big[tuple(slice(None, None, 2) for _ in a.shape)]
    strided[...] = a
    ro = a.copy()
    ro.flags.writeable = False
    return {"fortran": f, "strided": strided, "readonly": ro}


@pytest.mark.parametrize("cell", CELLS, ids=str)
@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_layouts_give_the_same_bits_and_inputs_are_not_modified(cell, layout, rng):
    x, params, states, lengths, dhs, dfinals = problem(cell, rng, 5, 4, 3, 6, dtype=np.float64)
    expected = run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals)
    flat = [x, *params, *states, dhs, *dfinals]
    saved = [a.copy() for a in flat]
    conv = [_variants(a)[layout] for a in flat]
    x2 = conv[0]
    p2 = conv[1:1 + len(params)]
    s2 = conv[1 + len(params):1 + len(params) + len(states)]
    d2 = conv[1 + len(params) + len(states)]
    f2 = conv[2 + len(params) + len(states):]
    got = run(cell, IMPLS["kernel"], x2, p2, s2, lengths, d2, f2)
    for a, b in zip(expected[0] + expected[1], got[0] + got[1]):
        np.testing.assert_array_equal(a, b)
        assert a.flags.c_contiguous
    for before, after in zip(saved, conv):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_inputs_never_modified(cell, rng):
    x, params, states, lengths, dhs, dfinals = problem(cell, rng, 4, 5, 3, 6, dtype=np.float64)
    flat = [x, *params, *states, lengths, dhs, *dfinals]
    saved = [a.copy() for a in flat]
    run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals)
    for a, b in zip(saved, flat):
        np.testing.assert_array_equal(a, b)


def test_env_var_sets_thread_count(monkeypatch):
    from rnnfast._core.threads import resolve_num_threads

    monkeypatch.setenv("RNNFAST_NUM_THREADS", "3")
    expected = 3 if rnnfast.config_info()["openmp"] else 1
    assert resolve_num_threads(None) == expected
    assert resolve_num_threads(1) == 1
    monkeypatch.setenv("RNNFAST_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="RNNFAST_NUM_THREADS"):
        resolve_num_threads(None)


def test_blas_thread_count_restored_after_a_call(rng):
    from threadpoolctl import threadpool_info

    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    cell = CELLS[0]
    x, params, states, lengths, dhs, dfinals = problem(cell, rng, 4, 3, 3, 5)
    run(cell, IMPLS["kernel"], x, params, states, lengths, dhs, dfinals)
    after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert before == after


@pytest.mark.parametrize("m, n", [(1120, 256), (2240, 512), (1120, 1024), (4480, 4096), (560, 128),
                                  (129, 129), (5, 700), (3, 3000), (1, 1), (100, 100), (1537, 9)])
def test_all_step_gemm_tiles_cover_the_result_evenly(m, n):
    # The tiled all-step GEMMs: tiles cover the result exactly, are near-equal, and come in an even
    # number when there are several (3 tiles on 2 threads left one thread idle a third of the time).
    from rnnfast._core import blasbench as _blasbench

    tiles_m, tiles_n, tm, tn = _blasbench.output_grid(m, n)
    assert (tiles_m - 1) * tm < m <= tiles_m * tm
    assert (tiles_n - 1) * tn < n <= tiles_n * tn
    assert m - (tiles_m - 1) * tm > tm // 2 or tiles_m == 1 or tm <= 2
    if tiles_m * tiles_n > 1 and min(m, n) >= 64:
        assert tiles_m * tiles_n % 2 == 0
