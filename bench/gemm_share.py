"""How much of an LSTM training step is spent outside GEMM, and how close the kernels run to GEMM peak.

Replays the exact sequence of BLAS calls that ``rnnfast.lstm_forward`` + ``lstm_backward`` make
(same shapes, same tiles) on one thread, and compares with the kernels' own one-thread time.
The replay runs on cache-hot buffers, so its time is a lower bound for the GEMMs and the
"outside GEMM" share is an upper bound.  Where the kernels run their steps on packed weights
(float32, tiles too large for OpenBLAS's small-matrix path: H ~1024, ``src/packed_gemm.h``), and
the all-step products on the same micro-kernel (float32, every side >= 256), the replay still times
those products as the BLAS calls they replace.

    python bench/gemm_share.py [--dtype float32] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import rnnfast
from rnnfast._core import blasbench as _blasbench
from rnnfast._core.plan import step_tiling

GRID = [(1, 100, 64), (16, 35, 128), (32, 35, 256), (64, 35, 512), (128, 35, 1024)]


def tiled(ta, tb, m, n, k):
    _, _, tm, tn = _blasbench.output_grid(m, n)  # as in all_steps.tiled_gemm
    return [(ta, tb, min(tm, m - i), min(tn, n - j), k) for i in range(0, m, tm) for j in range(0, n, tn)]


def lstm_gemm_calls(N, T, D, H):
    """The BLAS calls of one forward + backward, in order."""
    G = 4 * H
    bn, ch = step_tiling(N, H)
    tiles = [(min(bn, N - n0), min(ch, H - j0)) for n0 in range(0, N, bn) for j0 in range(0, H, ch)]
    calls = tiled(0, 0, T * N, G, D)
    for _ in range(T):  # forward steps
        for rows, cols in tiles:
            calls += [(0, 0, rows, G, H)] if cols == H else [(0, 0, rows, cols, H)] * 4
    for _ in range(T):  # backward steps
        for rows, cols in tiles:
            calls += [(0, 0, rows, H, G)] if cols == H else [(0, 0, rows, cols, H)] * 4
    calls += tiled(0, 1, T * N, D, G) + tiled(1, 0, D, G, T * N) + tiled(1, 0, H, G, T * N)
    return calls


def median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    with threadpool_limits(1, user_api="blas"):
        peak = _blasbench.gemm_flops_per_second(1024, dtype)
    print(f"one-thread GEMM peak (1024^3, {dtype}): {peak / 1e9:.1f} GFLOP/s")
    print(f"{'N':>5} {'T':>4} {'D=H':>5} | {'kernel ms':>10} {'GEMM replay ms':>15} {'outside GEMM':>13} "
          f"{'kernel GF/s':>12} {'% of peak':>10}")
    rng = np.random.default_rng(0)
    for N, T, H in GRID:
        D = H
        x = rng.standard_normal((N, T, D)).astype(dtype)
        Wx = (rng.standard_normal((D, 4 * H)) * 0.05).astype(dtype)
        Wh = (rng.standard_normal((H, 4 * H)) * 0.05).astype(dtype)
        b = np.zeros(4 * H, dtype)
        dhs = np.ones((N, T, H), dtype)

        def step():
            cache = rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=1)[3]
            rnnfast.lstm_backward(dhs, cache)

        repeats = args.repeats if N * H < 64 * 512 else max(2, args.repeats // 2)
        kernel = median_seconds(step, repeats)
        with threadpool_limits(1, user_api="blas"):
            replay = _blasbench.sequence_seconds(lstm_gemm_calls(N, T, D, H), dtype, reps=repeats)
        flops = 3 * 2 * N * T * (D + H) * 4 * H
        print(f"{N:5d} {T:4d} {H:5d} | {kernel * 1e3:10.2f} {replay * 1e3:15.2f} {1 - replay / kernel:12.0%} "
              f"{flops / kernel / 1e9:12.1f} {flops / kernel / peak:10.0%}")


if __name__ == "__main__":
    main()
