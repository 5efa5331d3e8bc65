"""The BLAS path's blocked copy of the forward step weights (``step_tiles.block_step_weights``: each unit
block's gate columns side by side; the plan's ``step_weights="blocked"``).

The plan takes it by itself only where a gate block's rows are short runs far apart (an LSTM at H=512);
here the tests name it, so that small shapes exercise it: several unit blocks, a partial last block,
lengths, states, both dtypes and thread counts.  The copy keeps every product's shape, so the results must
be the same bits as reading the weights as given.
"""
import numpy as np
import pytest

from rnnfast._core.plan import CONSTANTS, StepPlan

from cells import CELLS, IMPLS, problem, rel_err, run

CELL_IDS = [c.name for c in CELLS]
# The BLAS path's rules beside OpenBLAS's small-matrix kernels, whatever this CPU's OpenBLAS runs (conftest)
pytestmark = pytest.mark.usefixtures("small_matrix_blas")


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 3, 4, 80), (33, 2, 6, 144), (3, 2, 5, 300)])
def test_blocked_copy_gives_the_same_bits_as_the_weights_as_given(cell, dtype, shape, rng):
    N, T, D, H = shape
    args = problem(cell, rng, N, T, D, H, dtype)
    blocked = cell.plan(N, T, H, dtype, step_weights="blocked")
    outs_c, grads_c = run(cell, IMPLS["kernel"], *args, plan=blocked)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_c + grads_c, outs_r + grads_r):
        assert rel_err(k, r) <= (1e-4 if dtype == np.float32 else 1e-10)
    outs_g, grads_g = run(cell, IMPLS["kernel"], *args, plan=blocked.replace(step_weights="as_given"))
    for c, g in zip(outs_c + grads_c, outs_g + grads_g):
        np.testing.assert_array_equal(c, g)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_blocked_copy_bits_do_not_depend_on_threads(cell, rng):
    args = problem(cell, rng, 35, 3, 4, 144, np.float64)
    first = run(cell, IMPLS["kernel"], *args, plan=cell.plan(35, 3, 144, np.float64, 1, step_weights="blocked"))
    for nt in (2, 3):
        again = run(cell, IMPLS["kernel"], *args, plan=cell.plan(35, 3, 144, np.float64, nt, step_weights="blocked"))
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


def uses_copy(N, H, gates, dtype, T=35):
    return StepPlan.choose(gates, N, T, H, dtype).step_weights == "blocked"


def test_copy_only_where_rows_are_short_runs_far_apart():
    assert uses_copy(8, 512, 4, np.float32)  # runs of 256 B, 8 KiB apart (from N = 16: the micro-kernel)
    assert uses_copy(4, 512, 4, np.float64)  # (from N = 16, float64 from N = 8, the micro-kernel)
    assert not uses_copy(32, 256, 4, np.float32)  # 4 KiB apart
    assert not uses_copy(64, 512, 3, np.float32)  # 6 KiB apart
    assert not uses_copy(32, 1024, 1, np.float64)  # runs of 1 KiB
    assert not uses_copy(8, 64, 4, np.float32)  # one unit block
    assert not uses_copy(8, 512, 4, np.float32, T=1)  # the copy would serve a single step
    with pytest.raises(ValueError, match="more than one unit block"):
        StepPlan.choose(4, 8, 3, 64, np.float32, step_weights="blocked")


def test_tiles_visited_unit_block_first_on_blas_tiles_only():
    def order(N, H, gates, dtype, **force):
        return StepPlan.choose(gates, N, 35, H, dtype, 2, **force).tile_order

    assert order(64, 512, 4, np.float64, step_weights="blocked") == "unit_major"  # 16 x 64 BLAS tiles: 4 x 8
    assert order(64, 256, 1, np.float32) == "unit_major"  # the RNN at H = 256 (BLAS on every machine)
    assert order(32, 128, 1, np.float64) == "unit_major"
    assert order(128, 1024, 4, np.float32) == "row_major"  # one row block (128 rows) on the micro-kernel
    assert order(8, 64, 4, np.float32) == "row_major"  # one unit block
    if CONSTANTS["microkernel"]:
        assert order(32, 256, 4, np.float32) == "row_major"  # the micro-kernel: a row block's slivers, once
    assert order(64, 512, 4, np.float32, tile_order="row_major") == "row_major"
    with pytest.raises(ValueError, match="tile_order must be one of row_major, unit_major; got 'columns'"):
        order(64, 512, 4, np.float32, tile_order="columns")
