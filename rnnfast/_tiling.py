"""How a step's (N, H) work is cut into tiles for the threads.

The tile shape decides every per-step GEMM shape, and so the bits of the
result: it is a function of the problem shape only, never of the thread
count.  The thread count only decides who runs which tile.

The sizes come from timing OpenBLAS (SkylakeX kernels) on the per-step GEMM
``(rows x H) @ (H x cols)`` with one thread (GF/s, hot caches):

    H      rows x cols -> GF/s
    128    16x64: 107   32x64: 109   128x128: 86
    256    16x64: 109   32x64: 110   64x256: 74    128x256: 91
    512    16x64: 116   32x64: 67    64x256: 82    128x256: 91
    1024   16x64: 50    64x128: 81   128x128: 90   128x256: 91

Tiles with rows*cols*H <= 1e6 take OpenBLAS's unpacked small-matrix path and
run fastest; above that, large tiles amortize the packing.

From N = 32 on, H <= 256 takes 16-row blocks (as fast as 32 rows): with two or
more row blocks the threads can each own whole blocks for a window of steps
and skip the per-step barriers (``kernel_common.owns_rows``; LSTM training,
N=32, H=256, 2 threads: 27.96 -> 25.81 ms, medians of 10 alternating runs).

Below N = 32 (below 64 for H <= 64), the batch is cut into two row blocks, so that
with two threads each owns one and no step waits at a barrier, where a block has at
least H/32 rows (with fewer, each thread's pass over all the weights costs more than
the barrier it saves); units in one chunk where the block's whole product stays on
OpenBLAS's small-matrix path.  LSTM training, 2 threads, against one row block with
shared tiles, alternating in one process: N=16, H=64 0.80x the time; N=32, H=64
0.86x; N=8, H=128 0.91x; N=16, H=128 0.92x (1 thread 0.97x); N=24, H=128 0.95x;
N=16, H=256 0.96x; but N=2, H=128 1.07x and N=6, H=256 1.24x, hence the H/32 rows;
N=8, H=512 1.02x and N=4, H=1024 1.5x, hence H <= 256 (the weights fit in L2).

H > 512 takes 128-unit chunks at every N: as fast as 256 on two threads (LSTM
training, N=128, H=1024: 1493 vs 1506 ms, medians of 7 alternating rounds) and
twice the tiles for a many-core machine (8 per step instead of 4).
"""
from __future__ import annotations

from typing import Tuple

# Below this many flops per step, a parallel region costs more than it saves.
_MIN_PARALLEL_STEP_FLOPS = 200_000
# OpenBLAS's unpacked small-matrix path takes GEMMs of up to this many multiply-adds.
_SMALL_GEMM_MACS = 1_000_000


def step_tiling(N: int, H: int) -> Tuple[int, int]:
    """(block_n, chunk_h): batch rows and hidden units per tile."""
    half = -(-N // 2)
    if H <= 64:
        return max(min(half, 32), 1), H
    if H <= 256:
        if N < 32 and 32 * half >= H:  # two row blocks, one per thread: no barriers
            return half, (H if half * 4 * H * H <= _SMALL_GEMM_MACS else 64)
        return (16 if N >= 32 else max(N, 1)), 64
    if H <= 512:
        return max(min(N, 16), 1), 64
    return max(min(N, 128), 1), 128


def run_steps_in_parallel(N: int, H: int, gates: int, num_threads: int) -> bool:
    block_n, chunk_h = step_tiling(N, H)
    tiles = -(-N // block_n) * -(-H // chunk_h)
    return num_threads > 1 and tiles > 1 and 2 * N * H * gates * H >= _MIN_PARALLEL_STEP_FLOPS


def stepper_chunk(H: int) -> int:
    """Hidden units per chunk of a streaming step (``LSTMStepper``).

    Each chunk is one matrix-vector product over its own packed (D+H, 4*chunk)
    weight panel (column strips, ``kernel_common.row_product``); a thread keeps
    the same chunks at every step, so small panels stay in its cache.
    Chosen from H only, so that the bits never depend on the thread count.
    """
    if H <= 32:
        return H
    return 32 if H <= 512 else 64
