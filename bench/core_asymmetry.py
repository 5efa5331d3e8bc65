"""How unevenly a shared machine's cores run at the same moment, and what that costs a fixed cut of the work.

    python bench/core_asymmetry.py [--seconds 40] [--window 0.2]

One process per core (pinned with ``os.sched_setaffinity``), all at once, each timing the same one-thread sgemm
(SciPy's OpenBLAS, 256 x 512 by 512 x 512) over and over for ``--seconds``.  Their rates are then put side by side
in windows of ``--window`` seconds.  In each window, a team that cuts its work into equal parts waits for the slowest
core: its time is 1 / min(rate) where a team that shares the work as it goes (``all_steps._take_over``) needs
n / sum(rate).  Prints each core's median rate, that ratio's median, mean and 90th percentile, and the share of
windows where the fixed cut loses more than 10%.  On a VM whose cores' SMT siblings run other tenants' work, the
cores slow down apart from each other.  What it measured: ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

PROBE = """
import os, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
core, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
os.sched_setaffinity(0, {core})
rng = np.random.default_rng(0)
a = rng.standard_normal((256, 512)).astype(np.float32)
b = rng.standard_normal((512, 512)).astype(np.float32)
out = np.empty((256, 512), np.float32)
calls, flops = 20, 20 * 2 * 256 * 512 * 512
rows = []
with threadpool_limits(1):
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        for _ in range(calls):
            np.matmul(a, b, out=out)
        rows.append((time.time(), flops / (time.perf_counter() - t0) / 1e9))
np.save(path, np.array(rows))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--window", type=float, default=0.2)
    args = ap.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        sys.exit("needs at least two cores")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"core{c}.npy") for c in cores]
        procs = [subprocess.Popen([sys.executable, "-c", PROBE, str(c), str(args.seconds), p])
                 for c, p in zip(cores, paths)]
        if any(p.wait() for p in procs):
            sys.exit("a probe failed")
        runs = [np.load(p) for p in paths]
    start, stop = max(r[0, 0] for r in runs), min(r[-1, 0] for r in runs)
    windows = []
    for lo in np.arange(start, stop, args.window):
        rates = [r[(r[:, 0] >= lo) & (r[:, 0] < lo + args.window), 1] for r in runs]
        if all(len(x) for x in rates):
            windows.append([x.mean() for x in rates])
    w = np.array(windows)
    loss = (1 / w.min(axis=1)) / (len(cores) / w.sum(axis=1))
    print(f"{len(cores)} cores, {len(w)} windows of {args.window} s")
    print("median GF/s per core: " + ", ".join(f"{np.median(w[:, i]):.1f}" for i in range(len(cores))))
    print(f"fixed cut / shared as it goes (time): median {np.median(loss):.3f}, mean {loss.mean():.3f}, "
          f"90th percentile {np.percentile(loss, 90):.3f}; windows above 1.1: {np.mean(loss > 1.1):.0%}")


if __name__ == "__main__":
    main()
