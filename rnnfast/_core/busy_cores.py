"""How many cores other processes keep busy, sampled from ``/proc`` (Linux), so that the default thread count
leaves them out.

An OpenMP team larger than the free cores stalls at every join on a member the scheduler has set aside, whether
the members spin or sleep while they wait; fewer threads, each with a core, lose only their share of the machine
(measured: ``bench/RESULTS.md``).  The kernels' bits do not depend on the thread count, so the count may follow
the machine's load from call to call.

A sample counts the runnable threads of the whole system (``/proc/loadavg``'s fourth field) less this process's
own (its tasks in state R: the caller, and OpenMP workers still spinning after a parallel region).  Samples are
taken at most every ``SAMPLE_SECONDS``; the busy count is the smaller of the last two, so that one passing task (a
kernel worker, a cron job) does not shed threads.  Where ``/proc`` is missing or unreadable, nothing is busy.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Optional

SAMPLE_SECONDS = 0.1
# The runnable count is the whole system's: compared with all its cores (read once: ``os.cpu_count`` reads a file).
SYSTEM_CORES = os.cpu_count() or 1


def runnable_elsewhere() -> Optional[int]:
    """Runnable threads of other processes now, or None where ``/proc`` cannot tell."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        mine = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    mine += f.read().rsplit(")", 1)[1].split()[0] == "R"
            except FileNotFoundError:  # the thread ended between the listing and the read
                continue
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - mine)


class BusyCores:
    """The busy-core count, re-sampled at most every ``interval`` seconds (``sample`` and ``clock`` may be
    replaced, for tests)."""

    def __init__(self, sample: Callable[[], Optional[int]] = runnable_elsewhere,
                 clock: Callable[[], float] = time.monotonic, interval: float = SAMPLE_SECONDS):
        self.sample, self.clock, self.interval = sample, clock, interval
        self._next = None  # when the next sample is due
        self._latest = self._busy = 0
        self._lock = threading.Lock()

    def count(self) -> int:
        now = self.clock()
        if self._next is not None and now < self._next:  # every call of a kernel asks: keep this path short
            return self._busy
        with self._lock:
            if self._next is None or now >= self._next:
                self._next = now + self.interval
                latest = self.sample() or 0
                self._busy, self._latest = min(self._latest, latest), latest
            return self._busy

    def free_threads(self, wanted: int, cores: int = SYSTEM_CORES) -> int:
        """``wanted`` threads, or fewer where other processes keep some of the system's ``cores`` busy; at least
        one."""
        return max(1, min(wanted, cores - self.count()))


busy_cores = BusyCores()
