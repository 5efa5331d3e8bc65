"""The LSTM's products on three GEMMs: OpenBLAS (SciPy's, what ``rnnfast bench`` calls the GEMM peak), MKL
(``torch.mm`` in PyTorch's x86 wheels, the library beside oneDNN) and rnnfast's packed micro-kernel
(``products.matmul``), float32, with the FMA ceiling beside them.

    python bench/gemm_libraries.py [--threads 1 2] [--sizes 16,35,256 32,35,256 ...] [--rounds 9]

For each size ``N,T,H`` (D = H) the three products over all steps that a training call makes: the input product
(N*T x D by D x 4H, the largest product of an inference call too), dx (N*T x 4H by 4H x D) and a weight gradient
(x transposed, D x N*T, by N*T x 4H).  The steps' own products are left out: rnnfast packs a call's step weights
once, which ``products.matmul`` (packing B on every call) does not show.  Each round times every library once on
each shape (hot caches, outputs written in place, calls for at least 50 ms), alternating, with a pause between
libraries (``PAUSE``) so that the last one's threads have stopped spinning and do not take a core from the next;
medians over the rounds, in GF/s.  A target that needs more than the fastest of these for a whole LSTM call cannot
be met on the machine: ``bench/speedup_bound.py`` draws that line.  What it measured: ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

SIZES = ["16,35,256", "32,35,256", "64,35,512", "128,35,512", "128,35,1024"]
PAUSE = 0.2  # seconds between libraries: OpenBLAS's workers spin for up to 2^28 cycles, OpenMP teams for less


def timed(fn, flops: float, min_seconds: float = 0.05) -> float:
    """GF/s of ``fn`` over enough calls to take ``min_seconds``."""
    fn()
    calls = max(1, int(min_seconds * 150e9 / flops))  # at about one core's GEMM rate
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return flops * calls / (time.perf_counter() - t0) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", nargs="+", default=SIZES)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    from rnnfast._core import products
    from rnnfast.benchmarks.timing import fma_ceiling_gflops

    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    shapes = []
    for size in args.sizes:
        N, T, H = (int(v) for v in size.split(","))
        shapes += [(f"input product {N}x{T}x{H}", False, N * T, H, 4 * H), (f"dx {N}x{T}x{H}", False, N * T, 4 * H, H),
                   (f"weight gradient {N}x{T}x{H}", True, H, N * T, 4 * H)]
    for nt in args.threads:
        print(f"{nt} thread(s): FMA ceiling {fma_ceiling_gflops('float32', nt):.0f} GF/s", flush=True)
        print(f"  {'product':34s} {'m x k x n':>18s} {'OpenBLAS':>9s} {'MKL':>7s} {'rnnfast':>8s}")
        if torch is not None:
            before = torch.get_num_threads()
            torch.set_num_threads(nt)
        try:
            for label, trans_a, m, k, n in shapes:
                a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
                b = rng.standard_normal((k, n)).astype(np.float32)
                out = np.empty((m, n), np.float32)
                op_a = a.T if trans_a else a
                runs = {"OpenBLAS": lambda: np.matmul(op_a, b, out=out),
                        "rnnfast": lambda: products.matmul(a, b, trans_a=trans_a, num_threads=nt, out=out)}
                if torch is not None:
                    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
                    op_ta = ta.t() if trans_a else ta
                    runs["MKL"] = lambda: torch.mm(op_ta, tb, out=tout)
                rates = {name: [] for name in runs}
                flops = 2.0 * m * k * n
                for _ in range(args.rounds):
                    for name, fn in runs.items():
                        time.sleep(PAUSE)
                        if name == "OpenBLAS":
                            with threadpool_limits(nt, user_api="blas"):
                                rates[name].append(timed(fn, flops))
                        else:
                            rates[name].append(timed(fn, flops))
                med = {name: statistics.median(r) for name, r in rates.items()}
                mkl = f"{med['MKL']:7.0f}" if "MKL" in med else f"{'-':>7s}"
                print(f"  {label:34s} {f'{m} x {k} x {n}':>18s} {med['OpenBLAS']:9.0f} {mkl} {med['rnnfast']:8.0f}",
                      flush=True)
        finally:
            if torch is not None:
                torch.set_num_threads(before)


if __name__ == "__main__":
    main()
