"""Two builds of rnnfast side by side: a training step (forward + backward), or with ``--pass forward`` an
inference call, timed in alternating subprocesses, one per build and round, so that both see the same
machine noise.

    git worktree add /tmp/base HEAD~1 && (cd /tmp/base && python setup.py build_ext --inplace)
    python bench/compare_builds.py /tmp/base . --cases "lstm 32 35 256 2" "gru 64 35 512 2" [--dtype float64]

Each case is "cell N T H threads" (D = H; float32 unless ``--dtype`` says float64).  A build is a directory holding the ``rnnfast`` package
(with ``rnnfast.benchmarks``) and its compiled modules: a source checkout after ``build_ext --inplace``.
Prints each round's median milliseconds per build and the median of the rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

# Runs in the child, against whichever build it imports: the same case, inputs, thread pinning and timing
# as ``rnnfast bench`` (``rnnfast.benchmarks``); prints the median ms of one call.
_CHILD = r"""
import sys
from rnnfast.benchmarks import backends, timing
from rnnfast.benchmarks.cases import Case, make_inputs
cell, (N, T, H, threads), pass_, dtype = sys.argv[1], map(int, sys.argv[2:6]), sys.argv[6], sys.argv[7]
case = Case(cell, pass_, N, T, H, H, dtype, threads)
fn = backends.prepare("rnnfast", case, make_inputs(case))
with timing.pinned_threads(threads):
    times = timing.time_side_by_side({"rnnfast": fn}, blocks=5, block_seconds=0.25)
print(timing.summary(times["rnnfast"])["median_ms"])
"""


def time_case(build: str, case: str, pass_: str = "train", dtype: str = "float32") -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(build))
    out = subprocess.run([sys.executable, "-c", _CHILD, *case.split(), pass_, dtype], env=env, check=True,
                         capture_output=True, text=True, cwd=os.path.abspath(build))
    return float(out.stdout.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", help="directory of the first build")
    ap.add_argument("new", help="directory of the second build")
    ap.add_argument("--cases", nargs="+", default=["lstm 32 35 256 2"], help='"cell N T H threads"')
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pass", dest="pass_", choices=["train", "forward"], default="train",
                    help="train: forward + backward (default); forward: inference")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = ap.parse_args(argv)
    for case in args.cases:
        parts = case.split()
        if len(parts) != 5 or parts[0] not in ("lstm", "gru", "rnn") or not all(p.isdigit() and int(p) > 0
                                                                              for p in parts[1:]):
            ap.error(f"case {case!r}: expected 'cell N T H threads', cell lstm, gru or rnn, positive integers")
        base, new = [], []
        for _ in range(args.rounds):
            base.append(time_case(args.base, case, args.pass_, args.dtype))
            new.append(time_case(args.new, case, args.pass_, args.dtype))
        b, n = statistics.median(base), statistics.median(new)
        print(f"{case:22s} base {b:9.3f} ms  new {n:9.3f} ms  new/base {n / b:5.3f}   "
              f"(rounds: base {' '.join(f'{t:.2f}' for t in base)} | new {' '.join(f'{t:.2f}' for t in new)})",
              flush=True)


if __name__ == "__main__":
    main()
