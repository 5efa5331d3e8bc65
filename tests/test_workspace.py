"""Scratch arrays are reused between calls, and never leak into what users get."""
import gc

import numpy as np
import pytest

import rnnfast
from rnnfast._core.workspace import _MIN_BYTES, ALIGN, WorkspacePool, _budget_from_env, aligned_empty, pool

from cells import CELLS


def test_pool_reuses_by_shape_and_dtype():
    p = WorkspacePool(1 << 30)
    a = p.take((64, 300), np.float64)
    p.give(a)
    assert p.take((64, 300), np.float64) is a
    assert p.take((64, 300), np.float64) is not a  # one taker per array
    assert p.take((64, 300), np.float32).dtype == np.float32


def test_pool_keeps_to_its_budget_oldest_out():
    p = WorkspacePool(3 * 80_000)
    arrays = [np.empty(10_000) for _ in range(5)]  # 80 kB each
    p.give(*arrays)
    assert p.held_bytes <= p.budget_bytes
    assert p.take((10_000,), np.float64) is arrays[-1]


def test_zero_budget_disables_reuse_and_views_are_refused():
    off = WorkspacePool(0)
    a = off.take((100, 100), np.float64)
    off.give(a)
    assert off.held_bytes == 0
    on = WorkspacePool(1 << 30)
    on.give(np.empty((200, 200))[::2])
    assert on.held_bytes == 0


@pytest.mark.parametrize("raw, message", [("lots", "must be a number"), ("-1", "must be >= 0")])
def test_bad_budget_from_the_environment(monkeypatch, raw, message):
    monkeypatch.setenv("RNNFAST_WORKSPACE_MB", raw)
    with pytest.raises(ValueError, match=f"RNNFAST_WORKSPACE_MB {message}"):
        _budget_from_env()


def _train_step(cell, seed=3, N=5, T=40, D=30, H=32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D))
    p, s = cell.params(rng, D, H, np.float64), cell.states(rng, N, H, np.float64)
    hs, finals, cache = cell.forward(rnnfast, x, p, s)
    grads = cell.backward(rnnfast, np.ones_like(hs), cache, [np.ones_like(f) for f in finals])
    return [hs, *finals, *grads]


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_outputs_do_not_alias_reused_workspaces(cell):
    """Run, scribble over every output, run again: the later runs give the same bits."""
    first = _train_step(cell)
    expected = [a.copy() for a in first]
    for a in first:
        a[...] = np.nan
    gc.collect()
    assert pool.held_bytes > 0  # the first run's workspaces went back to the pool
    again, fresh = _train_step(cell), _train_step(cell)
    for a, b, e in zip(again, fresh, expected):
        np.testing.assert_array_equal(a, e)
        np.testing.assert_array_equal(b, e)


def test_release_workspaces_empties_the_pool():
    _train_step(CELLS[0], T=60, D=40, H=40)
    gc.collect()
    rnnfast.release_workspaces()
    assert pool.held_bytes == 0


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_the_users_dhs_is_read_in_place_and_never_pooled(cell):
    """The backward kernels read ``dhs`` where it lies: it must come back unchanged, stay out of
    the pool, and later calls (which take the pool's arrays as workspaces) must not write into it."""
    rng = np.random.default_rng(5)
    N, T, D, H = 6, 48, 4, 32  # dhs: 72 kB, poolable by size
    x = rng.standard_normal((N, T, D))
    p, s = cell.params(rng, D, H, np.float64), cell.states(rng, N, H, np.float64)
    dhs = rng.standard_normal((N, T, H))
    saved = dhs.copy()
    _, _, cache = cell.forward(rnnfast, x, p, s)
    cell.backward(rnnfast, dhs, cache, None)
    del cache
    gc.collect()
    assert dhs.nbytes >= _MIN_BYTES
    assert not any(np.shares_memory(dhs, a) for arrays in pool._free.values() for a in arrays)
    for _ in range(3):
        _train_step(cell, N=N, T=T, D=D, H=H)
    np.testing.assert_array_equal(dhs, saved)


def _address(a):
    return a.__array_interface__["data"][0]


def test_an_output_is_reused_only_once_nothing_references_it():
    p = WorkspacePool(1 << 30)
    a = p.output((100, 300), np.float64)
    address = _address(a)
    b = p.output((100, 300), np.float64)
    assert not np.shares_memory(a, b)  # a is still the caller's
    view, buffer = a[10:], memoryview(a)
    del a
    c = p.output((100, 300), np.float64)
    assert not np.shares_memory(view, c)  # a view holds the memory
    del view
    d = p.output((100, 300), np.float64)
    assert _address(d) != address  # and so does a memoryview
    del buffer, d
    assert _address(p.output((100, 300), np.float64)) == address  # now nothing does
    assert p.output((100, 300), np.float32).dtype == np.float32


