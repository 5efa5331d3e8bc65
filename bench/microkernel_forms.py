"""The packed micro-kernel's square product in its AVX-512 and AVX2 forms, against OpenBLAS's sgemm, float32.

    python bench/microkernel_forms.py [--threads 1 16] [--n 2048]

Best of five calls each, hot caches.  Where the two forms run at the same speed (AMD Zen 4 splits each 512-bit
operation in two) and OpenBLAS's too, the product is as fast as this machine's GEMM; a CPU with two full 512-bit
FMA units should show the AVX-512 form ahead.  What it measured: ``bench/RESULTS.md``.
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rnnfast._core import products
from rnnfast._core.dispatch import kernel_module


def _best_gflops(product, n, calls=5):
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--n", type=int, default=2048)
    args = ap.parse_args(argv)
    modules = [kernel_module(name) for name in ("kernels", "mathfuncs")]  # each keeps its own switch
    wide = modules[0].use_wide_microkernel(True)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((args.n, args.n)).astype(np.float32) for _ in range(2))
    try:
        for nt in args.threads:
            with threadpool_limits(nt, user_api="blas"):
                row = {"OpenBLAS sgemm": _best_gflops(lambda: a @ b, args.n)}
            with threadpool_limits(1, user_api="blas"):
                for form in (("AVX-512", True), ("AVX2", False)) if wide else (("AVX2", False),):
                    for m in modules:
                        m.use_wide_microkernel(form[1])
                    row[f"micro-kernel {form[0]}"] = _best_gflops(lambda: products.matmul(a, b, num_threads=nt),
                                                                  args.n)
            print(f"threads {nt}: " + "  ".join(f"{k} {v:.0f} GF/s" for k, v in row.items()), flush=True)
    finally:
        for m in modules:
            m.use_wide_microkernel(wide)


if __name__ == "__main__":
    main()
