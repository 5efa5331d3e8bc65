"""Ragged batches: with ``lengths`` the kernels sort the sequences longest first, compute at each step only
the rows still running and run the all-step products over about ``sum(lengths)`` rows (the staircase layout,
``rnnfast._core.buffers.Staircase``).  The results are the reference's, in the user's row order, whatever
the lengths; the bits do not depend on the thread count or the schedule."""
import numpy as np
import pytest

import rnnfast
from rnnfast._core import dispatch
from rnnfast._core.buffers import Staircase
from rnnfast._core.plan import CONSTANTS, StepPlan

from cells import CELLS, IMPLS, rel_err, run

CELL_IDS = [c.name for c in CELLS]
PATTERNS = {
    "all-one": [1, 1, 1, 1],
    "ends-early": [2, 2, 3, 2],  # no row runs at the last steps
    "mixed": [6, 1, 1, 6, 3],
    "ties": [4, 6, 4, 6, 4, 2],  # the stable order keeps equal lengths in the user's order
    "one-short": [6, 6, 6, 5],
}


def problem(cell, rng, lengths, T, D, H, dtype):
    N = len(lengths)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    params = cell.params(rng, D, H, dtype)
    states = cell.states(rng, N, H, dtype)
    dhs = rng.standard_normal((N, T, H)).astype(dtype)
    dfinals = cell.states(rng, N, H, dtype)
    return x, params, states, np.array(lengths), dhs, dfinals


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("pattern", list(PATTERNS), ids=list(PATTERNS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ragged_batches_match_the_reference(cell, pattern, dtype, rng):
    args = problem(cell, rng, PATTERNS[pattern], 6, 5, 7, dtype)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert k.shape == r.shape
        assert rel_err(k, r) <= (1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(37, 9, 20, 70), (33, 5, 16, 1024)])
def test_ragged_bits_do_not_depend_on_threads_or_schedule(cell, shape, rng):
    N, T, D, H = shape
    lengths = list(rng.integers(1, T + 1, size=N))
    args = problem(cell, rng, lengths, T, D, H, np.float32)
    first = run(cell, IMPLS["kernel"], *args, num_threads=1)
    for nt in (2, 3):
        for schedule in ("owned_rows", "shared_tiles"):
            plan = cell.plan(N, T, H, np.float32, nt, schedule=schedule)
            again = run(cell, IMPLS["kernel"], *args, plan=plan)
            for a, b in zip(first[0] + first[1], again[0] + again[1]):
                np.testing.assert_array_equal(a, b)


def test_the_staircase_gives_each_step_the_rows_still_running():
    steps = Staircase.make(np.array([2, 5, 1, 5, 3]), 5, 5)
    assert steps.order.tolist() == [1, 3, 4, 0, 2]  # longest first, ties in the user's order
    assert steps.active.tolist() == [5, 4, 3, 2, 2]
    assert steps.offsets.tolist() == [0, 5, 10, 14, 17, 19]  # step t's block holds active[t-1] rows
    assert steps.rows == 19 and steps.history_rows == 21
    running = Staircase.make(np.array([2, 5, 1, 5, 3]), 5, 5, running_only=True)  # inference: no history to pair
    assert running.offsets.tolist() == [0, 5, 9, 12, 14, 16] and running.rows == 16
    assert running.active.tolist() == steps.active.tolist() and running.order.tolist() == steps.order.tolist()
    dense = Staircase.make(None, 3, 4)
    assert dense.order is None and dense.offsets.tolist() == [0, 3, 6, 9, 12]
    assert Staircase.make(np.array([4, 4, 4]), 3, 4).order is None  # nothing padded: no sorting


def test_a_ragged_call_computes_only_the_running_rows(rng):
    """The time-major arrays of a ragged call have sum(lengths) rows and at most N more, not N*T: step t's
    block has a row for each sequence that ran at step t-1."""
    N, T, D, H = 16, 20, 8, 32
    lengths = np.full(N, 2)
    lengths[0] = T
    x = rng.standard_normal((N, T, D))
    _, _, _, cache = rnnfast.lstm_forward(x, rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)),
                                          np.zeros(4 * H), lengths=lengths)
    assert cache.x_tm.shape[0] == lengths.sum() + N - 1 == 65  # blocks of 16, 16, 16, then one row a step


