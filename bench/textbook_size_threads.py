"""A training step at the textbook's size (N=10, T=5, D=H=100, float32) with the default thread count
against one thread, in alternating rounds: a call too small to pay for a thread team should not be slower
for having one.

    python bench/textbook_size_threads.py [--cells rnn gru lstm] [--rounds 21] [--calls 100] [--neighbours]

Prints, per cell, the median microseconds of each and their ratio (default / one thread).  With
``--neighbours``, then the default threads' mean per call with a NumPy process busy on every core (single-threaded
matrix products, one process per core), against the one-thread idle median: a busy machine should cost the call
at most 2x.  The mean, as a stalled join costs whole milliseconds in a few calls that a median leaves out.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
import timeit

import numpy as np

import rnnfast
from rnnfast._core.threads import available_cores
from rnnfast.cells import CELLS


def step(cell: str, N=10, T=5, H=100):
    spec = CELLS[cell]
    G = spec.gates * H
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, H)).astype("f")
    Wx, Wh = ((rng.standard_normal((H, G)) * 0.1).astype("f") for _ in range(2))
    biases = [np.zeros(G, "f")] * len(spec.bias_names)
    dhs = np.ones((N, T, H), "f")
    forward, backward = getattr(rnnfast, f"{cell}_forward"), getattr(rnnfast, f"{cell}_backward")

    def call(num_threads):
        *_, cache = forward(x, Wx, Wh, *biases, num_threads=num_threads)
        backward(dhs, cache)
    return call


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"], choices=sorted(CELLS))
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--neighbours", action="store_true",
                    help="then time the default threads with a NumPy process busy on every core")
    args = ap.parse_args(argv)
    idle = {}
    for cell in args.cells:
        call = step(cell)
        times = {None: [], 1: []}
        for r in range(args.rounds):
            for nt in (None, 1) if r % 2 else (1, None):
                best = min(timeit.repeat(lambda: call(nt), number=args.calls, repeat=3))
                times[nt].append(best / args.calls * 1e6)
        default, one = statistics.median(times[None]), statistics.median(times[1])
        idle[cell] = one
        print(f"{cell}: default threads {default:.1f} us, one thread {one:.1f} us, default/one {default / one:.3f}")
    if args.neighbours:
        with busy_neighbours(available_cores()):
            for cell in args.cells:
                call = step(cell)
                spent = sum(timeit.repeat(lambda: call(None), number=args.calls, repeat=args.rounds))
                mean = spent / (args.calls * args.rounds) * 1e6
                print(f"{cell}, a NumPy process busy on every core: default threads {mean:.1f} us (mean), "
                      f"{mean / idle[cell]:.2f}x the one-thread idle time")


_NEIGHBOUR = "import numpy as np\na = np.random.rand(200, 200)\nwhile True:\n    a @ a"


@contextlib.contextmanager
def busy_neighbours(count: int):
    """``count`` processes, each multiplying NumPy matrices on one BLAS thread until the block ends."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", _NEIGHBOUR], env=env) for _ in range(count)]
    try:
        time.sleep(1.0)  # started, and seen by the load sampling (rnnfast._core.busy_cores)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
