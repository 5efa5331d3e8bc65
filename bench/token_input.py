"""Token input against gathering: ``lstm_forward(ids, ..., embedding=E)`` (the embedding folded into the input
projection) against what a user writes without it, ``lstm_forward(E[ids], ...)`` and the rows of dx summed by
token into dE.  Training step (forward + backward) and inference, alternating rounds in one process.

    python bench/token_input.py [--rounds 11] [--threads 2] [--cases "32 64 64 256 96" ...]

A case is ``N T D H V``; prints per case and pass the median ms of each and gathered / folded.  What it measured:
bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

CASES = ["32 64 64 256 96", "32 64 256 256 96", "64 35 512 512 1000", "64 35 512 512 2000"]


def runners(N, T, D, H, V, threads):
    import rnnfast
    from rnnfast._core.training_passes import scatter_add_rows

    rng = np.random.default_rng(0)
    E = rng.standard_normal((V, D)).astype(np.float32)
    ids = rng.integers(0, V, (N, T))
    Wx = (rng.standard_normal((D, 4 * H)) * 0.05).astype(np.float32)
    Wh = (rng.standard_normal((H, 4 * H)) * 0.05).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    dhs = rng.standard_normal((N, T, H)).astype(np.float32)

    def folded(train):
        hs, _, _, cache = rnnfast.lstm_forward(ids, Wx, Wh, b, num_threads=threads, need_grad=train, embedding=E)
        if train:
            rnnfast.lstm_backward(dhs, cache)

    def gathered(train):
        hs, _, _, cache = rnnfast.lstm_forward(E[ids], Wx, Wh, b, num_threads=threads, need_grad=train)
        if train:
            dx = rnnfast.lstm_backward(dhs, cache)[0]
            scatter_add_rows(np.zeros_like(E), ids.reshape(-1), dx)

    return {"folded": folded, "gathered": gathered}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=5, help="calls per round and variant")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cases", nargs="+", default=CASES, help='"N T D H V" each')
    args = ap.parse_args(argv)
    from rnnfast._core.threads import available_cores

    threads = args.threads or available_cores()
    print(f"LSTM, float32, {threads} thread(s); ms per call, medians of {args.rounds} alternating rounds")
    with threadpool_limits(1, user_api="blas"):
        for case in args.cases:
            N, T, D, H, V = (int(v) for v in case.split())
            fns = runners(N, T, D, H, V, threads)
            for train in (True, False):
                times = {name: [] for name in fns}
                for name in fns:  # warm-up
                    fns[name](train)
                for r in range(args.rounds):
                    for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                        t0 = time.perf_counter()
                        for _ in range(args.calls):
                            fns[name](train)
                        times[name].append((time.perf_counter() - t0) / args.calls * 1e3)
                med = {name: statistics.median(v) for name, v in times.items()}
                ratio = statistics.median(g / f for f, g in zip(times["folded"], times["gathered"]))
                print(f"N={N} T={T} D={D} H={H} V={V} {'train' if train else 'forward':7s} folded "
                      f"{med['folded']:7.2f}  gathered {med['gathered']:7.2f}  gathered/folded {ratio:.3f} "
                      f"(median round)", flush=True)


if __name__ == "__main__":
    main()
