"""What an element-wise LSTM variant costs over the plain LSTM: the training step (forward + backward) of the
plain LSTM, the peephole LSTM and the LSTM with zoneout (training masks, then evaluation's expectation), same
shapes and weights, in alternating rounds.

    python bench/variant_overhead.py [--sizes 16,35,128 32,35,256 64,35,512] [--threads 2] [--rounds 9]

Medians in ms and each variant's ratio to the plain LSTM.  float32, D = H.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import rnnfast


def steps(N: int, T: int, H: int, threads: int):
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((N, T, H)).astype(f32)
    Wx, Wh = ((rng.standard_normal((H, 4 * H)) * 0.05).astype(f32) for _ in range(2))
    b, dhs = np.zeros(4 * H, f32), rng.standard_normal((N, T, H)).astype(f32)
    variants = {"plain": {}, "peephole": {"peephole": (rng.standard_normal(3 * H) * 0.1).astype(f32)},
                "zoneout (training)": {"zoneout": (0.1, 0.05), "zoneout_seed": 1},
                "zoneout (evaluation)": {"zoneout": (0.1, 0.05)}}

    def step(kw):
        def run():
            out = rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=threads, **kw)
            rnnfast.lstm_backward(dhs, out[-1])
        return run
    return {name: step(kw) for name, kw in variants.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["16,35,128", "32,35,256", "64,35,512"], help="N,T,H")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=5, help="calls per round")
    args = ap.parse_args(argv)
    for size in args.sizes:
        N, T, H = map(int, size.split(","))
        paths = steps(N, T, H, args.threads)
        times = {name: [] for name in paths}
        for r in range(args.rounds):
            for name in (list(paths) if r % 2 else list(paths)[::-1]):
                paths[name]()
                t = time.perf_counter()
                for _ in range(args.calls):
                    paths[name]()
                times[name].append((time.perf_counter() - t) / args.calls * 1e3)
        med = {name: statistics.median(v) for name, v in times.items()}
        print(f"N={N} T={T} H={H}, {args.threads} threads: " + ", ".join(
            f"{name} {ms:.2f} ms" + ("" if name == "plain" else f" ({ms / med['plain']:.2f}x)")
            for name, ms in med.items()))


if __name__ == "__main__":
    main()
