"""The BLAS path's chunk-major copy of the forward step weights (``kernel_common.chunk_step_weights``).

The kernels take it only where a gate block's rows are short runs far apart (an LSTM at H=512);
here the rule is relaxed so that small shapes exercise it: several chunks, a partial last chunk,
lengths, states, both dtypes and thread counts.  The copy keeps every GEMM's shape, so the
results must be the same bits as reading the weights as given.
"""
import numpy as np
import pytest

from rnnfast import _plumbing

from cells import CELLS, IMPLS, problem, rel_err, run

CELL_IDS = [c.name for c in CELLS]
GATES = {"lstm": 4, "gru_reset_after": 3, "gru_reset_before": 3, "rnn_tanh": 1, "rnn_relu": 1}


@pytest.fixture
def chunked(monkeypatch):
    """Every BLAS-path forward with more than one chunk of units takes the chunk-major copy."""
    monkeypatch.setattr(_plumbing, "_SHORT_RUN_BYTES", float("inf"))
    monkeypatch.setattr(_plumbing, "_FAR_ROWS_BYTES", 0)
    monkeypatch.setattr(_plumbing, "_SMALL_GEMM", float("inf"))  # no packed steps
    monkeypatch.setattr(_plumbing, "_MIN_STEPS_FOR_COPY", 1)


def uses_copy(N, H, gates, dtype, T=35):
    plan = _plumbing.ThreadPlan.make(N, H, gates, None)
    return _plumbing.chunked_weights(dtype, H, gates, T, plan, np.empty(0, dtype)).size > 0


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 3, 4, 80), (33, 2, 6, 144), (3, 2, 5, 300)])
def test_chunked_copy_gives_the_same_bits_as_the_weights_as_given(chunked, cell, dtype, shape, rng, monkeypatch):
    N, T, D, H = shape
    assert uses_copy(N, H, GATES[cell.name], dtype, T)
    args = problem(cell, rng, N, T, D, H, dtype)
    outs_c, grads_c = run(cell, IMPLS["kernel"], *args)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_c + grads_c, outs_r + grads_r):
        assert rel_err(k, r) <= (1e-4 if dtype == np.float32 else 1e-10)
    monkeypatch.setattr(_plumbing, "_FAR_ROWS_BYTES", float("inf"))
    assert not uses_copy(N, H, GATES[cell.name], dtype, T)
    outs_g, grads_g = run(cell, IMPLS["kernel"], *args)
    for c, g in zip(outs_c + grads_c, outs_g + grads_g):
        np.testing.assert_array_equal(c, g)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_chunked_copy_bits_do_not_depend_on_threads(chunked, cell, rng):
    args = problem(cell, rng, 35, 3, 4, 144, np.float64)
    first = run(cell, IMPLS["kernel"], *args, num_threads=1)
    for nt in (2, 3):
        again = run(cell, IMPLS["kernel"], *args, num_threads=nt)
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


def test_copy_only_where_rows_are_short_runs_far_apart():
    assert uses_copy(64, 512, 4, np.float32)  # runs of 256 B, 8 KiB apart
    assert uses_copy(64, 512, 4, np.float64)
    assert not uses_copy(32, 256, 4, np.float32)  # 4 KiB apart
    assert not uses_copy(64, 512, 3, np.float32)  # 6 KiB apart
    assert not uses_copy(32, 1024, 1, np.float64)  # runs of 1 KiB
    assert not uses_copy(8, 64, 4, np.float32)  # one chunk of units
    assert not uses_copy(64, 512, 4, np.float32, T=1)  # the copy would serve a single step
    plan = _plumbing.ThreadPlan.make(64, 512, 4, None)
    panels = np.empty(4 * 512 * 512, np.float32)  # packed steps read their panels instead
    assert _plumbing.chunked_weights(np.float32, 512, 4, 35, plan, panels).size == 0
