"""Two builds of rnnfast side by side: a training step (forward + backward) timed in alternating
subprocesses, one per build and round, so that both see the same machine noise.

    git worktree add /tmp/base HEAD~1 && (cd /tmp/base && python setup.py build_ext --inplace)
    python bench/compare_builds.py /tmp/base . --cases "lstm 32 35 256 2" "gru 64 35 512 2"

Each case is "cell N T H threads" (D = H, float32).  A build is a directory holding the ``rnnfast`` package
with its compiled modules (an in-place build or a source checkout after ``build_ext --inplace``).
Prints each round's median milliseconds per build and the median of the rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

# Runs in the child: median ms of one training step over 5 blocks of ~0.25 s.
_CHILD = r"""
import sys, time, numpy as np, rnnfast
cell = sys.argv[1]; N, T, H, nt = map(int, sys.argv[2:6])
rng = np.random.default_rng(0)
G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
x = rng.standard_normal((N, T, H)).astype(np.float32)
Wx = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(np.float32); Wh = Wx.copy()
b = np.zeros(G * H, np.float32); dhs = np.ones((N, T, H), np.float32)
def step():
    if cell == "lstm":
        rnnfast.lstm_backward(dhs, rnnfast.lstm_forward(x, Wx, Wh, b, num_threads=nt)[3])
    elif cell == "gru":
        rnnfast.gru_backward(dhs, rnnfast.gru_forward(x, Wx, Wh, b, b, num_threads=nt)[2])
    else:
        rnnfast.rnn_backward(dhs, rnnfast.rnn_forward(x, Wx, Wh, b, num_threads=nt)[2])
t0 = time.perf_counter(); step(); reps = max(1, int(0.25 / (time.perf_counter() - t0)))
times = []
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    times.append((time.perf_counter() - t0) / reps * 1e3)
print(float(np.median(times)))
"""


def time_case(build: str, case: str) -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(build))
    out = subprocess.run([sys.executable, "-c", _CHILD, *case.split()], env=env, check=True,
                         capture_output=True, text=True, cwd=os.path.abspath(build))
    return float(out.stdout.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", help="directory of the first build")
    ap.add_argument("new", help="directory of the second build")
    ap.add_argument("--cases", nargs="+", default=["lstm 32 35 256 2"], help='"cell N T H threads"')
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    for case in args.cases:
        if len(case.split()) != 5 or case.split()[0] not in ("lstm", "gru", "rnn"):
            ap.error(f"case {case!r}: expected 'cell N T H threads' with cell lstm, gru or rnn")
        base, new = [], []
        for _ in range(args.rounds):
            base.append(time_case(args.base, case))
            new.append(time_case(args.new, case))
        b, n = statistics.median(base), statistics.median(new)
        print(f"{case:22s} base {b:9.3f} ms  new {n:9.3f} ms  new/base {n / b:5.3f}   "
              f"(rounds: base {' '.join(f'{t:.2f}' for t in base)} | new {' '.join(f'{t:.2f}' for t in new)})",
              flush=True)


if __name__ == "__main__":
    main()
