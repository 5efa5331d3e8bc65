"""One LSTM layer's training step four ways, in alternating rounds on the same weights: the kernels called
directly (``kernels``), the eager ``autograd.Function`` of ``rnnfast.torch.ops`` (``function``), the
``rnnfast.torch.LSTM`` module (``module``) and ``torch.nn.LSTM`` (``torch``).  The differences are the glue's
cost: the Function's against the kernels', the module's against the Function's.

    python bench/torch_module_glue.py [--size 16,35,128] [--threads 2] [--rounds 15]

Needs PyTorch.  Medians in ms, then every round.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import rnnfast
import rnnfast.torch as rt
from rnnfast.torch import ops


def steps(N: int, T: int, H: int, threads: int):
    """The four training steps, each a zero-argument callable."""
    torch.manual_seed(0)
    module = rt.LSTM(H, H, batch_first=True, num_threads=threads)
    reference = torch.nn.LSTM(H, H, batch_first=True)
    reference.load_state_dict(module.state_dict())
    x, g = torch.randn(N, T, H, requires_grad=True), torch.randn(N, T, H)
    Wx, Wh = (np.ascontiguousarray(w.detach().numpy().T) for w in (module.weight_ih_l0, module.weight_hh_l0))
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy()
    empty, no_lengths = torch.empty(0), torch.empty(0, dtype=torch.int64)

    def kernels():
        out = rnnfast.lstm_forward(x.detach().numpy(), Wx, Wh, b, num_threads=threads)
        rnnfast.lstm_backward(g.numpy(), out[-1])

    def through(call):
        def step():
            module.zero_grad(set_to_none=True)
            reference.zero_grad(set_to_none=True)
            x.grad = None
            call()[0].backward(g)
        return step

    function = through(lambda: ops.run_forward("lstm", x, module.weight_ih_l0, module.weight_hh_l0,
                                               module.bias_ih_l0, module.bias_hh_l0, empty, empty, no_lengths, 0,
                                               True, threads))
    return {"kernels": kernels, "function": function, "module": through(lambda: module(x)),
            "torch": through(lambda: reference(x))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="16,35,128", help="N,T,H (D = H)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=20, help="calls per round")
    args = ap.parse_args(argv)
    N, T, H = map(int, args.size.split(","))
    torch.set_num_threads(args.threads)
    paths = steps(N, T, H, args.threads)
    times = {name: [] for name in paths}
    for r in range(args.rounds):
        for name in (list(paths) if r % 2 else list(paths)[::-1]):
            for _ in range(3):
                paths[name]()
            t = time.perf_counter()
            for _ in range(args.calls):
                paths[name]()
            times[name].append((time.perf_counter() - t) / args.calls * 1e3)
    print(f"LSTM training step N={N} T={T} H={H}, {args.threads} threads, median of {args.rounds} rounds:")
    for name, v in times.items():
        print(f"  {name:8} {statistics.median(v):7.3f} ms   " + " ".join(f"{a:.2f}" for a in v))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"  torch / module {med['torch'] / med['module']:.2f}x, torch / kernels {med['torch'] / med['kernels']:.2f}x")


if __name__ == "__main__":
    main()
