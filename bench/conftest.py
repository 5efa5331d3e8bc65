"""Benchmarks (not part of the test run): pytest bench --benchmark-only

Each benchmark group is one point (cell, pass, N, T, D, H, dtype, threads); inside a group
rnnfast, its NumPy reference, PyTorch and thinc (when installed) run on the same inputs, with
every thread pool pinned to the same count, side by side.  The workloads are the ones
``rnnfast bench`` times (``rnnfast.benchmarks``).

    RNNFAST_BENCH_QUICK=1 pytest bench --benchmark-only     # the first three sizes only
"""
import os

from rnnfast._core.threads import available_cores
from rnnfast.benchmarks.cases import CORE_SIZES, QUICK_SIZES

SIZES = QUICK_SIZES if os.environ.get("RNNFAST_BENCH_QUICK") else CORE_SIZES
THREADS = sorted({1, available_cores()})
