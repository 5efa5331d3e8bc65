"""The time a call spends around its kernel: ``rnnfast.lstm_forward`` (inference or training) and
``lstm_backward``, per call, split into the compiled kernel and what the Python driver does before and
after it (checks, plan, layout copies, buffers), with the pieces that take most.  On many cores the kernel
shrinks and this part does not, so it sets a floor under small calls.

    python bench/around_kernel.py --sizes 32,35,256 64,35,512 --threads 2 [--calls 300] [--torch]

Medians over ``--calls`` calls after a warm-up; ``--torch`` adds ``torch.nn.LSTM``'s time for the same call
(``no_grad`` for inference) in the same run.  The pieces are timed by wrapping the driver's helpers, which
adds a few microseconds each; the call and kernel columns are timed without the wrappers.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import time

import numpy as np

import rnnfast
from rnnfast._core import driver

PIECES = ["check_sequence_forward", "check_sequence_backward", "check_cache", "time_major", "checked_in_place",
          "state_history", "kernel_outputs", "batch_major", "transposed", "single_threaded_blas"]


@contextlib.contextmanager
def timed_pieces(acc, pieces=True):
    """Wrap the driver's kernels (and with ``pieces`` its helpers) so that each call adds its time to ``acc``."""
    saved = {}

    def wrap(name, f):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                acc[name] += time.perf_counter() - t
        return timed

    class Kernels:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            f = getattr(self.real, name)
            return wrap("kernel", f) if name in ("forward", "backward") else f

    saved["_kernels"] = driver._kernels
    driver._kernels = Kernels(driver._kernels)
    if pieces:
        for name in PIECES:
            saved[name] = getattr(driver, name)
            setattr(driver, name, wrap(name, saved[name]))
        saved["plan"] = driver.StepPlan.choose
        driver.StepPlan.choose = wrap("plan", saved["plan"])
    try:
        yield
    finally:
        if "plan" in saved:
            driver.StepPlan.choose = saved.pop("plan")
        for name, f in saved.items():
            setattr(driver, name, f)


def measure(call, calls, pieces):
    """Median ms per call: (call, kernel, {piece: ms})."""
    totals, kernels, parts = [], [], collections.defaultdict(list)
    with timed_pieces(collections.Counter(), pieces=False):
        call()  # warm-up
    for _ in range(calls):
        acc = collections.Counter()
        with timed_pieces(acc, pieces=False):
            t = time.perf_counter()
            call()
            totals.append(time.perf_counter() - t)
        kernels.append(acc["kernel"])
    if pieces:
        for _ in range(max(calls // 3, 5)):
            acc = collections.Counter()
            with timed_pieces(acc):
                call()
            for name in acc:
                parts[name].append(acc[name])
    ms = lambda v: float(np.median(v)) * 1e3  # noqa: E731
    return ms(totals), ms(kernels), ms(np.subtract(totals, kernels)), {k: ms(v) for k, v in parts.items()}


def torch_call(N, T, H, threads, need_grad):
    import torch
    torch.set_num_threads(threads)
    lstm = torch.nn.LSTM(H, H, batch_first=True)
    x = torch.randn(N, T, H, requires_grad=need_grad)
    if not need_grad:
        def run():
            with torch.no_grad():
                lstm(x)
        return run
    return lambda: lstm(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["32,35,256", "64,35,512"], help="N,T,H (D = H)")
    p.add_argument("--threads", nargs="+", type=int, default=[2])
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--torch", action="store_true", help="time torch.nn.LSTM's same call too")
    p.add_argument("--no-pieces", action="store_true")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print("ms per call, median; around = call - kernel")
    for size in args.sizes:
        N, T, H = (int(v) for v in size.split(","))
        x = rng.standard_normal((N, T, H)).astype(np.float32)
        Wx, Wh = ((rng.standard_normal((H, 4 * H)) * 0.05).astype(np.float32) for _ in range(2))
        b = np.zeros(4 * H, np.float32)
        dhs = rng.standard_normal((N, T, H)).astype(np.float32)
        cache = rnnfast.lstm_forward(x, Wx, Wh, b)[-1]
        for threads in args.threads:
            calls = {
                "forward (inference)": lambda: rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=threads, need_grad=False),
                "forward (training)": lambda: rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=threads),
                "backward": lambda: rnnfast.lstm_backward(dhs, cache),
            }
            for name, call in calls.items():
                if name == "backward":  # the cache's plan fixes the threads: a forward pass on these
                    cache = rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=threads)[-1]
                total, kernel, around, parts = measure(call, args.calls, not args.no_pieces)
                line = (f"N={N} T={T} H={H} threads={threads} {name:20s} call {total:7.3f}  kernel {kernel:7.3f}  "
                        f"around {around:6.3f} ({100 * around / total:4.1f}%)")
                if args.torch and name != "backward":
                    tcall = torch_call(N, T, H, threads, name == "forward (training)")
                    for _ in range(5):
                        tcall()
                    tt = []
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        tcall()
                        tt.append(time.perf_counter() - t)
                    line += f"  torch {np.median(tt) * 1e3:7.3f}"
                print(line)
                top = sorted(((v, k) for k, v in parts.items() if k != "kernel"), reverse=True)[:5]
                if top:
                    print("    " + ", ".join(f"{k} {v:.3f}" for v, k in top))


if __name__ == "__main__":
    main()
