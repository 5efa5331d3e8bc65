"""Benchmarks (not part of the test run): pytest bench --benchmark-only

Each benchmark group is one point (cell, pass, N, T, D=H, dtype, threads); inside a group
rnnfast, the NumPy reference and PyTorch (when installed) run on the same inputs, with the
same thread count, side by side.
"""
import os

import numpy as np
import pytest

GRID = [(1, 100, 64), (16, 35, 128), (32, 35, 256), (64, 35, 512), (128, 35, 1024)]
if os.environ.get("RNNFAST_BENCH_QUICK"):
    GRID = GRID[:3]


@pytest.fixture(scope="session")
def torch_or_skip():
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed (pip install torch==2.13.0 or rnnfast[torch])")
    return torch
