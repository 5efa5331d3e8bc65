"""What a shared machine's busy spells cost each kind of code: one thread, round after round of short probes, split
into the machine's quiet and busy thirds.

    python bench/busy_spells.py [--rounds 300] [--size 32,35,256]

Probes, one call each per round, in turn: vector FMAs on registers alone (``blasbench``'s FMA ceiling, no loads);
the micro-kernel's product of a step's shape (N x H times H x 4H, ``mathfuncs.product``, path "packed"); SciPy's
OpenBLAS on it; PyTorch's on it (where PyTorch is installed); the LSTM's forward pass (inference) in rnnfast and
in PyTorch.  A round is busy or quiet by the other probes' times, each over its median, summed; the busy third of
the rounds over the quiet third, per probe, says how much of its speed each probe lost there.  What it measured:
``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import rnnfast
from rnnfast._core import blasbench
from rnnfast._core.dispatch import kernel_module
from rnnfast.benchmarks.cases import parse_size


def probes(N: int, T: int, H: int):
    """name -> a call returning its cost: seconds, or for the FMA ceiling seconds per GFLOP."""
    mathfuncs = kernel_module("mathfuncs")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, H)).astype(np.float32)
    w = (rng.standard_normal((H, 4 * H)) * 0.05).astype(np.float32)
    x = rng.standard_normal((N, T, H)).astype(np.float32)
    b = np.zeros(4 * H, np.float32)

    def timed(fn):
        def call():
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        return call

    out = {"FMAs on registers": lambda: 1e9 / blasbench.fma_ceiling_flops_per_second(np.float32, 1, seconds=0.005),
           "micro-kernel product": timed(lambda: mathfuncs.product(a, w, path="packed", num_threads=1)),
           "OpenBLAS product": timed(lambda: mathfuncs.product(a, w, path="blas", num_threads=1)),
           "rnnfast LSTM forward": timed(lambda: rnnfast.lstm_forward(x, w, w, b, num_threads=1, need_grad=False))}
    try:
        import torch
    except ImportError:
        return out
    torch.set_num_threads(1)
    ta, tw, xt = torch.from_numpy(a), torch.from_numpy(w), torch.from_numpy(x)
    lstm = torch.nn.LSTM(H, H, batch_first=True)

    def torch_forward():
        with torch.no_grad():
            lstm(xt)
    out["PyTorch product"] = timed(lambda: torch.mm(ta, tw))
    out["PyTorch LSTM forward"] = timed(torch_forward)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--size", default="32,35,256", help="N,T,H of the LSTM (the products: N x H times H x 4H)")
    args = ap.parse_args(argv)
    N, T, _, H = parse_size(args.size)
    with threadpool_limits(1):
        calls = probes(N, T, H)
        for call in calls.values():  # warm-up
            call(), call()
        costs = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, call in calls.items():
                costs[name].append(call())
    costs = {name: np.array(c) for name, c in costs.items()}
    print(f"{args.rounds} rounds, one thread; busy third over quiet third (medians):")
    for name, c in costs.items():
        # the spells as the other probes saw them: a probe's own noise does not pick its thirds
        load = sum(o / np.median(o) for other, o in costs.items() if other != name)
        quiet, busy = load <= np.quantile(load, 1 / 3), load >= np.quantile(load, 2 / 3)
        unit = "s/GFLOP" if name.startswith("FMAs") else "ms"
        scale = 1 if unit == "s/GFLOP" else 1e3
        print(f"  {name:22s} quiet {np.median(c[quiet]) * scale:8.3f} {unit:7s} busy {np.median(c[busy]) * scale:8.3f}"
              f"  x{np.median(c[busy]) / np.median(c[quiet]):.2f}")


if __name__ == "__main__":
    main()
