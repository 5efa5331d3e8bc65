"""Where an ``rnnfast.torch`` module's training step spends its time beyond the kernels: one layer's
forward + backward through the custom op (with its registered autograd) against the eager
``autograd.Function`` path, and the module's forward and backward against the driver calls inside them.

    python bench/torch_module_overhead.py [--cell lstm] [--size 16,35,128] [--threads 2] [--steps 280]

Needs PyTorch.  Medians; alternate rounds for the op-against-Function comparison.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import rnnfast.torch as rt
from rnnfast._core import driver
from rnnfast.cells import CELLS
from rnnfast.torch import ops


def op_against_function(cell: str, N: int, T: int, H: int, threads: int, rounds: int = 9, calls: int = 20):
    """Median microseconds of one layer's forward + backward via the custom op and via the eager path."""
    torch.manual_seed(0)
    G = CELLS[cell].gates * H
    x = torch.randn(N, T, H, requires_grad=True)
    w_ih, w_hh = ((torch.randn(G, H) * 0.1).requires_grad_() for _ in range(2))
    b_ih, b_hh = (torch.zeros(G, requires_grad=True) for _ in range(2))
    h0 = torch.zeros(N, H)
    c0 = torch.zeros(N, H) if cell == "lstm" else torch.empty(0)
    no_lengths = torch.empty(0, dtype=torch.int64)
    args = (cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, no_lengths, 1 if cell == "gru" else 0, True, threads)

    def via(forward):
        def step():
            forward(*args)[0].sum().backward()
        return step
    paths = {"custom op": via(ops.recurrent_forward), "eager Function": via(ops.run_forward)}
    times = {name: [] for name in paths}
    for r in range(rounds):
        for name in (list(paths) if r % 2 else list(paths)[::-1]):
            for _ in range(3):
                paths[name]()
            t = time.perf_counter()
            for _ in range(calls):
                paths[name]()
            times[name].append((time.perf_counter() - t) / calls * 1e6)
    return {name: statistics.median(v) for name, v in times.items()}


def module_split(cell: str, N: int, T: int, H: int, threads: int, steps: int):
    """Median milliseconds of the module's forward and backward, and of the driver calls inside them."""
    inner = {"sequence_forward": [], "sequence_backward": []}
    originals = {name: getattr(driver, name) for name in inner}

    def timed(name):
        def call(*a, **k):
            t = time.perf_counter()
            out = originals[name](*a, **k)
            inner[name].append(time.perf_counter() - t)
            return out
        return call
    for name in inner:
        setattr(driver, name, timed(name))
    try:
        torch.manual_seed(0)
        module = getattr(rt, CELLS[cell].title)(H, H, batch_first=True, num_threads=threads)
        x, g = torch.randn(N, T, H, requires_grad=True), torch.randn(N, T, H)
        outer = {"forward": [], "backward": []}
        for i in range(steps + 20):
            module.zero_grad(set_to_none=True)
            x.grad = None
            t0 = time.perf_counter()
            out = module(x)[0]
            t1 = time.perf_counter()
            out.backward(g)
            t2 = time.perf_counter()
            if i >= 20:
                outer["forward"].append(t1 - t0)
                outer["backward"].append(t2 - t1)
    finally:
        for name, f in originals.items():
            setattr(driver, name, f)
    med = {k: statistics.median(v) * 1e3 for k, v in outer.items()}
    med.update({k: statistics.median(v[20:]) * 1e3 for k, v in inner.items()})
    return med


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cell", default="lstm", choices=sorted(CELLS))
    ap.add_argument("--size", default="16,35,128", help="N,T,H (D = H)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=280)
    args = ap.parse_args(argv)
    N, T, H = map(int, args.size.split(","))
    torch.set_num_threads(args.threads)
    us = op_against_function(args.cell, N, T, H, args.threads)
    print(f"{args.cell} N={N} T={T} H={H}, {args.threads} threads; one layer forward + backward: "
          f"custom op {us['custom op']:.0f} us, eager Function {us['eager Function']:.0f} us")
    ms = module_split(args.cell, N, T, H, args.threads, args.steps)
    print(f"module training step: forward {ms['forward']:.3f} ms (driver {ms['sequence_forward']:.3f}), "
          f"backward {ms['backward']:.3f} ms (driver {ms['sequence_backward']:.3f})")


if __name__ == "__main__":
    main()
