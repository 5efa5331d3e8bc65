"""The packed-weight step micro-kernel (``src/packed_gemm.h``) in the LSTM, GRU and RNN kernels,
float32 on AVX2 builds.

The kernels take it only for tiles too large for OpenBLAS's small-matrix path (H of ~1024); here
the size threshold is lowered so that small shapes exercise it: partial 6-row slivers, a partial
last chunk of units, several k-blocks (K > 256), lengths, states and final-state gradients.  The
GRU's products take runs of gate panels (forward) and K-slices of the transposed rows (backward:
reset_before's n-part alone, written over its output rather than added).
"""
import numpy as np
import pytest

from rnnfast import _plumbing
from rnnfast._dispatch import kernel_module

from cells import CELL_BY_NAME, IMPLS, rel_err, run

PACKED_CELLS = [(CELL_BY_NAME[name], module, gates)
                for name, module, gates in [("lstm", "lstm", 4), ("gru_reset_after", "gru", 3),
                                                ("gru_reset_before", "gru", 3), ("rnn_tanh", "rnn", 1),
                                                ("rnn_relu", "rnn", 1)]]
CELL_IDS = [c.name for c, _, _ in PACKED_CELLS]
pytestmark = pytest.mark.skipif(not kernel_module("lstm").PACKED_STEPS,
                                reason="this build/CPU has no packed-weight micro-kernel (baseline ISA)")


@pytest.fixture
def packed(monkeypatch):
    """Every float32 LSTM, GRU and RNN call with H and chunks in whole panels takes the packed path."""
    monkeypatch.setattr(_plumbing, "_SMALL_GEMM", 0)


def uses_panels(N, H, module="lstm", gates=4):
    plan = _plumbing.ThreadPlan.make(N, H, gates, None)
    return _plumbing.step_panels(kernel_module(module), np.float32, H, gates, plan).size > 0


def problem(cell, rng, N, T, D, H, with_extras):
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    params = cell.params(rng, D, H, np.float32)
    states = cell.states(rng, N, H, np.float32) if with_extras else None
    lengths = None
    if with_extras:
        lengths = rng.integers(1, T + 1, size=N)
        lengths[0] = T
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)
    dfinals = cell.states(rng, N, H, np.float32) if with_extras else None
    return x, params, states, lengths, dhs, dfinals


@pytest.mark.parametrize("cell,module,gates", PACKED_CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("with_extras", [False, True])
@pytest.mark.parametrize("shape", [(7, 4, 5, 16), (13, 3, 9, 48), (20, 3, 6, 80), (9, 2, 4, 288)])
def test_packed_steps_match_reference(packed, cell, module, gates, with_extras, shape, rng):
    N, T, D, H = shape
    assert uses_panels(N, H, module, gates)
    args = problem(cell, rng, N, T, D, H, with_extras)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert k.dtype == np.float32 and k.shape == r.shape
        assert rel_err(k, r) <= 1e-4


@pytest.mark.parametrize("cell,module,gates", PACKED_CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(13, 3, 9, 48), (20, 3, 6, 80), (9, 2, 4, 288)])
def test_packed_steps_match_blas_steps(packed, cell, module, gates, shape, rng, monkeypatch):
    args = problem(cell, rng, *shape, with_extras=True)
    outs_p, grads_p = run(cell, IMPLS["kernel"], *args)
    monkeypatch.setattr(_plumbing, "_SMALL_GEMM", float("inf"))
    assert not uses_panels(shape[0], shape[3], module, gates)
    outs_b, grads_b = run(cell, IMPLS["kernel"], *args)
    for p, b in zip(outs_p + grads_p, outs_b + grads_b):
        assert rel_err(p, b) <= 1e-5


@pytest.mark.parametrize("cell,module,gates", PACKED_CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(20, 3, 6, 80), (35, 3, 4, 32), (40, 3, 4, 320)])
def test_packed_steps_bits_do_not_depend_on_threads(packed, cell, module, gates, shape, rng):
    args = problem(cell, rng, *shape, with_extras=True)
    first = run(cell, IMPLS["kernel"], *args, num_threads=1)
    for nt in (2, 3):
        again = run(cell, IMPLS["kernel"], *args, num_threads=nt)
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell,module,gates", PACKED_CELLS, ids=CELL_IDS)
def test_large_hidden_size_takes_the_packed_path_by_default(cell, module, gates, rng):
    N, T, D, H = 8, 2, 5, 1024
    assert uses_panels(N, H, module, gates)
    args = problem(cell, rng, N, T, D, H, with_extras=True)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert rel_err(k, r) <= 1e-4


def test_small_tiles_and_float64_keep_the_blas_path():
    assert not uses_panels(64, 512)  # 16-row x 64-unit tiles: OpenBLAS's small-matrix kernel
    assert not uses_panels(1, 1024)
    plan = _plumbing.ThreadPlan.make(8, 1024, 4, None)
    assert _plumbing.step_panels(kernel_module("lstm"), np.float64, 1024, 4, plan).size == 0
    assert _plumbing.step_panels(kernel_module("lstm"), np.float32, 1000, 4, plan).size == 0  # not whole panels
