"""The packed micro-kernel's square product in its AVX-512 and AVX2 forms, against OpenBLAS's sgemm, float32.

    python bench/microkernel_forms.py [--threads 1 16] [--n 2048]

The micro-kernel as ``bench/speedup_bound.py`` times it (best of five calls, hot caches), OpenBLAS as ``rnnfast
bench``'s header does (SciPy's BLAS, the one the kernels call).  Where the two forms run at the same speed (AMD
Zen 4 splits each 512-bit operation in two) and OpenBLAS's too, the product is as fast as this machine's GEMM; a
CPU with two full 512-bit FMA units should show the AVX-512 form ahead.  What it measured: ``bench/RESULTS.md``.
"""
import argparse

from speedup_bound import microkernel_gflops  # bench/ is on sys.path when this script runs

from rnnfast._core.dispatch import kernel_module
from rnnfast.benchmarks.timing import gemm_peak_gflops


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--n", type=int, default=2048)
    args = ap.parse_args(argv)
    modules = [kernel_module(name) for name in ("kernels", "mathfuncs")]  # each keeps its own switch
    wide = modules[0].use_wide_microkernel(True)
    forms = (("AVX-512", True), ("AVX2", False)) if wide else (("AVX2", False),)
    try:
        for nt in args.threads:
            row = {"OpenBLAS sgemm": gemm_peak_gflops("float32", nt)}
            for name, on in forms:
                for m in modules:
                    m.use_wide_microkernel(on)
                row[f"micro-kernel {name}"] = microkernel_gflops(nt, args.n)
            print(f"threads {nt}: " + "  ".join(f"{k} {v:.0f} GF/s" for k, v in row.items()), flush=True)
    finally:
        for m in modules:
            m.use_wide_microkernel(wide)


if __name__ == "__main__":
    main()
