"""rnnfast against PyTorch call by call, and the ratio in the machine's quiet and busy spells apart.

    python bench/paired_calls.py [--cells lstm] [--sizes 32,35,256 ...] [--threads 1 2] [--passes train forward]
                                 [--calls 100]

On a shared machine (a cloud VM whose cores' siblings run other tenants' work) the speed of the same code changes
from second to second.  ``rnnfast bench`` alternates blocks of calls, which keeps both libraries in the same spells
on average, but a spell that outlasts a block still lands on one of them.  Here the two libraries alternate call by
call (which goes first flips every pair), so each pair of calls meets the same spell, and the pairs are split by
PyTorch's time into thirds: the third where PyTorch ran fastest (the machine was quiet) and the third where it ran
slowest (busy).  Prints per case: each library's median ms, the ratio of the medians (PyTorch / rnnfast, as
``rnnfast bench``), the median of the pairs' ratios, and the median pair ratio in the quiet and in the busy third.
``--ragged``: batches with lengths (PyTorch's side packs them), and rnnfast's ragged batch paired with the same
batch padded, the median of those pairs' time ratios; beside it, the floor a ragged call could reach, ``sum(lengths)
/ (N * T)``, and the rows its all-step products run over, also over ``N * T`` (in training each step's block of the
staircase keeps the rows of the sequences that ended at the step before, and the input product and ``dx`` compute
them; an inference call on the micro-kernel keeps only the running rows: ``rnnfast._core.buffers.Staircase``).
What it measured: ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from rnnfast._core.buffers import Staircase
from rnnfast._core.driver import input_product_row_free
from rnnfast._core.plan import StepPlan
from rnnfast.benchmarks import backends
from rnnfast.benchmarks.cases import Case, make_inputs, make_lengths, parse_size
from rnnfast.benchmarks.timing import pair_ratios, pinned_threads, time_in_pairs
from rnnfast.cells import CELLS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["lstm"], choices=["lstm", "gru", "rnn"])
    ap.add_argument("--sizes", nargs="+", default=["32,35,256"], help="N,T,H (D = H) or N,T,D,H")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--passes", nargs="+", default=["train", "forward"], choices=["train", "forward"])
    ap.add_argument("--calls", type=int, default=100, help="pairs of calls per case")
    ap.add_argument("--ragged", action="store_true",
                    help="lengths uniform in [T/4, T] (PyTorch packs them: PackedSequence), and rnnfast's ragged "
                         "batch paired with the same batch without lengths, beside the floor it could reach (the "
                         "last columns)")
    args = ap.parse_args(argv)
    print(f"{'case':34s} {'rnnfast ms':>10s} {'torch ms':>9s} {'medians':>8s} {'pairs':>6s} {'quiet':>6s} "
          f"{'busy':>6s}{'  ragged/padded   rows  blocks' if args.ragged else ''}")
    for cell in args.cells:
        for size in args.sizes:
            N, T, D, H = parse_size(size)
            for pas in args.passes:
                for threads in args.threads:
                    case = Case(cell=cell, pass_=pas, N=N, T=T, D=D, H=H, dtype="float32", threads=threads,
                                ragged=args.ragged)
                    inputs = make_inputs(case)
                    padded = ""
                    with pinned_threads(threads):
                        ours = backends.prepare("rnnfast", case, inputs)
                        theirs = backends.prepare("torch", case, inputs)
                        a, b = time_in_pairs(ours, theirs, args.calls)
                        if args.ragged:
                            full = dataclasses.replace(case, ragged=False)
                            ragged, whole = time_in_pairs(ours, backends.prepare("rnnfast", full, make_inputs(full)),
                                                          args.calls)
                            lengths = make_lengths(case).astype(np.intp)
                            plan = StepPlan.choose(CELLS[cell].gates, N, T, H, np.float32, threads, D=D,
                                                   need_grad=pas == "train", ragged=True)
                            running_only = pas == "forward" and input_product_row_free(plan, lengths, D,
                                                                                       CELLS[cell].gates * H)
                            blocks = Staircase.make(lengths, N, T, running_only).rows
                            padded = (f" {np.median(ragged / whole):14.2f} {lengths.sum() / (N * T):6.3f}"
                                      f" {blocks / (N * T):7.3f}")
                    r = pair_ratios(a, b)
                    print(f"{cell} {pas:7s} N={N} T={T} H={H} {threads} thr".ljust(34)
                          + f" {np.median(a) * 1e3:10.2f} {np.median(b) * 1e3:9.2f} {r['medians']:8.2f}"
                          + f" {r['pairs']:6.2f} {r['quiet']:6.2f} {r['busy']:6.2f}{padded}", flush=True)


if __name__ == "__main__":
    main()
