"""The BLAS path's step tiles where they are not the shape's rule (``plan.step_tiling``): the float64 vanilla RNN
at 256 < H <= 512 takes 32 x 128 tiles (``plan.FLOAT64_RNN_ROWS``, ``FLOAT64_RNN_UNITS``), where OpenBLAS's dgemm
ran the 64-column tiles slowly, on builds without the micro-kernel (with it, those steps take the micro-kernel).  Tiles of a shape's own: the bits still do not depend on the thread count."""
import numpy as np
import pytest

from rnnfast._core.plan import FLOAT64_RNN_ROWS, FLOAT64_RNN_UNITS, StepPlan, step_tiling

from cells import CELLS, IMPLS, problem, rel_err, run

RNN_CELLS = [c for c in CELLS if c.gates == 1]


def tiles(gates, N, H, dtype, nt=2):
    plan = StepPlan.choose(gates, N, 35, H, dtype, nt)
    return plan.rows, plan.units


@pytest.fixture
def without_microkernel(monkeypatch):
    """Plans as a build without the micro-kernel makes them (the baseline ISA, other CPUs): with it, the float64
    steps at these sizes take the micro-kernel instead of BLAS tiles."""
    import rnnfast._core.plan as plan_module
    monkeypatch.setitem(plan_module.CONSTANTS, "microkernel", 0)
    plan_module._chosen.cache_clear()  # plans are kept per shape
    yield
    monkeypatch.undo()
    plan_module._chosen.cache_clear()  # no plan made for the other build stays for the next tests


def test_float64_rnn_takes_32_by_128_tiles_from_n32_at_h_over_256_to_512(without_microkernel):
    wide = (FLOAT64_RNN_ROWS, FLOAT64_RNN_UNITS)
    for N in (32, 64, 128):
        for H in (272, 384, 512):
            for nt in (1, 2, 16):  # the tiles are the shape's: never the thread count's
                assert tiles(1, N, H, np.float64, nt) == wide, (N, H, nt)
    assert "dgemm" in StepPlan.choose(1, 64, 35, 512, np.float64).why("tiles")
    # elsewhere the shape's rule
    assert tiles(1, 16, 512, np.float64) == step_tiling(16, 512)  # N < 32
    assert tiles(1, 64, 256, np.float64) == step_tiling(64, 256)  # H = 256
    assert tiles(1, 64, 1024, np.float64) == step_tiling(64, 1024)
    assert tiles(4, 64, 512, np.float64) == step_tiling(64, 512)  # the LSTM's and GRU's tiles are 256, 192 wide
    assert tiles(3, 64, 512, np.float64) == step_tiling(64, 512)
    # a plan that names its tiles gets them
    assert tiles(1, 64, 512, np.float64) != (16, 64)
    assert StepPlan.choose(1, 64, 35, 512, np.float64, 2, rows=16, units=64).rows == 16


@pytest.mark.parametrize("cell", RNN_CELLS, ids=str)
def test_float64_rnn_wide_tiles_match_reference_and_do_not_depend_on_threads(cell, rng, without_microkernel):
    N, T, D, H = 40, 4, 6, 272  # two row blocks, the second partial; unit blocks of 128, 128 and 16
    assert cell.plan(N, T, H, np.float64, 2).units == FLOAT64_RNN_UNITS
    args = problem(cell, rng, N, T, D, H, np.float64)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    first = None
    for nt in (1, 2, 3):
        outs, grads = run(cell, IMPLS["kernel"], *args, num_threads=nt)
        for k, r in zip(outs + grads, outs_r + grads_r):
            assert rel_err(k, r) <= 1e-12
        if first is None:
            first = outs + grads
        for a, b in zip(first, outs + grads):
            np.testing.assert_array_equal(a, b)