def test_inference_drops_the_rows_of_ended_sequences_with_the_same_bits(rng, monkeypatch):
    """Without a history to pair with gradients, an inference call's blocks hold only the running rows, where its
    input product runs on the micro-kernel (whose rows' sums do not depend on the rows around them): the outputs
    keep a training call's bits, token input included."""
    made = []
    make = Staircase.make.__func__

    def recording(cls, lengths, N, T, running_only=False):
        steps = make(cls, lengths, N, T, running_only)
        made.append((running_only, steps.rows))
        return steps
    monkeypatch.setattr(Staircase, "make", classmethod(recording))
    N, T, D, H = 32, 17, 64, 64
    lengths = rng.integers(T // 4, T + 1, size=N)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    Wx, Wh = (rng.standard_normal((n, 4 * H)).astype(np.float32) * 0.2 for n in (D, H))
    b = (rng.standard_normal(4 * H) * 0.1).astype(np.float32)
    table = rng.standard_normal((100, D)).astype(np.float32)  # 100 tokens: their products folded in a table
    ids = rng.integers(0, 100, size=(N, T))
    for inputs, kw in ((x, {}), (ids, {"embedding": table})):
        made.clear()
        infer = rnnfast.lstm_forward(inputs, Wx, Wh, b, lengths=lengths, need_grad=False, **kw)
        train = rnnfast.lstm_forward(inputs, Wx, Wh, b, lengths=lengths, **kw)
        if CONSTANTS["microkernel"]:
            assert made == [(True, lengths.sum()), (False, lengths.sum() + N - (lengths == T).sum())]
        for a, c in zip(infer[:3], train[:3]):
            np.testing.assert_array_equal(a, c)


def test_weight_gradients_leave_out_only_the_rows_of_ended_sequences(rng):
    """The weight gradients pack only the rows still running at each step (the others are zero in dG), a k-block
    at a time.  Here one k-block of the all-step sums holds no running row at all (300 sequences of one step, one of
    two: the second step's block is 300 rows, one of them running); the gradients are still the reference's."""
    N, T, D, H = 300, 2, 32, 32
    cell = next(c for c in CELLS if c.name == "lstm")
    lengths = [1] * (N - 1) + [2]
    args = problem(cell, rng, lengths, T, D, H, np.float64)
    outs_k, grads_k = run(cell, IMPLS["kernel"], *args)
    outs_r, grads_r = run(cell, IMPLS["reference"], *args)
    for k, r in zip(outs_k + grads_k, outs_r + grads_r):
        assert rel_err(k, r) <= 1e-12


def _busiest(a, height, unit_blocks, num_threads):
    """Rows x unit blocks of the busiest thread when step tiles ``height`` rows high of ``a`` running rows are
    shared out as OpenMP's static schedule does (the first ``extra`` threads one tile more)."""
    tiles = [min(height, a - b * height) for b in range(-(-a // height)) for _ in range(unit_blocks)]
    q, extra = divmod(len(tiles), num_threads)
    loads, lo = [], 0
    for k in range(num_threads):
        hi = lo + q + (k < extra)
        loads.append(sum(tiles[lo:hi]))
        lo = hi
    return max(loads)


def test_shared_tiles_recut_each_step_so_the_threads_work_alike():
    # 16-row blocks, two unit blocks, two threads: 49 running rows were 16, 16, 16, 1 (one thread 32 rows,
    # the other 17); 33 were 16, 16, 1 (24 against 9).
    kernels = dispatch.kernel_module("kernels")
    active = list(range(64, 0, -1))
    for num_threads, unit_blocks in [(2, 2), (2, 1), (3, 2), (4, 4)]:
        heights = kernels.balanced_heights(active, 16, unit_blocks, num_threads)
        assert all(1 <= h <= 16 for h in heights)
        for a, h in zip(active, heights):
            assert _busiest(a, h, unit_blocks, num_threads) <= _busiest(a, 16, unit_blocks, num_threads) + 4
    heights = dict(zip(active, kernels.balanced_heights(active, 16, 2, 2)))
    for a in (49, 33):  # within a tenth of an even share, where the plan's height left one thread 1.3-1.5x
        assert _busiest(a, 16, 2, 2) >= 1.3 * a
        assert _busiest(a, heights[a], 2, 2) <= 1.1 * a
    assert heights[64] == 16  # four row blocks share out evenly: the plan's height
    with pytest.raises(ValueError, match="running rows"):
        kernels.balanced_heights([3, 0], 16, 2, 2)


@pytest.mark.skipif(not CONSTANTS["microkernel"], reason="this build has no micro-kernel")
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("schedule", ["shared_tiles", "owned_rows"])
def test_micro_kernel_steps_of_ragged_batches_keep_their_bits(cell, schedule, rng):
    # Every count of running rows from 50 down for 2-4 threads, on the micro-kernel: shared tiles re-cut per step,
    # or each thread's own rows cut by their cost (in blocks of up to 16 rows): the bits of one thread.
    N, T, D, H = 50, 25, 24, 64
    lengths = list(np.linspace(1, T, N).round().astype(int))
    args = problem(cell, rng, lengths, T, D, H, np.float32)
    first = run(cell, IMPLS["kernel"], *args, num_threads=1)
    for nt in (2, 3, 4):
        plan = cell.plan(N, T, H, np.float32, nt, rows=16, units=32, schedule=schedule, step_weights="microkernel")
        again = run(cell, IMPLS["kernel"], *args, plan=plan)
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)


def _row_steps(lengths_sorted, cuts):
    return [int(np.sum(lengths_sorted[a:b])) for a, b in zip(cuts, cuts[1:])]


def test_owned_ragged_rows_are_cut_by_what_they_cost():
    """Each thread owns a run of the sorted rows for every step: the runs are cut so that the threads' steps cost
    alike, the longest sequences' thread taking fewer rows; a padded batch is cut evenly."""
    kernels = dispatch.kernel_module("kernels")
    assert kernels.owned_cuts([32] * 35, 1, 2) == [0, 16, 32]
    assert kernels.owned_cuts([48] * 10, 2, 4) == [0, 12, 24, 36, 48]
    T = 35
    lengths = np.sort(np.linspace(T // 4, T, 64).round().astype(int))[::-1]
    active = (lengths[None, :] > np.arange(T)[:, None]).sum(axis=1)
    for num_threads in (2, 3, 4):
        cuts = kernels.owned_cuts(active, 2, num_threads)
        assert cuts[0] == 0 and cuts[-1] == 64 and all(a < b for a, b in zip(cuts, cuts[1:]))
        steps = _row_steps(lengths, cuts)
        assert max(steps) <= 1.1 * min(steps)  # an even cut of the rows: the first thread 1.5x the last
        assert cuts[1] < 64 // num_threads
    even = _row_steps(lengths, [0, 32, 64])
    assert max(even) >= 1.4 * min(even)
    with pytest.raises(ValueError, match="non-increasing"):
        kernels.owned_cuts([3, 4], 1, 2)


@pytest.mark.skipif(not CONSTANTS["microkernel"], reason="this build has no micro-kernel")
def test_ragged_batches_on_the_micro_kernel_are_owned():
    # as a padded batch there (16-row blocks, one a thread), but in runs of the rows cut by their cost
    assert StepPlan.choose(4, 32, 35, 256, np.float32, 2).schedule == "owned_rows"
    ragged = StepPlan.choose(4, 32, 35, 256, np.float32, 2, ragged=True)
    assert ragged.schedule == "owned_rows" and ragged.step_threads == 2 and ragged.rows == 32
    assert StepPlan.choose(4, 32, 35, 256, np.float32, 4, ragged=True).schedule == "shared_tiles"  # 8 rows a thread
    for N in (16, 24):  # two threads own their rows from 8 rows a thread, where the steps run on the micro-kernel
        plan = StepPlan.choose(4, N, 35, 256, np.float32, 2, ragged=True)
        assert plan.schedule == ("owned_rows" if plan.step_weights == "microkernel" else "shared_tiles")
    assert StepPlan.choose(4, 12, 35, 256, np.float32, 2, ragged=True).schedule != "owned_rows"


@pytest.mark.skipif(not CONSTANTS["microkernel"], reason="this build has no micro-kernel")
def test_owned_ragged_token_input_keeps_its_bits(rng):
    # Token input: each thread copies its own rows' table rows as its steps reach them.
    N, T, D, H = 48, 11, 32, 256
    lengths = rng.integers(1, T + 1, size=N)
    Wx, Wh = (rng.standard_normal((n, 4 * H)).astype(np.float32) * 0.1 for n in (D, H))
    b = (rng.standard_normal(4 * H) * 0.1).astype(np.float32)
    table = rng.standard_normal((50, D)).astype(np.float32)
    ids = rng.integers(0, 50, size=(N, T))
    assert StepPlan.choose(4, N, T, H, np.float32, 2, D=D, ragged=True).schedule == "owned_rows"
    for need_grad in (True, False):
        one = rnnfast.lstm_forward(ids, Wx, Wh, b, lengths=lengths, num_threads=1, embedding=table,
                                   need_grad=need_grad)
        two = rnnfast.lstm_forward(ids, Wx, Wh, b, lengths=lengths, num_threads=2, embedding=table,
                                   need_grad=need_grad)
        for a, c in zip(one[:3], two[:3]):
            np.testing.assert_array_equal(a, c)
