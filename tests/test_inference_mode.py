"""Inference (``need_grad=False``): the same outputs and final states, bit for bit, with nothing kept for
backward -- the state history is a ring of two slots, the workspaces go back at once and ``cache`` is None."""
import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference
from rnnfast._core.workspace import pool

from cells import CELLS, problem

CELL_IDS = [c.name for c in CELLS]
SHAPES = [(3, 5, 7, 9), (16, 6, 32, 64), (32, 17, 64, 256), (8, 4, 40, 1024)]


def forward(cell, impl, x, params, states, lengths, num_threads=None, **kw):
    fn = getattr(impl, f"{cell.spec.name}_forward")
    return fn(x, *cell.weights(params), *states, lengths=lengths, num_threads=num_threads, **cell.keywords(params),
              **kw)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("num_threads", [1, 2])
def test_inference_gives_the_same_bits_and_no_cache(cell, dtype, shape, num_threads, rng):
    x, params, states, lengths, _, _ = problem(cell, rng, *shape, dtype=dtype)
    train = forward(cell, rnnfast, x, params, states, lengths, num_threads)
    infer = forward(cell, rnnfast, x, params, states, lengths, num_threads, need_grad=False)
    assert infer[-1] is None and train[-1] is not None
    for a, b in zip(train[:-1], infer[:-1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_the_reference_takes_need_grad_too(cell, rng):
    x, params, states, lengths, _, _ = problem(cell, rng, 3, 4, 5, 6, dtype=np.float64)
    out = forward(cell, reference, x, params, states, lengths, need_grad=False)
    assert out[-1] is None
    np.testing.assert_array_equal(out[0], forward(cell, reference, x, params, states, lengths)[0])


def test_inference_keeps_no_history(rng):
    N, T, D, H = 64, 200, 32, 64
    for cell in CELLS:
        x, params, states, _, _, _ = problem(cell, rng, N, T, D, H, dtype=np.float32)
        pool.clear()
        forward(cell, rnnfast, x, params, states, None, need_grad=False)
        shapes = [key[0] for key in pool._free]  # every workspace of the call, given back
        assert shapes and not any(shape[0] == (T + 1) * N for shape in shapes), shapes  # no state of every step
        cache = forward(cell, rnnfast, x, params, states, None)[-1]
        assert cache.hst.shape == ((T + 1) * N, H)


@pytest.mark.parametrize("bad", [None, 0, "no", np.array([True, False])])
def test_need_grad_must_be_a_bool(bad, rng):
    cell = CELLS[0]
    x, params, _, _, _, _ = problem(cell, rng, 2, 3, 4, 5, dtype=np.float64)
    for impl in (rnnfast, reference):
        with pytest.raises(TypeError, match="need_grad must be True or False"):
            impl.lstm_forward(x, *params, need_grad=bad)


def test_calls_too_small_for_a_team_run_on_one_thread():
    from rnnfast._core.plan import MIN_PARALLEL_CALL_FLOPS, StepPlan
    small = StepPlan.choose(1, 10, 5, 100, np.float32, 2)  # the textbook's RNN: 6 MFLOP a training step
    assert small.num_threads == 1 and small.schedule == "serial" and "one thread" in small.why("num_threads")
    big = StepPlan.choose(4, 32, 35, 256, np.float32, 2)
    assert big.num_threads == 2 and big.schedule != "serial"
    # a forward pass without backward does a third of the work: 9 MFLOP here, 28 with backward
    assert StepPlan.choose(4, 4, 35, 64, np.float32, 2, need_grad=True).num_threads == 2
    assert StepPlan.choose(4, 4, 35, 64, np.float32, 2, need_grad=False).num_threads == 1
    assert 2 * 4 * 35 * 128 * 4 * 64 < MIN_PARALLEL_CALL_FLOPS < 3 * 2 * 4 * 35 * 128 * 4 * 64


@pytest.mark.parametrize("cell", [c for c in CELLS if c.gates >= 3], ids=str)
@pytest.mark.parametrize("num_threads", [1, 2])
def test_inference_on_whole_width_row_blocks_gives_the_same_bits(cell, num_threads, rng):
    # above H = 512, a batch that splits into 32-128 rows a thread takes one row block of all the units a thread
    x, params, states, _, _, _ = problem(cell, rng, 64, 3, 5, 640)
    assert cell.plan(64, 3, 640, np.float32, num_threads).units == 640
    train = forward(cell, rnnfast, x, params, states, None, num_threads)
    infer = forward(cell, rnnfast, x, params, states, None, num_threads, need_grad=False)
    for a, b in zip(train[:-1], infer[:-1]):
        np.testing.assert_array_equal(a, b)
