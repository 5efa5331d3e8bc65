"""One streaming step of the whole-row cells (the layer-normalized and projection LSTMs), batch 1: the compiled
stepper, its NumPy twin and, beside the layer-normalized ones, the plain LSTM's packed stepper of the same size,
in alternating rounds in one process.

    python bench/whole_row_steppers.py [--rounds 5] [--steps 200]

Prints the median microseconds per step of each.  What it measured: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

CASES = [(64, 256, 0), (256, 256, 0), (1024, 1024, 0), (256, 1024, 256), (512, 512, 128)]  # (D, H, P); P=0: LN


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200, help="steps timed per round")
    args = ap.parse_args(argv)
    import rnnfast
    import rnnfast.reference as reference

    rng = np.random.default_rng(0)

    def per_step(step, x):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step(x)
        return (time.perf_counter() - t0) / args.steps * 1e6

    print(f"batch 1, float32, default threads; median us per step over {args.rounds} alternating rounds")
    for D, H, P in CASES:
        Wx = (rng.standard_normal((D, 4 * H)) * 0.03).astype(np.float32)
        Wh = (rng.standard_normal((P or H, 4 * H)) * 0.03).astype(np.float32)
        b = np.zeros(4 * H, np.float32)
        x = rng.standard_normal((1, D)).astype(np.float32)
        if P:
            kw, label = {"projection": (rng.standard_normal((H, P)) * 0.03).astype(np.float32)}, f"projection P={P}"
        else:
            kw, label = {"layer_norm": np.ones(10 * H, np.float32)}, "layer norm"
        steps = {"rnnfast": rnnfast.LSTMStepper(Wx, Wh, b, **kw).step,
                 "NumPy twin": reference.LSTMStepper(Wx, Wh, b, **kw).step}
        if not P:
            steps["plain LSTM, packed"] = rnnfast.LSTMStepper(Wx, Wh, b).step
        times = {name: [] for name in steps}
        for step in steps.values():
            per_step(step, x)  # warm-up
        for _ in range(args.rounds):
            for name, step in steps.items():
                times[name].append(per_step(step, x))
        print(f"  D={D:5d} H={H:5d} {label:17s} " +
              "  ".join(f"{name} {statistics.median(t):7.0f}" for name, t in times.items()))


if __name__ == "__main__":
    main()
