"""An LSTM training step (N=16, T=35, H=128, float32) called from the main thread and from other Python
threads, in the orders a server or a notebook produces them; each scenario in a fresh process.

    python bench/python_threads.py [--threads 2] [--calls 40]

Scenarios: ``main`` (the main thread only), ``other`` (one other thread only), ``main,other`` (the main
thread first, then another thread, twice), ``main1,other`` (the main thread on one OpenMP thread, then
another thread on ``--threads``).  Prints the median milliseconds of a step in each phase.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time

SCENARIOS = ("main", "other", "main,other", "main1,other")


def _steps(num_threads: int, calls: int) -> float:
    import numpy as np

    import rnnfast

    N, T, H = 16, 35, 128
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, H)).astype("f")
    Wx, Wh = ((rng.standard_normal((H, 4 * H)) * 0.1).astype("f") for _ in range(2))
    b, dhs = np.zeros(4 * H, "f"), np.ones((N, T, H), "f")
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        *_, cache = rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=num_threads)
        rnnfast.lstm_backward(dhs, cache)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _in_thread(num_threads: int, calls: int) -> float:
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("ms", _steps(num_threads, calls)))
    worker.start()
    worker.join()
    return out["ms"]


def run_scenario(name: str, threads: int, calls: int) -> str:
    if name == "main":
        return ", ".join(f"main {_steps(threads, calls):.2f}" for _ in range(2))
    if name == "other":
        return ", ".join(f"other {_in_thread(threads, calls):.2f}" for _ in range(2))
    if name == "main,other":
        return ", ".join(f"main {_steps(threads, calls):.2f}, other {_in_thread(threads, calls):.2f}"
                         for _ in range(2))
    return f"main on 1 thread {_steps(1, calls):.2f}, other {_in_thread(threads, calls):.2f}, " \
           f"other {_in_thread(threads, calls):.2f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)  # one, in this process
    args = ap.parse_args(argv)
    if args.scenario:
        print(run_scenario(args.scenario, args.threads, args.calls))
        return
    for name in SCENARIOS:  # each in a fresh process: OpenMP's and OpenBLAS's thread pools start anew
        out = subprocess.run([sys.executable, __file__, "--scenario", name, "--threads", str(args.threads),
                              "--calls", str(args.calls)], capture_output=True, text=True)
        print(f"{name:12s} {out.stdout.strip() or out.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()
