"""How a step's (N, H) work is cut into tiles for the threads.

The tile shape decides every per-step GEMM shape, and so the bits of the
result: it is a function of the problem shape only, never of the thread
count.  The thread count only decides who runs which tile.
"""
from __future__ import annotations

from typing import Tuple

# Below this many flops per step, a parallel region costs more than it saves.
_MIN_PARALLEL_STEP_FLOPS = 200_000


def step_tiling(N: int, H: int) -> Tuple[int, int]:
    """(block_n, chunk_h): batch rows and hidden units per tile."""
    block_n = N if N <= 128 else 64
    if H <= 64:
        chunk_h = H
    elif H <= 256:
        chunk_h = 64
    else:
        chunk_h = 128
    return max(block_n, 1), chunk_h


def run_steps_in_parallel(N: int, H: int, gates: int, num_threads: int) -> bool:
    block_n, chunk_h = step_tiling(N, H)
    tiles = -(-N // block_n) * -(-H // chunk_h)
    return num_threads > 1 and tiles > 1 and 2 * N * H * gates * H >= _MIN_PARALLEL_STEP_FLOPS
