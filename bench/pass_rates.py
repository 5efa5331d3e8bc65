"""Where an LSTM call's time goes, pass by pass: the flop rate of each pass and of the all-step products alone,
so that the steps' rate follows by subtraction.

    python bench/pass_rates.py [--sizes 32,35,256 64,35,512] [--threads 1 2] [--blocks 7]

For each size and thread count (float32, D = H, the plan's choice): inference forward, training forward and
backward, each timed alone (``driver.sequence_forward`` / ``sequence_backward``), and the call's all-step products
on the micro-kernel (the input product, dx, the stacked weight gradients: ``mathfuncs.product``).  Prints GF/s of
each and the steps' rate: a pass's products' flops over its time less the products' time.  Medians over
alternating blocks (``rnnfast.benchmarks.timing``).  What it measured: ``bench/RESULTS.md``.
"""
import argparse
import functools

import numpy as np
from threadpoolctl import threadpool_limits

from rnnfast._core import driver
from rnnfast._core.dispatch import kernel_module
from rnnfast._core.plan import StepPlan
from rnnfast.benchmarks.timing import summary, time_side_by_side
from rnnfast.cells import LSTM

_mathfuncs = kernel_module("mathfuncs")


def _median_s(times):
    return summary(times)["median_ms"] * 1e-3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["32,35,256", "64,35,512"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--blocks", type=int, default=7, help="alternating timing blocks")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    for size in args.sizes:
        N, T, H = map(int, size.split(","))
        x = rng.standard_normal((N, T, H)).astype(np.float32)
        Wx, Wh = ((rng.standard_normal((H, 4 * H)) * 0.05).astype(np.float32) for _ in range(2))
        b = [np.zeros(4 * H, np.float32)]
        dhs = rng.standard_normal((N, T, H)).astype(np.float32)
        product = 2.0 * N * T * H * 4 * H  # each of the six products has these flops
        rows = rng.standard_normal((N * T, 4 * H)).astype(np.float32)
        for nt in args.threads:
            plans = {need_grad: StepPlan.choose(4, N, T, H, np.float32, nt, need_grad=need_grad)
                     for need_grad in (False, True)}

            def forward(need_grad):
                return driver.sequence_forward(LSTM, x, Wx, Wh, b, [None, None], num_threads=nt,
                                               plan=plans[need_grad], need_grad=need_grad)

            cache = forward(True)[2]
            calls = {
                "inference forward": functools.partial(forward, False),
                "training forward": functools.partial(forward, True),
                "backward": lambda: driver.sequence_backward(LSTM, dhs, cache, [None, None], "lstm_forward"),
                # into arrays made once, as the kernels' are (a new one a call would time its page faults)
                "input product": functools.partial(_mathfuncs.product, x.reshape(N * T, H), Wx, False, False,
                                                   None, nt, "packed", np.empty((N * T, 4 * H), np.float32)),
                "dx": functools.partial(_mathfuncs.product, rows, Wx, False, True, None, nt, "packed",
                                        np.empty((N * T, H), np.float32)),
                "weight gradients": functools.partial(_mathfuncs.product, np.concatenate(
                    [x.reshape(N * T, H), x.reshape(N * T, H)], axis=1), rows, True, False, None, nt, "packed",
                    np.empty((2 * H, 4 * H), np.float32)),
            }
            with threadpool_limits(1, user_api="blas"):
                seconds = {k: _median_s(v) for k, v in time_side_by_side(calls, blocks=args.blocks,
                                                                         block_seconds=0.1).items()}
            flops = {"inference forward": 2, "training forward": 2, "backward": 4, "input product": 1, "dx": 1,
                     "weight gradients": 2}
            print(f"N={N} T={T} H={H} threads={nt}:", ", ".join(
                f"{k} {seconds[k] * 1e3:.2f} ms {flops[k] * product / seconds[k] / 1e9:.0f} GF/s" for k in calls))
            steps = {"inference": seconds["inference forward"] - seconds["input product"],
                     "training forward": seconds["training forward"] - seconds["input product"],
                     "backward": seconds["backward"] - seconds["dx"] - seconds["weight gradients"]}
            print("    the steps (the pass less its all-step products):", ", ".join(
                f"{k} {s * 1e3:.2f} ms {product / s / 1e9:.0f} GF/s" for k, s in steps.items()), flush=True)


if __name__ == "__main__":
    main()
