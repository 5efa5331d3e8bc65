"""The step-product paths of an LSTM, GRU or RNN against each other, on the same inputs, alternating rounds.

    python bench/step_paths.py [--cells lstm gru rnn] [--sizes N,T,H ...] [--threads 1 16] [--passes train forward]
                               [--rounds 5] [--dtype float64]

Paths: ``default`` (the plan's choice), ``blas`` (where the plan takes the micro-kernel: the plan's tiles of the
shape alone on OpenBLAS, the path it takes elsewhere, ``plan.blas_step_weights``), ``default-avx2`` (the same plan,
the micro-kernel's panels one at a time in 256-bit registers instead of two in 512-bit ones; needs AVX-512),
``row-major`` (the same plan, each thread's tiles visited row block by row block, where the plan visits them unit
block by unit block), ``microkernel`` (the step products on the packed micro-kernel with the plan's tiles),
``microkernel-uW`` (the same on unit blocks of W units, halved until there are as many tiles as threads),
``microkernel-RxW`` (on tiles of the whole batch, up to 128 rows, and unit blocks halved until there are as many
tiles as threads), ``microkernel-16rows`` (where the plan takes 32-row tiles on cores with two 512-bit FMA units,
``plan.TWO_FMA_UNITS_ROWS``: the same tiles 16 rows high, as elsewhere), ``unit-split`` (where the plan takes one
whole-width row block a thread above H = 512, ``plan.OWNED_MIN_ROWS``: the batch's 128-row blocks cut into unit
blocks, halved until there are as many tiles as threads), ``shape-tiles`` (where the plan's BLAS
tiles are not the shape's rule, ``plan.step_tiling``: the float64 RNN's; the shape's tiles on BLAS).  ``--paths`` picks
some.
Prints the median ms of each and its ratio to ``default``.  What it measured: ``bench/RESULTS.md``.
"""
import argparse
import time

import numpy as np

from rnnfast._core import driver
from rnnfast._core.dispatch import kernel_module
from rnnfast._core.plan import (CONSTANTS, SERIAL_MICROKERNEL_ROWS, TWO_FMA_UNITS_ROWS, StepPlan, _units_for_threads,
                                blas_step_weights, step_tiling)
from rnnfast.cells import GRU, LSTM, RNN

# the spec and its option (the GRU: reset after, as PyTorch)
CELLS = {"lstm": (LSTM, None), "gru": (GRU, True), "rnn": (RNN, "tanh")}

_kernels = kernel_module("kernels")


