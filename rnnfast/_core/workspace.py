"""Scratch arrays reused between kernel calls.

Fresh memory costs page faults: glibc hands large blocks back to the kernel on
``free``, so every call to a sequence kernel used to fault in (and zero) its
whole workspace again (a quarter to a third of a small LSTM training step;
``bench/RESULTS.md``).  Only rnnfast's own scratch arrays come from
here (time-major copies, gate activations, state histories, gradient
workspaces); arrays handed to the user are always fresh.

Workspaces are keyed by exact (shape, dtype) -- a training loop repeats its
shapes -- and held up to a byte budget, least recently used first out:
``RNNFAST_WORKSPACE_MB`` (default 1024; 0 turns reuse off).
``rnnfast.release_workspaces()`` frees them all.

Outputs (``WorkspacePool.output``: the kernels' ``hs``, ``dx`` and weight gradients, dropout's masks and
products) are the caller's alone, but their memory is remembered: once nothing else references an
output -- the training loop has moved on to the next batch -- the next output of its shape reuses it.
In a training step the outputs were most of the memory still faulted in afresh (glibc trims the heap it
had just grown; measured: ``bench/RESULTS.md``).  CPython's reference count says when nothing else can
reach an array: a view, a memoryview, a tensor sharing its memory all hold a reference to it.  They are
remembered up to a quarter of the budget (whether alive or not), at most 8 of one shape and dtype.

Both start on a cache line (``aligned_empty``): the kernels' packed panels and products live in them, and
NumPy's large arrays start 16 bytes past a line, where every 64-byte vector load of a panel straddles two.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import weakref
from collections import OrderedDict

import numpy as np

ENV_VAR = "RNNFAST_WORKSPACE_MB"
# Below this, malloc's free lists already recycle memory without page faults.
_MIN_BYTES = 1 << 16
# Outputs of one (shape, dtype) remembered at most: a training step holds a few of each at once.
_LENT_PER_KEY = 8
# The remembered outputs' share of the budget: calls of ever new shapes (inference on any length) leave
# dead outputs that are never asked for again.
_LENT_SHARE = 4
# Reference counts tell when nothing reaches an output only where they are exact: CPython with its GIL.
_RECLAIM = sys.implementation.name == "cpython" and getattr(sys, "_is_gil_enabled", lambda: True)()


# Bytes: a cache line, and one AVX-512 vector (the micro-kernel's loads of a packed panel).
ALIGN = 64


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialized C-contiguous array whose first byte is on an ``ALIGN``-byte boundary: a view of a
    byte buffer of its own (its ``base``), which nothing else references."""
    dtype = np.dtype(dtype)
    return _aligned_view(np.empty(math.prod(shape) * dtype.itemsize + ALIGN, np.uint8), tuple(shape), dtype)


