"""Benchmarks as a product: ``rnnfast bench`` and the ``bench/`` pytest-benchmark suites.

- ``cases``: what is measured (cell, pass, N, T, D, H, dtype, threads) and its flop count.
- ``backends``: the same workload prepared for rnnfast, its NumPy reference, PyTorch, thinc.
- ``timing``: warm-up, alternating blocks, medians; the machine's GEMM peak (the yardstick).
- ``streaming``: per-token latency of batch-1 LSTM generation.
- ``report``: machine and library versions, the table, JSON and the PNG.
- ``runner``: the grid run that ``rnnfast bench`` prints.
"""
from .cases import Case, flops
from .runner import run

__all__ = ["Case", "flops", "run"]
