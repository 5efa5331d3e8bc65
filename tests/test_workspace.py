"""Scratch arrays are reused between calls, and never leak into what users get."""
import gc

import numpy as np
import pytest

import rnnfast
from rnnfast._core.workspace import _MIN_BYTES, WorkspacePool, _budget_from_env, pool

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
