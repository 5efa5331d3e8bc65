"""The step products on the packed micro-kernel (``src/packed_gemm.h``; float64: ``src/packed_gemm_f64.h``) on
AVX2 builds, in every cell (the plan's ``step_weights="microkernel"``).

The plan takes it by itself for tiles too large for OpenBLAS's small-matrix path (H of ~1024) and for the LSTM
and GRU at H = 256-512 from N = 32 on (the LSTM from N = 16) in calls of N * T >= 512 rows; here the
tests name it in the plan, so that small shapes exercise it: partial 6-row slivers, a partial last unit
block, several k-blocks (K > 256), lengths, states and final-state gradients.  The GRU's products take runs
of gate panels (forward) and K-slices of the transposed rows (backward: reset-before's n-part alone,
written over its output rather than added).
"""
import numpy as np
import pytest

from rnnfast._core import config, dispatch
from rnnfast._core.plan import CONSTANTS, StepPlan

from cells import CELLS, IMPLS, rel_err, run

CELL_IDS = [c.name for c in CELLS]
pytestmark = [pytest.mark.skipif(not CONSTANTS["microkernel"], reason="this build/CPU has no micro-kernel (baseline ISA)"),
              # the plan's rules beside OpenBLAS's small-matrix kernels, whatever this CPU's OpenBLAS runs (conftest)
              pytest.mark.usefixtures("small_matrix_blas")]


DTYPES = [np.float32, np.float64]
# Against the NumPy reference, and against the BLAS steps (the same sums in another order)
TOL_REFERENCE = {np.float32: 1e-4, np.float64: 1e-12}
TOL_BLAS = {np.float32: 1e-5, np.float64: 1e-12}


