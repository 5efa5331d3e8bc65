"""Glue between validated arguments and the compiled kernels: layouts,
workspaces and the thread plan.  No arithmetic here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _layout
from ._threads import resolve_num_threads
from ._workspace import pool
from ._tiling import _SMALL_GEMM_MACS, run_steps_in_parallel, step_tiling


# Below this many elements a copy is faster than starting a thread team.
_PARALLEL_COPY_MIN = 1 << 16


def time_major(name: str, a: np.ndarray, steps: np.ndarray, mask: Optional[np.ndarray],
               num_threads: int) -> np.ndarray:
    """(N, T, F) -> C-contiguous (T, N, F) copy in a pooled workspace (a step's batch rows become
    contiguous for BLAS), zero at padded steps.  The same pass checks that the valid steps are
    finite (ValueError naming ``name``): one read of ``a`` instead of three."""
    out = pool.take((a.shape[1], a.shape[0]) + a.shape[2:], a.dtype)
    threads = num_threads if a.size >= _PARALLEL_COPY_MIN else 1
    if _layout.time_major_into(a, out, steps, threads):
        pool.give(out)
        raise ValueError(f"{name} contains NaN or Inf{' at a valid step' if mask is not None else ''}; "
                         "expected finite values")
    return out


def checked_in_place(name: str, a: np.ndarray, steps: np.ndarray, mask: Optional[np.ndarray],
                     num_threads: int) -> np.ndarray:
    """A batch-major (N, T, F) sequence that the kernels read in place (``dhs``: only at valid steps,
    a row at a time), C-contiguous (a copy only if it is not), after checking that its valid steps
    are finite (ValueError naming ``name``).  The time-major copy that this replaces cost about 1%
    of an LSTM training step at N=32, H=256 (``time_major``)."""
    a = np.ascontiguousarray(a)
    threads = num_threads if a.size >= _PARALLEL_COPY_MIN else 1
    if _layout.count_nonfinite_steps(a, steps, threads):
        raise ValueError(f"{name} contains NaN or Inf{' at a valid step' if mask is not None else ''}; "
                         "expected finite values")
    return a


def batch_major(a_tm: np.ndarray, num_threads: int) -> np.ndarray:
    """(T, N, F) -> a new C-contiguous (N, T, F) array (``dx``; the forward kernels write ``hs``
    batch-major themselves), copied by the threads: NumPy's one-thread copy took twice as long
    once the kernel had left ``a_tm`` out of cache.  Always a copy: for N = 1 the swap is already
    contiguous, and a view would let a user's in-place edit write into the kernel's workspace."""
    out = np.empty((a_tm.shape[1], a_tm.shape[0]) + a_tm.shape[2:], dtype=a_tm.dtype)
    _layout.batch_major_into(a_tm, out, num_threads if a_tm.size >= _PARALLEL_COPY_MIN else 1)
    return out


def kernel_outputs(N: int, dtype, *shapes):
    """Arrays the kernel writes in full (BLAS with beta = 0 reads nothing), so they need no memset;
    zeros when N = 0, where the kernel does not run."""
    new = np.empty if N else np.zeros
    return [new(shape, dtype=dtype) for shape in shapes]


def kernel_lengths(lengths: Optional[np.ndarray], N: int, T: int) -> np.ndarray:
    return lengths if lengths is not None else np.full(N, T, dtype=np.intp)


def initial_states(first: np.ndarray, T: int) -> np.ndarray:
    """(T+1, N, H) state history (a pooled workspace) with the given state at index 0."""
    st = pool.take((T + 1,) + first.shape, first.dtype)
    st[0] = first
    return st


def workspace(shape, dtype) -> np.ndarray:
    """An uninitialized scratch array from the pool (give it back with ``pool.give``)."""
    return pool.take(shape, dtype)


@dataclass(frozen=True)
class ThreadPlan:
    block_n: int
    chunk_h: int
    num_threads: int
    parallel_steps: bool

    @classmethod
    def make(cls, N: int, H: int, gates: int, num_threads) -> "ThreadPlan":
        nt = resolve_num_threads(num_threads)
        block_n, chunk_h = step_tiling(N, H)
        return cls(block_n, chunk_h, nt, run_steps_in_parallel(N, H, gates, nt))

    def args(self):
        return self.block_n, self.chunk_h, self.num_threads, self.parallel_steps


def transposed(W: np.ndarray, num_threads: int) -> np.ndarray:
    """``W.T`` as a C-contiguous pooled workspace (a blocked copy; NumPy's strided one is ~10x slower)."""
    out = pool.take(W.shape[::-1], W.dtype)
    _layout.transpose_into(np.ascontiguousarray(W), out, num_threads)
    return out


# OpenBLAS takes its unpacked small-matrix path for GEMMs of up to this many multiply-adds (a switch
# of its own, so that tests can move it).
_SMALL_GEMM = _SMALL_GEMM_MACS


def step_panels(module, dtype, H: int, gates: int, plan: ThreadPlan) -> np.ndarray:
    """Scratch for the step weights packed into the micro-kernel's panels (``src/packed_gemm.h``),
    or an empty array where the kernels keep the BLAS path: float64, a build without the
    micro-kernel, unit chunks that are not whole panels of 16, or tiles small enough for OpenBLAS's
    unpacked small-matrix kernel (a gate block's product of at most ~1e6 multiply-adds), which
    ran faster than the micro-kernel (LSTM training N=64, H=512, 2 threads: 168 vs 178 ms; at
    N=128, H=1024 the packed path won, 1508 vs 1615 ms; alternating rounds, bench/compare_builds.py)."""
    if (getattr(module, "PACKED_STEPS", 0) and np.dtype(dtype) == np.float32
            and H % 16 == 0 and plan.chunk_h % 16 == 0 and plan.block_n * plan.chunk_h * H > _SMALL_GEMM):
        return workspace((gates * H * H,), dtype)
    return np.empty(0, dtype=dtype)


# A tile reads each row of a gate block as a run of chunk_h values, the runs gates*H values apart.
# Runs of at most 8 cache lines at least 8 KiB apart defeat the hardware prefetchers (every row
# starts a new page) and collide in the L2 sets: there the chunk-major copy pays.
_SHORT_RUN_BYTES = 512
_FAR_ROWS_BYTES = 8192
# The copy costs about two steps' reads of the weights: a single step loses by it (LSTM N=64, H=512,
# T=1: 1.14x the time), four steps already gain (0.97x).
_MIN_STEPS_FOR_COPY = 4


def chunked_weights(dtype, H: int, gates: int, T: int, plan: ThreadPlan, panels: np.ndarray) -> np.ndarray:
    """Scratch for the BLAS path's chunk-major copy of the forward step weights (each chunk of units
    with its gate blocks side by side, ``kernel_common.chunk_step_weights``), or an empty array where
    the weights are read as given: packed steps, a single chunk of units, fewer than
    ``_MIN_STEPS_FOR_COPY`` time steps, or rows that are long runs or close together.

    Forward pass, 2 threads, copy against as given, alternating in one process (the bits are the
    same): LSTM N=64, H=512 float32 0.91x the time, float64 0.88x; N=4, H=1024 0.79x; GRU N=4,
    H=1024 0.82x; but LSTM N=32, H=256 (rows 4 KiB apart) 1.04x, RNN float64 H=1024 (runs of
    1 KiB) 1.05x, GRU N=64, H=512 float32 (6 KiB) 1.00x."""
    itemsize = np.dtype(dtype).itemsize
    if (panels.size or plan.chunk_h >= H or T < _MIN_STEPS_FOR_COPY
            or plan.chunk_h * itemsize > _SHORT_RUN_BYTES or gates * H * itemsize < _FAR_ROWS_BYTES):
        return np.empty(0, dtype=dtype)
    n_chunks = -(-H // plan.chunk_h)
    return workspace((n_chunks * plan.chunk_h * gates * H,), dtype)
