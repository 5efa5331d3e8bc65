"""Two builds of rnnfast side by side: a training step (forward + backward), or with ``--pass forward`` an
inference call, timed in alternating subprocesses, one per build and round, so that both see the same
machine noise.

    git worktree add /tmp/base HEAD~1 && (cd /tmp/base && python setup.py build_ext --inplace)
    python bench/compare_builds.py /tmp/base . --cases "lstm 32 35 256 2" "gru 64 35 512 2" [--dtype float64]

Each case is "cell N T H threads" (D = H; float32 unless ``--dtype`` says float64; ``--ragged``: with lengths
uniform in [T/4, T], as ``rnnfast bench --ragged``).  ``--pairs P``: instead of
rounds, one long-lived process per build, the two timing one call each in turn, P calls each (prints the ratio
of the medians and the median of the pairs' ratios).  A build is a directory holding the ``rnnfast`` package
(with ``rnnfast.benchmarks``) and its compiled modules: a source checkout after ``build_ext --inplace``.
Prints each round's median milliseconds per build and the median of the rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

# Runs in the child, against whichever build it imports: the same case, inputs, thread pinning and timing
# as ``rnnfast bench`` (``rnnfast.benchmarks``); prints the median ms of one call.
_CHILD = r"""
import sys
from rnnfast.benchmarks import backends, timing
from rnnfast.benchmarks.cases import Case, make_inputs
cell, (N, T, H, threads), pass_, dtype = sys.argv[1], map(int, sys.argv[2:6]), sys.argv[6], sys.argv[7]
case = Case(cell, pass_, N, T, H, H, dtype, threads, ragged=sys.argv[8] == "ragged")
fn = backends.prepare("rnnfast", case, make_inputs(case))
with timing.pinned_threads(threads):
    times = timing.time_side_by_side({"rnnfast": fn}, blocks=5, block_seconds=0.25)
print(timing.summary(times["rnnfast"])["median_ms"])
"""


# ``--pairs``: a child per build that stays up and times one call per line it reads, so that the builds alternate
# call by call and each pair meets the machine in the same spell (a shared machine's speed changes from second to
# second: bench/busy_spells.py).
_SERVER = r"""
import sys, time
from rnnfast.benchmarks import backends, timing
from rnnfast.benchmarks.cases import Case, make_inputs
cell, (N, T, H, threads), pass_, dtype = sys.argv[1], map(int, sys.argv[2:6]), sys.argv[6], sys.argv[7]
case = Case(cell, pass_, N, T, H, H, dtype, threads, ragged=sys.argv[8] == "ragged")
fn = backends.prepare("rnnfast", case, make_inputs(case))
with timing.pinned_threads(threads):
    fn(), fn()
    print("ready", flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        fn()
        print(time.perf_counter() - t0, flush=True)
"""


def time_pairs(builds, case: str, pairs: int, pass_: str = "train", dtype: str = "float32", ragged: bool = False):
    """Milliseconds of ``pairs`` calls of each build, alternating call by call (which goes first flips every pair)."""
    children = [subprocess.Popen([sys.executable, "-c", _SERVER, *case.split(), pass_, dtype,
                                  "ragged" if ragged else "padded"], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.path.abspath(build),
                                 env=dict(os.environ, PYTHONPATH=os.path.abspath(build))) for build in builds]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a build's child failed on case {case!r}")
        times = [[] for _ in builds]
        for i in range(pairs):
            for k in (range(len(builds)) if i % 2 == 0 else reversed(range(len(builds)))):
                time.sleep(0.005)  # the other build's OpenMP workers stop spinning
                children[k].stdin.write("\n")
                children[k].stdin.flush()
                times[k].append(1e3 * float(children[k].stdout.readline()))
        return times
    finally:
        for child in children:
            child.stdin.close()
            child.wait()


def time_case(build: str, case: str, pass_: str = "train", dtype: str = "float32", ragged: bool = False) -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(build))
    out = subprocess.run([sys.executable, "-c", _CHILD, *case.split(), pass_, dtype,
                          "ragged" if ragged else "padded"], env=env, check=True,
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
    ap.add_argument("--ragged", action="store_true", help="lengths uniform in [T/4, T], as rnnfast bench --ragged")
    ap.add_argument("--pairs", type=int, default=0,
                    help="instead of rounds: this many calls of each build, alternating call by call")
    args = ap.parse_args(argv)
    for case in args.cases:
        parts = case.split()
        if len(parts) != 5 or parts[0] not in ("lstm", "gru", "rnn") or not all(p.isdigit() and int(p) > 0
                                                                              for p in parts[1:]):
            ap.error(f"case {case!r}: expected 'cell N T H threads', cell lstm, gru or rnn, positive integers")
        if args.pairs:
            base, new = time_pairs([args.base, args.new], case, args.pairs, args.pass_, args.dtype, args.ragged)
            ratio = [n / b for b, n in zip(base, new)]
            print(f"{case:22s} base {statistics.median(base):9.3f} ms  new {statistics.median(new):9.3f} ms  "
                  f"new/base {statistics.median(new) / statistics.median(base):5.3f}  median pair new/base "
                  f"{statistics.median(ratio):5.3f}  ({args.pairs} pairs)", flush=True)
            continue
        base, new = [], []
        for _ in range(args.rounds):
            base.append(time_case(args.base, case, args.pass_, args.dtype, args.ragged))
            new.append(time_case(args.new, case, args.pass_, args.dtype, args.ragged))
        b, n = statistics.median(base), statistics.median(new)
        print(f"{case:22s} base {b:9.3f} ms  new {n:9.3f} ms  new/base {n / b:5.3f}   "
              f"(rounds: base {' '.join(f'{t:.2f}' for t in base)} | new {' '.join(f'{t:.2f}' for t in new)})",
              flush=True)


if __name__ == "__main__":
    main()
