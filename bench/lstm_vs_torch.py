"""LSTM training step (forward + backward), rnnfast vs PyTorch's nn.LSTM, side by side in one process.

    python bench/lstm_vs_torch.py [--threads 2] [--sizes 0 1 2 3 4]

Sizes index the core grid (N, T, D=H): (1,100,64) (16,35,128) (32,35,256) (64,35,512) (128,35,1024).
Float32, the same inputs for both, BLAS and torch pinned to the same thread count; three alternating
blocks of timed rounds, the median of the block medians reported with GFLOP/s and the ratio
(PyTorch time / rnnfast time: above 1 means rnnfast is faster).
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import rnnfast

GRID = [(1, 100, 64), (16, 35, 128), (32, 35, 256), (64, 35, 512), (128, 35, 1024)]


def median_ms(fn, rounds):
    fn()
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="*", default=list(range(len(GRID))))
    args = ap.parse_args()
    import torch  # the [torch] extra

    nt = args.threads
    torch.set_num_threads(nt)
    for k in args.sizes:
        N, T, H = GRID[k]
        D = H
        rng = np.random.default_rng(0)
        x = rng.standard_normal((N, T, D), dtype=np.float32)
        Wx = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(np.float32)
        Wh = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
        b = np.zeros(4 * H, np.float32)
        dhs = np.ones((N, T, H), np.float32)

        def ours():
            cache = rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=nt)[3]
            rnnfast.lstm_backward(dhs, cache)

        module = torch.nn.LSTM(D, H, batch_first=True)
        xt, g = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dhs)

        def theirs():
            module.zero_grad(set_to_none=True)
            out, _ = module(xt)
            out.backward(g)

        rounds = 3 if N * H > 64 * 512 else 15
        ours_ms, theirs_ms = [], []
        with threadpool_limits(nt):
            for _ in range(3):  # alternate blocks so that drift on a shared machine hits both
                ours_ms.append(median_ms(ours, rounds))
                theirs_ms.append(median_ms(theirs, rounds))
        a, t = np.median(ours_ms), np.median(theirs_ms)
        flops = 2 * N * T * (D + H) * 4 * H * 3
        print(f"N={N:4d} T={T:3d} H={H:5d}: rnnfast {a:9.2f} ms ({flops / a / 1e6:5.0f} GF/s)  "
              f"torch {t:9.2f} ms ({flops / t / 1e6:5.0f} GF/s)  ratio {t / a:.2f}", flush=True)


if __name__ == "__main__":
    main()
