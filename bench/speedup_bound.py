"""How fast rnnfast would have to run to beat PyTorch by a given factor, against the fastest GEMM this machine runs.

A layer's products are a fixed number of multiply-adds (``rnnfast.benchmarks.cases.flops``), so no implementation
takes less time than those flops at the best GEMM rate the cores reach.  For each case this measures PyTorch and
rnnfast side by side (``rnnfast bench``'s runner: medians over alternating blocks), then the best GEMM rate with
the same threads: the largest of OpenBLAS's square sgemm, the packed micro-kernel's square product and PyTorch's own
``torch.mm`` (MKL in its x86 wheels; the GEMM a faster peer could use), each at n=2048 with hot caches, the best of
several calls; and the FMA ceiling.  A target above the best GEMM rate cannot be met by
any code on this machine: the gate maths and the sequential steps of small products come on top.

    python bench/speedup_bound.py [--target 1.1] [--threads 1 2] [--passes forward train]
                                  [--sizes 16,35,256 32,35,256 64,35,512 128,35,512 128,35,1024] [--blocks 5]
                                  [--ragged]

A size is ``N,T,H`` (D = H).  ``--ragged``: batches with lengths uniform in [T/4, T], PyTorch's side packed
(``PackedSequence``); the flops are those of the valid steps, ``sum(lengths)`` rows, so the needed rate is what a
call computing only its sequences' rows must reach (the issue asks ``--target 2`` there).  What it measured:
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

SIZES = ["16,35,256", "32,35,256", "64,35,512", "128,35,512", "128,35,1024"]


def best_gflops(fn, n: int, calls: int) -> float:
    """GF/s of the best of ``calls`` calls of ``fn``, an n x n x n product."""
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def microkernel_gflops(threads: int, n: int = 2048, calls: int = 5) -> float:
    """The packed micro-kernel's square product, the best of ``calls``."""
    from rnnfast._core import products

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    with threadpool_limits(1, user_api="blas"):
        return best_gflops(lambda: products.matmul(a, b, num_threads=threads), n, calls)


def torch_mm_gflops(threads: int, n: int = 2048, calls: int = 5) -> float:
    """PyTorch's ``torch.mm`` on the same square product, the best of ``calls`` (0 without PyTorch)."""
    try:
        import torch
    except ImportError:
        return 0.0
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)
        return best_gflops(lambda: torch.mm(a, b, out=out), n, calls)
    finally:
        torch.set_num_threads(before)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=1.1, help="the speed-up over PyTorch asked for")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--passes", nargs="+", default=["forward", "train"], choices=["forward", "train"])
    ap.add_argument("--sizes", nargs="+", default=SIZES)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--ragged", action="store_true", help="lengths uniform in [T/4, T]; PyTorch packs them")
    args = ap.parse_args(argv)
    from rnnfast.benchmarks import runner
    from rnnfast.benchmarks.cases import Case
    from rnnfast.benchmarks.timing import fma_ceiling_gflops, gemm_peak_gflops

    cases = []
    for size in args.sizes:
        N, T, H = (int(v) for v in size.split(","))
        cases += [Case("lstm", p, N, T, H, H, "float32", nt, args.ragged) for p in args.passes for nt in args.threads]
    result = runner.run(cases, ["rnnfast", "torch"], stream_sizes=(), blocks=args.blocks)
    best, ceiling = {}, {}
    for nt in args.threads:  # maxima: a slower measurement is a neighbour's burst, not the machine
        sgemm = max(gemm_peak_gflops("float32", nt), result["gemm_peak_gflops"]["float32"][str(nt)])
        micro = max(microkernel_gflops(nt) for _ in range(2))
        mm = max(torch_mm_gflops(nt) for _ in range(2))
        best[nt], ceiling[nt] = max(sgemm, micro, mm), fma_ceiling_gflops("float32", nt)
        print(f"{nt} thread(s): OpenBLAS sgemm {sgemm:.0f} GF/s, micro-kernel {micro:.0f} GF/s, "
              f"torch.mm {mm:.0f} GF/s, FMA ceiling {ceiling[nt]:.0f} GF/s")
    print(f"\n{'case':44s} {'torch':>7s} {'rnnfast':>8s} {'ratio':>6s} {'needed':>7s} {'% best GEMM':>12s} "
          f"{'% FMA':>6s}  verdict (GF/s; needed = {args.target}x torch)")
    for row in result["rows"]:
        c, r = row["case"], row["results"]
        if "gflops" not in r.get("torch", {}):
            print(f"{row['label']:44s} torch skipped: {r.get('torch', {}).get('skipped', '?')}")
            continue
        torch_gf, ours_gf = r["torch"]["gflops"], r["rnnfast"]["gflops"]
        needed = args.target * torch_gf
        share = needed / best[c["threads"]]
        verdict = "above the best GEMM: impossible" if share > 1 else f"needs {100 * share:.0f}% of it"
        label = f"{c['pass']} N={c['N']} H={c['H']} threads={c['threads']}"
        print(f"{label:44s} {torch_gf:7.0f} {ours_gf:8.0f} {ours_gf / torch_gf:6.2f} {needed:7.0f} "
              f"{100 * share:11.0f}% {100 * needed / ceiling[c['threads']]:5.0f}%  {verdict}")


if __name__ == "__main__":
    main()