def test_remembered_outputs_keep_to_a_quarter_of_the_budget():
    p = WorkspacePool(4 * 3 * 80_000)
    for _ in range(10):
        p.output((10_000,), np.float64)  # 80 kB each, dropped at once
    assert p._lent_bytes <= p.budget_bytes // 4
    held = [p.output((10_000,), np.float64) for _ in range(12)]  # all alive: none reused
    assert len({_address(a) for a in held}) == 12
    assert p._lent_bytes <= 3 * 80_000
    big = p.output((40_000,), np.float64)  # 320 kB: more than the share, never remembered
    del big
    assert not any(a.size == 40_000 for arrays in p._lent.values() for a in arrays)
    off = WorkspacePool(0)
    off.output((100, 100), np.float64)
    assert off._lent_bytes == 0 and not off._lent


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_outputs_kept_by_the_user_are_never_written_again(cell):
    """Keep one call's outputs, run more calls of the same shapes: they stay as they were, and no later output
    shares their memory; dropped outputs are reused without changing a later call's bits."""
    kept = _train_step(cell, seed=1)
    saved = [a.copy() for a in kept]
    expected = [a.copy() for a in _train_step(cell, seed=2)]  # dropped at once: its memory is reused below
    for _ in range(2):
        later = _train_step(cell, seed=2)
        for a, e in zip(later, expected):
            np.testing.assert_array_equal(a, e)
        assert not any(np.shares_memory(k, a) for k in kept for a in later)
    for k, s in zip(kept, saved):
        np.testing.assert_array_equal(k, s)


def test_a_ragged_batch_zeros_its_padding_in_reused_memory():
    rng = np.random.default_rng(4)
    N, T, D, H = 8, 30, 16, 64  # hs: 120 kB, large enough to be remembered
    x = rng.standard_normal((N, T, D))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    hs = rnnfast.lstm_forward(x, Wx, Wh, b)[0]
    address = _address(hs)
    del hs
    lengths = rng.integers(1, T + 1, N)
    hs = rnnfast.lstm_forward(x, Wx, Wh, b, lengths=lengths)[0]
    assert _address(hs) == address  # the dense call's output, reused
    for n, length in enumerate(lengths):
        assert not hs[n, length:].any()


def test_release_workspaces_forgets_the_outputs():
    p = pool.output((300, 300), np.float64)
    del p
    rnnfast.release_workspaces()
    assert pool._lent_bytes == 0 and not pool._lent


def test_dropout_outputs_are_new_and_do_not_touch_their_input():
    from rnnfast.layers import TimeDropout

    drop = TimeDropout(0.5, rng=np.random.default_rng(0))
    x = np.ones((4, 50, 64))
    y1 = drop.forward(x)
    mask1, y1_saved = drop.mask, y1.copy()
    y2 = drop.forward(x)
    d2 = drop.backward(np.ones_like(x))
    assert not np.shares_memory(y1, y2) and not np.shares_memory(y1, d2) and not np.shares_memory(mask1, drop.mask)
    np.testing.assert_array_equal(y1, y1_saved)
    np.testing.assert_array_equal(y2, x * drop.mask)
    np.testing.assert_array_equal(d2, drop.mask)
    assert (x == 1).all()


def test_workspaces_and_outputs_start_on_a_cache_line():
    """The kernels' packed panels live in these arrays: 64-byte vector loads must not straddle two lines."""
    p = WorkspacePool(1 << 30)
    for shape, dtype in [((2048, 1024), np.float32), ((1000, 77), np.float64), ((64, 257), np.float32)]:
        for a in (p.take(shape, dtype), p.output(shape, dtype)):
            assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
            assert _address(a) % ALIGN == 0
    taken = p.take((300, 300), np.float32)
    p.give(taken)
    assert p.take((300, 300), np.float32) is taken  # a whole aligned array goes back to the pool
    p.give(taken[1:])  # part of one does not
    assert p.held_bytes == 0
    out = p.output((300, 300), np.float32)
    address = _address(out)
    del out
    again = p.output((300, 300), np.float32)  # the same memory, still aligned
    assert _address(again) == address and address % ALIGN == 0


def test_outputs_start_on_a_cache_line_also_when_not_remembered():
    off = WorkspacePool(0)
    a = off.output((300, 300), np.float32)
    assert _address(a) % ALIGN == 0 and a.shape == (300, 300)
    assert not np.shares_memory(off.output((300, 300), np.float32), a)  # a budget of 0 remembers nothing


def test_an_aligned_array_is_a_fresh_buffer_of_its_own():
    a = aligned_empty((7, 9), np.float32)
    assert _address(a) % ALIGN == 0 and a.shape == (7, 9) and a.dtype == np.float32
    assert a.base.base is None and a.base.nbytes == a.nbytes + ALIGN