def _aligned_view(raw: np.ndarray, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` in byte buffer ``raw`` (``ALIGN`` bytes longer), from its first line."""
    start = -raw.__array_interface__["data"][0] % ALIGN
    return raw[start:start + raw.nbytes - ALIGN].view(dtype).reshape(shape)


def _whole(a: np.ndarray) -> bool:
    """True for an array that owns its memory, or that is all of an ``aligned_empty`` buffer: not a view
    of part of something else, which might still be read through the rest."""
    raw = a.base
    if raw is None:
        return True
    return (isinstance(raw, np.ndarray) and raw.base is None and raw.dtype == np.uint8 and raw.ndim == 1
            and a.flags.c_contiguous and raw.nbytes - ALIGN <= a.nbytes)


def _budget_from_env() -> int:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return 1024 << 20
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a number of MiB (0 disables reuse); got {raw!r}") from None
    if mb < 0:
        raise ValueError(f"{ENV_VAR} must be >= 0; got {raw!r}")
    return int(mb * (1 << 20))


class WorkspacePool:
    """Thread-safe free lists of uninitialized arrays, by (shape, dtype)."""

    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self._free: "OrderedDict[tuple, list]" = OrderedDict()
        self._held = 0
        self._lent: "OrderedDict[tuple, list]" = OrderedDict()  # outputs handed out, oldest first
        self._lent_bytes = 0
        self._lock = threading.Lock()

    def take(self, shape, dtype) -> np.ndarray:
        """An uninitialized C-contiguous array (a reused one when available)."""
        key = (tuple(shape), np.dtype(dtype))
        if math.prod(key[0]) * key[1].itemsize < _MIN_BYTES:
            return np.empty(key[0], dtype=key[1])  # never pooled: skip the lock (streaming steps)
        with self._lock:
            stack = self._free.get(key)
            if stack:
                a = stack.pop()
                self._held -= a.nbytes
                if not stack:
                    del self._free[key]
                return a
        return aligned_empty(key[0], key[1])

    def output(self, shape, dtype) -> np.ndarray:
        """An uninitialized C-contiguous array for the caller to own, in the memory of an earlier output of
        the same shape and dtype that nothing references any more, where there is one."""
        key = (tuple(shape), np.dtype(dtype))
        nbytes = math.prod(key[0]) * key[1].itemsize
        cap = self.budget_bytes // _LENT_SHARE
        if nbytes < _MIN_BYTES:
            return np.empty(key[0], dtype=key[1])
        if not _RECLAIM or nbytes > cap:  # not remembered, but as aligned as the rest
            return aligned_empty(key[0], key[1])
        with self._lock:
            # the byte buffers are remembered: every view of an output (NumPy's ``base`` of a view of a view
            # is the buffer), a memoryview or a tensor of it holds a reference to its buffer
            lent = self._lent.setdefault(key, [])
            self._lent.move_to_end(key)
            for i in range(len(lent)):
                if sys.getrefcount(lent[i]) == 2:  # the list's reference and the argument's: no one else's
                    raw = lent.pop(i)
                    lent.append(raw)
                    return _aligned_view(raw, key[0], key[1])
            a = aligned_empty(key[0], key[1])
            lent.append(a.base)
            self._lent_bytes += nbytes
            if len(lent) > _LENT_PER_KEY:  # forgotten: an ordinary array from now on
                self._lent_bytes -= lent.pop(0).nbytes - ALIGN
            while self._lent_bytes > cap:
                old_key, old = next(iter(self._lent.items()))
                self._lent_bytes -= old.pop(0).nbytes - ALIGN
                if not old:
                    del self._lent[old_key]
            return a

    def give(self, *arrays: np.ndarray) -> None:
        """Return arrays that nothing else references any more."""
        with self._lock:
            for a in arrays:
                if a.nbytes < _MIN_BYTES or a.nbytes > self.budget_bytes or not _whole(a):
                    continue
                key = (a.shape, a.dtype)
                self._free.setdefault(key, []).append(a)
                self._free.move_to_end(key)
                self._held += a.nbytes
            while self._held > self.budget_bytes:
                key, stack = next(iter(self._free.items()))
                self._held -= stack.pop(0).nbytes
                if not stack:
                    del self._free[key]

    def give_when_dead(self, owner: object, *arrays: np.ndarray) -> None:
        """Return ``arrays`` once ``owner`` (a kernel cache that holds them) is garbage."""
        # One finalizer per forward call costs microseconds: only when something will be pooled.
        pooled = [a for a in arrays if _MIN_BYTES <= a.nbytes <= self.budget_bytes]
        if pooled:
            weakref.finalize(owner, self.give, *pooled)

    def scope(self) -> "WorkspaceScope":
        """``with pool.scope() as ws:`` -- arrays taken through ``ws`` go back when the block ends, also
        when an exception flies, except those handed on with ``ws.keep_until_dead``."""
        return WorkspaceScope(self)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self._held = 0
            self._lent.clear()
            self._lent_bytes = 0

    @property
    def held_bytes(self) -> int:
        return self._held


class WorkspaceScope:
    """The workspaces of one kernel call (``WorkspacePool.scope``)."""

    def __init__(self, owner_pool: WorkspacePool):
        self._pool = owner_pool
        self._taken: list = []
        self._kept: set = set()

    def take(self, shape, dtype) -> np.ndarray:
        a = self._pool.take(shape, dtype)
        self._taken.append(a)
        return a

    def keep_until_dead(self, owner: object, *arrays: np.ndarray) -> None:
        """``arrays`` outlive the call in ``owner`` (a kernel cache) and go back when it is garbage."""
        self._kept.update(id(a) for a in arrays)
        self._pool.give_when_dead(owner, *arrays)

    def __enter__(self) -> "WorkspaceScope":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.give(*(a for a in self._taken if id(a) not in self._kept))
        self._taken.clear()


pool = WorkspacePool(_budget_from_env())


def release_workspaces() -> None:
    """Free the scratch arrays rnnfast keeps for reuse between calls, and forget its earlier outputs (their
    memory is freed once nothing else references them)."""
    pool.clear()
