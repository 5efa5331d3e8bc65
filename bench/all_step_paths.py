"""The all-step products' two paths against each other, float32: the packed micro-kernel and BLAS tiles (BLAS pinned
to one thread, as inside the kernels), on shapes with one short side -- where ``PACKED_MIN_SIDE``
(``src/all_steps.pxd``) chooses between them.

    python bench/all_step_paths.py [--threads 1 2] [--sides 16 32 48 64 128 192] [--rounds 3]

For each short side s: the input product of a call with D = s (2048 x 1024 x s), dx of one (2048 x s x 1024,
B transposed), a weight gradient with s rows (s x 1024 x 2048, A transposed) and a small call's input product
(560 x 4s x s).  Prints GF/s of both paths and the micro-kernel's speed over BLAS (medians over alternating
blocks, ``rnnfast.benchmarks.timing``).  What it measured: ``bench/RESULTS.md``.
"""
import argparse
import functools

import numpy as np
from threadpoolctl import threadpool_limits

from rnnfast._core.dispatch import kernel_module
from rnnfast.benchmarks.timing import summary, time_side_by_side

_mathfuncs = kernel_module("mathfuncs")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--sides", nargs="+", type=int, default=[16, 32, 48, 64, 128, 192])
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing blocks per path")
    args = ap.parse_args(argv)
    if not _mathfuncs.PACKED_GEMM:
        raise SystemExit("this build has no packed micro-kernel (float32, AVX2 + FMA)")
    rng = np.random.default_rng(0)
    with threadpool_limits(1, user_api="blas"):
        for nt in args.threads:
            for s in args.sides:
                for m, n, k, ta, tb in [(2048, 1024, s, False, False), (2048, s, 1024, False, True),
                                        (s, 1024, 2048, True, False), (560, min(4 * s, 512), s, False, False)]:
                    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
                    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
                    times = time_side_by_side(
                        {path: functools.partial(_mathfuncs.product, a, b, ta, tb, None, nt, path)
                         for path in ("blas", "packed")}, blocks=args.rounds, block_seconds=0.05)
                    blas, packed = (summary(times[p])["median_ms"] * 1e-3 for p in ("blas", "packed"))
                    flops = 2.0 * m * n * k
                    print(f"threads={nt} m={m} n={n} k={k} trans_a={int(ta)} trans_b={int(tb)}: BLAS "
                          f"{flops / blas / 1e9:.0f} GF/s, micro-kernel {flops / packed / 1e9:.0f} GF/s, "
                          f"{blas / packed:.2f}x", flush=True)


if __name__ == "__main__":
    main()
