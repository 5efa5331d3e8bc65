"""How a benchmark times things, the same way for every backend.

- Warm-up: two untimed calls (first-call allocations, workspace pools, caches).
- Calibration: the second call's time sets how many timed calls fill a block.
- Alternating blocks: backends take turns, order reversed every block, so that
  drift on a shared machine hits all of them alike.
- Settling: after a block on several threads, a short pause lets the previous
  library's BLAS/OpenMP worker threads stop spinning before the next one runs.
- Report: the median of every timed call (and the minimum).
- Threads: every library pinned to the same count (``pinned_threads``).
- Pairs (``time_in_pairs``, ``bench/paired_calls.py``): two libraries call by call, and their ratio in the
  machine's quiet and busy spells apart (``pair_ratios``).
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, List

import numpy as np
from threadpoolctl import threadpool_limits


@contextmanager
def pinned_threads(n: int):
    """Every thread pool in the process (BLAS, OpenMP, PyTorch's intra-op pool) limited to ``n``."""
    torch = sys.modules.get("torch")
    saved = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(saved)


def time_side_by_side(fns: Dict[str, Callable[[], object]], *, blocks: int = 3, block_seconds: float = 0.3,
                      max_rounds: int = 200, settle_seconds: float = 0.0) -> Dict[str, List[float]]:
    """Seconds per call of each function, measured in alternating blocks."""
    rounds = {}
    for name, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        rounds[name] = int(min(max_rounds, max(1, block_seconds / max(elapsed, 1e-9))))
    times: Dict[str, List[float]] = {name: [] for name in fns}
    order = list(fns)
    for block in range(blocks):
        for name in order if block % 2 == 0 else order[::-1]:
            fn = fns[name]
            for _ in range(rounds[name]):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            if settle_seconds:
                time.sleep(settle_seconds)
    return times


def time_in_pairs(first: Callable[[], object], second: Callable[[], object], calls: int):
    """Seconds of each of ``calls`` pairs of calls, the order flipped every pair (after two warm-up pairs): each pair
    meets the machine in the same spell, however short (``pair_ratios``)."""
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ValueError(f"calls must be a positive int; got {calls!r}")
    for _ in range(2):
        first(), second()
    a: List[float] = []
    b: List[float] = []
    for i in range(calls):
        for fn, times in ((first, a), (second, b)) if i % 2 == 0 else ((second, b), (first, a)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return np.array(a), np.array(b)


def pair_ratios(ours, theirs) -> dict:
    """``theirs / ours`` from paired times (``time_in_pairs``): of the medians; the median of the pairs' ratios; and
    that median over the third of the pairs where ``theirs`` ran fastest (the machine quiet) and over the third where
    it ran slowest (busy).  On a shared machine the two can differ: where another tenant's work shares a core, one
    library's kernels may lose more of their speed than the other's (bench/RESULTS.md, stop 54)."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    if ours.ndim != 1 or ours.shape != theirs.shape or ours.size == 0 or not (ours > 0).all() or not (theirs > 0).all():
        raise ValueError(f"ours and theirs: expected two equally long 1-D sequences of positive times; got shapes "
                         f"{ours.shape} and {theirs.shape}")
    ratio = theirs / ours
    quiet, busy = np.quantile(theirs, [1 / 3, 2 / 3])
    return {"medians": float(np.median(theirs) / np.median(ours)), "pairs": float(np.median(ratio)),
            "quiet": float(np.median(ratio[theirs <= quiet])), "busy": float(np.median(ratio[theirs >= busy]))}


def summary(seconds: List[float]) -> dict:
    a = np.asarray(seconds)
    return {"median_ms": float(np.median(a) * 1e3), "min_ms": float(a.min() * 1e3), "calls": int(a.size)}


def gemm_peak_gflops(dtype: str, threads: int, size: int = 1024, repeats: int = 3) -> float:
    """The yardstick: square GEMM throughput (GFLOP/s) of the BLAS the kernels call
    (SciPy's, through the kernels' own shim), with ``threads`` BLAS threads; the best of
    ``repeats`` measurements of a few calls each."""
    from .._core.blasbench import gemm_flops_per_second

    with threadpool_limits(threads, user_api="blas"):
        gemm_flops_per_second(size, np.dtype(dtype).type, 1)  # warm-up
        return max(gemm_flops_per_second(size, np.dtype(dtype).type, 3) for _ in range(repeats)) / 1e9


def fma_ceiling_gflops(dtype: str, threads: int, repeats: int = 3) -> float:
    """The arithmetic ceiling (GFLOP/s) of ``threads`` cores: only independent vector FMAs on registers
    (``blasbench.fma_ceiling_flops_per_second``), the best of ``repeats``.  No GEMM, in any library, beats
    it; 0.0 where it is not measured."""
    from .._core.blasbench import fma_ceiling_flops_per_second

    return max(fma_ceiling_flops_per_second(np.dtype(dtype).type, threads) for _ in range(repeats)) / 1e9