def problem(cell, rng, N, T, D, H, with_extras, dtype=np.float32):
    x = rng.standard_normal((N, T, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    states = cell.states(rng, N, H, dtype) if with_extras else None
    lengths = None
    if with_extras:
        lengths = rng.integers(1, T + 1, size=N)
        lengths[0] = T
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dfinals = cell.states(rng, N, H, dtype) if with_extras else None
    return x, params, states, lengths, dhs, dfinals


def assert_bits_as_on_one_thread(cell, args, thread_counts):
    """The kernels' outputs and gradients on each of ``thread_counts`` threads are those of one thread."""
    first = run(cell, IMPLS["kernel"], *args, num_threads=1)
    for nt in thread_counts:
        again = run(cell, IMPLS["kernel"], *args, num_threads=nt)
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


def microkernel_plan(cell, N, T, H, num_threads=None, dtype=np.float32):
    return cell.plan(N, T, H, dtype, num_threads, step_weights="microkernel")


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("with_extras", [False, True])
@pytest.mark.parametrize("shape", [(7, 4, 5, 16), (13, 3, 9, 48), (20, 3, 6, 80), (9, 2, 4, 288)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_microkernel_steps_match_reference(cell, with_extras, shape, dtype, rng):
    N, T, D, H = shape
    args = problem(cell, rng, N, T, D, H, with_extras, dtype)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args, plan=microkernel_plan(cell, N, T, H, dtype=dtype))
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert k.dtype == dtype and k.shape == r.shape
        assert rel_err(k, r) <= TOL_REFERENCE[dtype]


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(13, 3, 9, 48), (20, 3, 6, 80), (9, 2, 4, 288)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_microkernel_steps_match_blas_steps(cell, shape, dtype, rng):
    N, T, D, H = shape
    args = problem(cell, rng, *shape, with_extras=True, dtype=dtype)
    outs_p, grads_p = run(cell, IMPLS["kernel"], *args, plan=microkernel_plan(cell, N, T, H, dtype=dtype))
    blas = cell.plan(N, T, H, dtype, step_weights="as_given")
    outs_b, grads_b = run(cell, IMPLS["kernel"], *args, plan=blas)
    for p, b in zip(outs_p + grads_p, outs_b + grads_b):
        assert rel_err(p, b) <= TOL_BLAS[dtype]


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(20, 3, 6, 80), (35, 3, 4, 32), (40, 3, 4, 320)])
@pytest.mark.parametrize("schedule", ["owned_rows", "shared_tiles"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_microkernel_steps_bits_do_not_depend_on_threads(cell, shape, schedule, dtype, rng):
    N, T, D, H = shape
    args = problem(cell, rng, *shape, with_extras=True, dtype=dtype)
    first = run(cell, IMPLS["kernel"], *args, plan=microkernel_plan(cell, N, T, H, 1, dtype))
    for nt in (2, 3):
        plan = cell.plan(N, T, H, dtype, nt, step_weights="microkernel", schedule=schedule)
        again = run(cell, IMPLS["kernel"], *args, plan=plan)
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_hidden_size_takes_the_microkernel_by_default(cell, dtype, rng):
    N, T, D, H = 8, 2, 5, 1024
    assert cell.plan(N, T, H, dtype).step_weights == "microkernel"
    args = problem(cell, rng, N, T, D, H, with_extras=True, dtype=dtype)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert rel_err(k, r) <= TOL_REFERENCE[dtype]


def test_small_tiles_keep_the_blas_path():
    assert StepPlan.choose(4, 8, 35, 512, np.float32).step_weights != "microkernel"  # OpenBLAS's small path
    assert StepPlan.choose(4, 32, 35, 128, np.float32).step_weights != "microkernel"
    assert StepPlan.choose(1, 64, 35, 256, np.float32).step_weights != "microkernel"  # the RNN
    for dtype in DTYPES:
        assert StepPlan.choose(4, 1, 35, 1024, dtype).step_weights != "microkernel"
        assert StepPlan.choose(4, 8, 35, 1004, dtype).step_weights != "microkernel"  # not whole panels


def test_without_small_matrix_kernels_the_steps_take_the_microkernel(monkeypatch):
    # OpenBLAS's Haswell and Zen cores pack every small product: there the micro-kernel ran every step faster
    import rnnfast._core.plan as plan_module
    monkeypatch.setattr(plan_module, "blas_has_small_matrix_path", lambda: False)
    plan_module._chosen.cache_clear()
    for gates, N, T, H, nt in [(1, 64, 35, 256, 1), (1, 32, 35, 256, 2), (3, 16, 35, 256, 2), (4, 8, 35, 512, 1),
                               (4, 32, 35, 128, 2), (1, 32, 1, 16, 1), (4, 2, 256, 256, 1), (3, 1, 35, 1024, 2)]:
        plan = StepPlan.choose(gates, N, T, H, np.float32, nt)
        assert plan.step_weights == "microkernel", (gates, N, T, H, nt)
        assert "no small-matrix kernels" in plan.why("step_weights"), (gates, N, T, H, nt)
    assert StepPlan.choose(4, 32, 35, 128, np.float64).step_weights == "microkernel"  # float64 too
    assert StepPlan.choose(1, 8, 35, 24, np.float64).step_weights == "microkernel"  # 8-column float64 panels
    for dtype in DTYPES:
        assert StepPlan.choose(4, 10, 5, 100, dtype).step_weights != "microkernel"  # not whole panels


def test_the_kernels_blas_is_asked_once_whether_it_has_small_matrix_kernels():
    from rnnfast._core import threads
    from threadpoolctl import threadpool_info
    libs = [i for i in threadpool_info() if i.get("internal_api") == "openblas" and "scipy" in i["filepath"]]
    expected = not libs or any(str(i.get("architecture")).lower() in threads.SMALL_MATRIX_CORES for i in libs)
    assert threads.blas_has_small_matrix_path() == expected
    assert threads.blas_has_small_matrix_path.cache_info().currsize == 1


def test_float64_steps_take_the_microkernel_from_smaller_shapes():
    def takes(gates, N, T, H):
        return StepPlan.choose(gates, N, T, H, np.float64).step_weights == "microkernel"

    assert takes(4, 8, 35, 512) and takes(4, 8, 32, 256) and takes(3, 16, 35, 256) and takes(1, 64, 35, 256)
    assert not takes(4, 4, 35, 512)  # N < 8
    assert not takes(4, 64, 1, 256)  # N * T = 64 rows: a single step
    assert not takes(4, 32, 35, 128)  # H < 256
    assert not takes(4, 10, 5, 100)  # the textbook's size
    assert "dgemm" in StepPlan.choose(4, 8, 35, 256, np.float64).why("step_weights")
    assert "small-matrix" in StepPlan.choose(4, 8, 35, 1024, np.float32).why("step_weights")


def test_the_rnn_steps_at_h512_take_the_microkernel_where_a_core_has_two_512_bit_fma_units(monkeypatch):
    import rnnfast._core.plan as plan_module
    # the machine decides, never the process's choice of kernels (RNNFAST_ISA, RNNFAST_SLIVER_ROWS)
    assert plan_module.TWO_FMA_UNITS == (config.cpu_is_intel() and dispatch.avx512_available())
    for two_units in (True, False):
        monkeypatch.setattr(plan_module, "TWO_FMA_UNITS", two_units)
        plan_module._chosen.cache_clear()  # plans are kept per shape
        for N, nt, rows in [(64, 1, 64), (128, 2, 32 if two_units else 16)]:
            plan = StepPlan.choose(1, N, 35, 512, np.float32, nt)
            if two_units:
                assert (plan.step_weights, plan.rows, plan.units) == ("microkernel", rows, 256), (N, nt)
            else:
                assert plan.step_weights != "microkernel"
        assert StepPlan.choose(1, 64, 35, 256, np.float32).step_weights != "microkernel"  # H = 256: level
        assert StepPlan.choose(1, 16, 35, 512, np.float32).step_weights != "microkernel"  # N < 32
    plan_module._chosen.cache_clear()


@pytest.mark.parametrize("cell", [c for c in CELLS if c.gates == 1], ids=str)
def test_rnn_microkernel_steps_at_h512_match_reference(cell, rng):
    N, T, D, H = 32, 16, 24, 512
    args = problem(cell, rng, N, T, D, H, with_extras=True)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args, plan=microkernel_plan(cell, N, T, H))
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert rel_err(k, r) <= 1e-4
    assert_bits_as_on_one_thread(cell, args, (2, 3))


@pytest.mark.parametrize("gates", [4, 3])
def test_lstm_and_gru_steps_at_h256_to_512_from_n32_take_the_microkernel_on_wide_unit_blocks(gates, monkeypatch):
    import rnnfast._core.plan as plan_module
    monkeypatch.setattr(plan_module, "TWO_FMA_UNITS", False)  # the rows on such cores: the test below
    plan_module._chosen.cache_clear()
    lstm_from_16 = [(16, 256, 1, 16, 256), (16, 256, 2, 8, 256)] if gates == 4 else []
    for N, H, nt, rows, units in [(32, 256, 1, 32, 256), (32, 256, 2, 16, 256), (64, 256, 2, 16, 256),
                                  (32, 256, 16, 16, 32), (64, 512, 1, 64, 256), (128, 512, 2, 16, 256),
                                  (64, 512, 16, 16, 128), (32, 384, 2, 16, 128)] + lstm_from_16:
        plan = StepPlan.choose(gates, N, 35, H, np.float32, nt)
        assert (plan.step_weights, plan.rows, plan.units) == ("microkernel", rows, units), (N, H, nt)
        assert "whole slivers" in plan.why("step_weights")
    for nt in (1, 2):  # float64 by the same rule, on its own kernels
        f32, f64 = (StepPlan.choose(gates, 32, 35, 256, dtype, nt) for dtype in DTYPES)
        assert (f64.step_weights, f64.rows, f64.units) == (f32.step_weights, f32.rows, f32.units)
    # The panels pay back over the call's steps, from N * T = 512 rows: shorter calls keep BLAS
    assert StepPlan.choose(4, 16, 31, 256, np.float32, 2).step_weights != "microkernel"
    assert StepPlan.choose(4, 16, 32, 256, np.float32, 2).step_weights == "microkernel"
    assert StepPlan.choose(3, 16, 35, 256, np.float32, 2).step_weights != "microkernel"  # the GRU from N = 32
    assert StepPlan.choose(gates, 32, 15, 256, np.float32, 2).step_weights != "microkernel"
    assert StepPlan.choose(gates, 32, 16, 256, np.float32, 2).step_weights == "microkernel"
    plan_module._chosen.cache_clear()


def test_cores_with_two_512_bit_fma_units_take_32_row_blocks_where_they_share_out_evenly(monkeypatch):
    import rnnfast._core.plan as plan_module
    for two_units in (True, False):
        monkeypatch.setattr(plan_module, "TWO_FMA_UNITS", two_units)
        plan_module._chosen.cache_clear()
        for gates, N, H, nt, rows in [(4, 64, 512, 2, 32), (4, 128, 512, 2, 32), (3, 64, 256, 2, 32),
                                      (1, 128, 512, 2, 32), (4, 128, 256, 4, 32),
                                      (4, 32, 256, 2, 16), (4, 96, 256, 2, 16), (4, 64, 512, 16, 16)]:
            plan = StepPlan.choose(gates, N, 35, H, np.float32, nt)
            expected = rows if two_units else 16
            assert plan.rows == expected, (gates, N, H, nt)
            assert (plan.step_weights == "microkernel") == (gates > 1 or two_units)  # the RNN's rule above
            if expected == 32:
                assert plan.schedule == "owned_rows" and "12-row slivers fill them" in plan.why("tiles")
        # one thread takes all its rows in one block; a ragged batch (each thread's own rows in blocks of up to
        # 32) and H = 1024 keep their own tiles
        assert StepPlan.choose(4, 64, 35, 512, np.float32, 1).rows == 64
        ragged = StepPlan.choose(4, 64, 35, 512, np.float32, 2, ragged=True)
        assert (ragged.rows, ragged.schedule) == (32, "owned_rows") and "own rows" in ragged.why("tiles")
        assert StepPlan.choose(4, 128, 35, 1024, np.float32, 2).rows == 64  # one block a thread (the test below)
    plan_module._chosen.cache_clear()


def test_lstm_and_gru_above_h512_take_one_whole_width_row_block_a_thread_where_the_batch_splits_so():
    for gates in (4, 3):
        for N, H, nt, tiles in [(128, 1024, 1, (128, 1024, "serial")), (128, 1024, 2, (64, 1024, "owned_rows")),
                                (64, 1024, 2, (32, 1024, "owned_rows")), (256, 1024, 2, (128, 1024, "owned_rows")),
                                (128, 768, 4, (32, 768, "owned_rows")), (64, 1024, 1, (64, 1024, "serial"))]:
            plan = StepPlan.choose(gates, N, 35, H, np.float32, nt)
            assert (plan.rows, plan.units, plan.schedule, plan.step_weights) == tiles + ("microkernel",), (N, H, nt)
            assert "one a thread" in plan.why("tiles")
        # the unit split stands below 32 rows a thread, above 1024 units, for an uneven split, or a ragged batch
        # with fewer rows a thread
        for N, H, nt, ragged in [(32, 1024, 2, False), (128, 1024, 16, False), (128, 2048, 2, False),
                                 (96, 1024, 4, False), (256, 1024, 1, False), (96, 1024, 4, True)]:
            plan = StepPlan.choose(gates, N, 35, H, np.float32, nt, ragged=ragged)
            assert plan.units < H and "one a thread" not in plan.why("tiles"), (N, H, nt, ragged)
        # a ragged batch with 32 rows a thread or more: each thread its own rows, whole width, cut by their cost
        plan = StepPlan.choose(gates, 128, 35, 1024, np.float32, 2, ragged=True)
        assert (plan.rows, plan.units, plan.schedule) == (32, 1024, "owned_rows")
    assert StepPlan.choose(1, 128, 35, 1024, np.float32, 2).units == 128  # the RNN: level, its own tiles


@pytest.mark.parametrize("cell", [c for c in CELLS if c.gates >= 3], ids=str)
def test_whole_width_row_blocks_make_the_bits_of_unit_blocks(cell, rng):
    N, T, D, H = 64, 3, 5, 640
    x, params, states, _, dhs, dfinals = problem(cell, rng, N, T, D, H, with_extras=True)
    args = (x, params, states, None, dhs, dfinals)  # no lengths: a ragged batch keeps the unit split
    assert cell.plan(N, T, H, np.float32, 2).units == H
    first = run(cell, IMPLS["kernel"], *args, num_threads=1)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(first[0] + first[1], outs_r + grads_r):
        assert rel_err(k, r) <= 1e-4
    unit_blocks = cell.plan(N, T, H, np.float32, 2, rows=64, units=128, step_weights="microkernel")
    for again in [run(cell, IMPLS["kernel"], *args, num_threads=nt) for nt in (2, 3)] + [
            run(cell, IMPLS["kernel"], *args, plan=unit_blocks)]:
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_32_row_blocks_make_the_bits_of_16_row_ones(cell, rng):
    N, T, D, H = 64, 3, 24, 256
    plans = [cell.plan(N, T, H, np.float32, 2, step_weights="microkernel", rows=rows, units=256, schedule="owned_rows")
             for rows in (16, 32)]
    args = problem(cell, rng, N, T, D, H, with_extras=True)
    (outs_a, grads_a), (outs_b, grads_b) = (run(cell, IMPLS["kernel"], *args, plan=p) for p in plans)
    for a, b in zip(outs_a + grads_a, outs_b + grads_b):
        np.testing.assert_array_equal(a, b)


def test_one_thread_on_the_microkernel_takes_its_rows_in_one_block():
    # A step's weights are then read once for all rows; the block stops at SERIAL_MICROKERNEL_ROWS.
    for N, rows in [(32, 32), (64, 64), (128, 128), (200, 128)]:
        plan = StepPlan.choose(4, N, 35, 256, np.float32, 1)
        assert (plan.schedule, plan.step_weights, plan.rows) == ("serial", "microkernel", rows), N
        assert "once for all its rows" in plan.why("tiles")
    forced = StepPlan.choose(4, 64, 35, 256, np.float32, 1, rows=16, units=256)
    assert forced.rows == 16
    assert StepPlan.choose(4, 16, 35, 128, np.float32, 1).rows == 8  # BLAS tiles: the shape's own


@pytest.mark.parametrize("cell", [c for c in CELLS if c.gates >= 3], ids=lambda c: c.name)
def test_ragged_batches_cut_the_units_for_the_threads_of_one_row_block(cell, rng):
    # The last steps of a ragged batch run only the longest sequences' rows, one row block: where the threads share
    # each step's tiles, its unit blocks give every thread a tile (with 16 rows a thread or more, each thread owns
    # its rows instead).  The cut follows the thread count; the bits do not.
    N, T, D, H = 32, 4, 8, 256
    ragged = {nt: StepPlan.choose(cell.gates, N, 35, H, np.float32, nt, ragged=True) for nt in (1, 2, 4)}
    assert [ragged[nt].units for nt in (1, 2, 4)] == [256, 256, 64]
    assert ragged[2].schedule == "owned_rows" and ragged[4].schedule == "shared_tiles"
    assert "in one row block (ragged)" in ragged[4].why("tiles")
    assert StepPlan.choose(cell.gates, N, 35, H, np.float32, 2).units == 256  # dense: two row blocks, two threads
    args = problem(cell, rng, N, T, D, H, with_extras=True)
    assert_bits_as_on_one_thread(cell, args, (2, 4))


def test_a_plan_refuses_a_path_it_cannot_take():
    with pytest.raises(ValueError, match="needs float32 or float64"):
        StepPlan.choose(4, 8, 3, 64, np.float16, step_weights="microkernel")
    with pytest.raises(ValueError, match="multiples of 8"):  # float64 panels: 8 columns
        StepPlan.choose(4, 8, 3, 36, np.float64, step_weights="microkernel")
    with pytest.raises(ValueError, match="multiples of 16"):
        StepPlan.choose(4, 8, 3, 40, np.float32, step_weights="microkernel")


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_microkernel_tiles_follow_the_thread_count_without_changing_bits(cell, rng):
    # On the micro-kernel the cut of a step does not change a sum, so many threads get more, narrower tiles.
    N, T, D, H = 8, 3, 5, 1024
    plans = {nt: cell.plan(N, T, H, np.float32, nt) for nt in (1, 2, 16, 24)}
    assert [plans[nt].units for nt in (1, 2, 16, 24)] == [128, 128, 64, 32]
    assert all(p.step_weights == "microkernel" for p in plans.values())
    assert "as many tiles as threads" in plans[16].why("tiles")
    args = problem(cell, rng, N, T, D, H, with_extras=True)
    assert_bits_as_on_one_thread(cell, args, (16, 24))


@pytest.mark.skipif(not __import__("rnnfast._core.dispatch", fromlist=["x"]).avx512_available(),
                    reason="no AVX-512 here")
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_avx512_microkernel_makes_the_same_bits_as_the_avx2_one(cell, rng):
    from rnnfast._core.dispatch import kernel_module
    kernels = kernel_module("kernels")
    shapes = [((20, 3, 6, 80), microkernel_plan(cell, 20, 3, 80)), ((32, 8, 300, 288), None)]
    try:
        assert_bits_do_not_depend_on(cell, rng, shapes, [switch(kernels.use_wide_microkernel, on)
                                                         for on in (True, False)])
    finally:
        kernels.use_wide_microkernel(True)


def switch(use, value):
    """A setting for ``assert_bits_do_not_depend_on``: ``use(value)``, which must report that it took."""
    def setting():
        assert use(value) == value
    return setting


def assert_bits_do_not_depend_on(cell, rng, shapes, settings, dtype=np.float32):
    """Each ((N, T, D, H), plan) problem (plan None: the plan's own choice), run once after each of ``settings``
    (calls that switch the kernels' form), makes the same outputs and gradients, bit for bit."""
    for (N, T, D, H), plan in shapes:
        args = problem(cell, rng, N, T, D, H, with_extras=True, dtype=dtype)
        results = []
        for setting in settings:
            setting()
            outs, grads = run(cell, IMPLS["kernel"], *args, plan=plan)
            results.append(outs + grads)
        for other in results[1:]:
            for a, b in zip(results[0], other):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("wide", [True, False], ids=["avx512", "avx2"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_12_row_slivers_make_the_same_bits_as_6_row_ones(cell, rng, dtype, wide):
    # The steps' tiles (16 rows: 8 + 8 in 12-row slivers, 6 + 5 + 5 in 6-row ones; 20 rows on one thread),
    # H = 80 with its narrow last panel, and the all-step products, forward and backward; on the AVX-512 kernel,
    # and forced through the AVX2 kernel (six rows at a time) where a machine has no AVX-512.
    from rnnfast._core.dispatch import active_isa, avx512_available, kernel_module, sliver_rows
    if wide and not avx512_available():
        pytest.skip("no AVX-512 here")
    kernels = kernel_module("kernels")
    shapes = [((20, 3, 6, 80), microkernel_plan(cell, 20, 3, 80, dtype=dtype)), ((32, 16, 40, 256), None),
              ((13, 40, 24, 256), None)]
    assert kernels.use_wide_microkernel(wide) == wide  # 12-row slivers go with the AVX-512 kernel, unless forced
    try:
        assert_bits_do_not_depend_on(cell, rng, shapes, [switch(lambda rows: kernels.use_sliver_rows(rows, not wide),
                                                                rows) for rows in (12, 6)], dtype)
    finally:
        kernels.use_wide_microkernel(active_isa() == "avx512")
        kernels.use_sliver_rows(sliver_rows())