def _paths(gates, N, T, H, nt, need_grad, dtype=np.float32):
    base = StepPlan.choose(gates, N, T, H, dtype, nt, need_grad=need_grad)
    paths = {"default": (base, True)}
    if dtype == np.float32:  # the micro-kernel's two forms
        paths["default-avx2"] = (base, False)
    if base.step_weights == "microkernel":
        blas = blas_step_weights(gates, T, H, step_tiling(N, H)[1], np.dtype(dtype).itemsize)
        paths["blas"] = (StepPlan.choose(gates, N, T, H, dtype, nt, step_weights=blas), True)
    elif (base.rows, base.units) != step_tiling(N, H):
        rows, units = step_tiling(N, H)
        paths["shape-tiles"] = (StepPlan.choose(gates, N, T, H, dtype, nt, rows=rows, units=units), True)
    if dtype != np.float32:
        return paths
    if CONSTANTS["microkernel"] and H % 16 == 0:
        paths["microkernel"] = (StepPlan.choose(gates, N, T, H, np.float32, nt, step_weights="microkernel"), True)
        units, row_blocks = base.units - base.units % 16, -(-N // base.rows)
        while units > 16 and row_blocks * -(-H // units) < nt:
            units = max(16, units // 2 - units // 2 % 16)
        if units >= 16 and units != base.units:
            tiles = StepPlan.choose(gates, N, T, H, np.float32, nt, rows=base.rows, units=units,
                                    step_weights="microkernel")
            paths[f"microkernel-u{units}"] = (tiles, True)
        rows = min(N, 128)
        units = _units_for_threads(rows, H, N, H, nt)
        whole = StepPlan.choose(gates, N, T, H, np.float32, nt, rows=rows, units=units, step_weights="microkernel")
        paths[f"microkernel-{rows}x{units}"] = (whole, True)
    if base.step_weights == "microkernel" and base.rows == TWO_FMA_UNITS_ROWS and base.schedule == "owned_rows":
        paths["microkernel-16rows"] = (StepPlan.choose(gates, N, T, H, np.float32, nt, rows=16, units=base.units,
                                                       schedule="owned_rows", step_weights="microkernel"), True)
    if base.step_weights == "microkernel" and "one a thread" in base.why("tiles"):
        rows = min(N, SERIAL_MICROKERNEL_ROWS)
        units = _units_for_threads(rows, step_tiling(N, H)[1], N, H, nt)
        paths["unit-split"] = (StepPlan.choose(gates, N, T, H, np.float32, nt, rows=rows, units=units,
                                               step_weights="microkernel"), True)
    if base.tile_order == "unit_major":
        paths["row-major"] = (base.replace(tile_order="row_major"), True)
    return paths


def _call(cell, x, Wx, Wh, biases, dhs, plan, need_grad):
    spec, option = CELLS[cell]
    states = [None] * len(spec.state_names)
    hs, _, cache = driver.sequence_forward(spec, x, Wx, Wh, biases, states, None, option, plan.num_threads,
                                           plan=plan, need_grad=need_grad)
    if need_grad:
        driver.sequence_backward(spec, dhs, cache, states, f"{cell}_forward")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["lstm"], choices=sorted(CELLS))
    ap.add_argument("--sizes", nargs="+", default=["32,35,256", "64,35,512", "128,35,512"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--passes", nargs="+", default=["train", "forward"], choices=["train", "forward"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.2, help="per path per round")
    ap.add_argument("--paths", nargs="+", help="only these (by name; a trailing * matches a prefix), with default")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    wide = _kernels.use_wide_microkernel(True)
    print(f"AVX-512 micro-kernel: {'on' if wide else 'not on this CPU/build'}")
    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    for cell, size in [(cell, size) for cell in args.cells for size in args.sizes]:
        N, T, H = map(int, size.split(","))
        gates = CELLS[cell][0].gates
        x = rng.standard_normal((N, T, H)).astype(dtype)
        Wx, Wh = [(rng.standard_normal((H, gates * H)) * 0.05).astype(dtype) for _ in range(2)]
        biases = [np.zeros(gates * H, dtype) for _ in CELLS[cell][0].bias_names]
        dhs = rng.standard_normal((N, T, H)).astype(dtype)
        for pas in args.passes:
            need_grad = pas == "train"
            for nt in args.threads:
                paths = _paths(gates, N, T, H, nt, need_grad, dtype)
                if not wide:
                    paths.pop("default-avx2", None)
                if args.paths:
                    keep = lambda name: name == "default" or any(  # noqa: E731
                        name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in args.paths)
                    paths = {name: path for name, path in paths.items() if keep(name)}
                times = {name: [] for name in paths}
                reps = {}
                for name, (plan, w) in paths.items():  # warm up; calls per block
                    _kernels.use_wide_microkernel(w)
                    t0 = time.perf_counter()
                    _call(cell, x, Wx, Wh, biases, dhs, plan, need_grad)
                    reps[name] = max(1, int(args.seconds / (time.perf_counter() - t0)))
                for _ in range(args.rounds):
                    for name, (plan, w) in paths.items():
                        _kernels.use_wide_microkernel(w)
                        t0 = time.perf_counter()
                        for _ in range(reps[name]):
                            _call(cell, x, Wx, Wh, biases, dhs, plan, need_grad)
                        times[name].append((time.perf_counter() - t0) / reps[name])
                _kernels.use_wide_microkernel(wide)
                med = {name: float(np.median(v)) for name, v in times.items()}
                row = "  ".join(f"{name} {1e3 * t:.2f} ms ({med['default'] / t:.2f}x)" for name, t in med.items())
                print(f"{cell} {pas:7s} N={N} T={T} H={H} {dtype} thr={nt}: {row}", flush=True)


if __name__ == "__main__":
    main()
