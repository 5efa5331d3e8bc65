"""The one place that decides how many OpenMP threads a kernel uses,
and keeps BLAS single-threaded while the kernels run."""
from __future__ import annotations

import functools
import math
import operator
import os
import threading
import time
from typing import Optional

from . import config
from .busy_cores import busy_cores

ENV_VAR = "RNNFAST_NUM_THREADS"


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS reports it, and no more than a container's CPU
    quota (Linux cgroups) allows."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, quota)) if quota is not None else cores


# A CPU quota (Linux cgroups) is read from this process's own cgroup (``/proc/self/cgroup``), then from the root of
# the mount, which is a container's own cgroup under a cgroup namespace: cgroup v2's ``cpu.max`` ("quota period"
# or "max"), cgroup v1's ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (-1: none).
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"
_quota_read = False
_quota = None


def cgroup_cpu_quota():
    """The CPUs a cgroup CPU quota allows this process (its quota over its period, rounded up), or None where there
    is none.  Read once.  A team larger than the quota waits at every join for members the quota has paused, as for
    cores that other processes keep busy (``busy_cores``)."""
    global _quota_read, _quota
    if not _quota_read:
        _quota, _quota_read = _read_cgroup_quota(), True
    return _quota


def _read_cgroup_quota():
    own_v2 = own_v1 = None
    try:
        with open(PROC_CGROUP) as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controllers == "":
                    own_v2 = path
                elif "cpu" in controllers.split(","):
                    own_v1 = path
    except (OSError, ValueError):
        pass
    for path in ([own_v2] if own_v2 else []) + ["/"]:
        quota = _quota_of(os.path.join(CGROUP_ROOT + path, "cpu.max"), None)
        if quota is not None:
            return quota
    for path in ([own_v1] if own_v1 else []) + ["/"]:
        quota = _quota_of(os.path.join(CGROUP_ROOT + "/cpu" + path, "cpu.cfs_quota_us"),
                          os.path.join(CGROUP_ROOT + "/cpu" + path, "cpu.cfs_period_us"))
        if quota is not None:
            return quota
    return None


def _quota_of(quota_file, period_file):
    """CPUs from a v2 ``cpu.max`` (``period_file`` None) or a v1 quota and period; None where there is no quota or no
    file."""
    try:
        with open(quota_file) as f:
            fields = f.read().split()
        if period_file is not None:
            with open(period_file) as f:
                fields.append(f.read().strip())
        quota, period = fields[0], int(fields[1])
        if quota == "max" or int(quota) <= 0 or period <= 0:
            return None
        return max(1, math.ceil(int(quota) / period))
    except (OSError, ValueError, IndexError):
        return None


def _check_count(value, name: str) -> int:
    # operator.index accepts int and NumPy integers, rejects float/str/None; bool is an int but a mistake here
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive int; got {type(value).__name__}") from None
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return value


# GNU OpenMP (libgomp) is not fork-safe: a child forked after the parent ran a
# parallel region hangs in its next one (measured: the first kernel call in a
# `fork` multiprocessing worker never returned).  Such a child runs the kernels
# on one thread; `spawn`/`forkserver` workers, and children forked before any
# parallel call, keep their threads.
_openmp_started = False
_forked_after_openmp = False


def _after_fork_in_child() -> None:
    global _forked_after_openmp
    _forked_after_openmp = _forked_after_openmp or _openmp_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def serial_after_fork() -> bool:
    """True in a process forked after its parent used OpenMP threads (kernels then run serially)."""
    return _forked_after_openmp


def resolve_num_threads(num_threads=None) -> int:
    """``num_threads`` argument, else ``$RNNFAST_NUM_THREADS``, else ``$OMP_NUM_THREADS``, else the core count,
    less the cores other processes keep busy at the time (``busy_cores``; Linux).

    Without OpenMP in the build the answer is always 1, and so it is in a
    process forked after its parent had started OpenMP threads (see above).
    For a kernel call: a count above 1 marks this process as using OpenMP.
    """
    global _openmp_started
    n = configured_num_threads(num_threads)
    if n > 1:
        _openmp_started = True
    return n


def _getenv(name: str) -> Optional[str]:
    """``os.environ.get(name)``.  For a name that is not set (the usual case) ``Mapping.get`` raises and catches a
    KeyError, and every kernel call looks up two names (bench/RESULTS.md has the cost); CPython's ``os.environ``
    keeps its values in a dict (``_data``, in step with ``putenv``), read here where it has one."""
    env = os.environ
    data = getattr(env, "_data", None)
    if type(data) is not dict:
        return env.get(name)
    key = _encoded_keys.get(name)
    if key is None:
        key = _encoded_keys[name] = env.encodekey(name)
    raw = data.get(key)
    return None if raw is None else env.decodevalue(raw)


_encoded_keys: dict = {}  # name -> os.environ's key for it (encoding it took two calls of every lookup)


def _omp_num_threads():
    """``$OMP_NUM_THREADS`` (its first level) when set to a positive integer: process pools such as
    joblib's set it to each worker's share of the cores.  Anything else is ignored, as OpenMP does."""
    raw = (_getenv("OMP_NUM_THREADS") or "").split(",")[0].strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


_default = (None, -math.inf, 1)  # (the sampler it came from, valid until, the count)


def default_num_threads() -> int:
    """``available_cores()`` less the cores other processes keep busy (``busy_cores``), at least one.  Looked up
    at most once per sampling interval of ``busy_cores``: every kernel call asks, and the affinity, the quota and
    the load change slowly (looked up at every call, they were a few percent of a small call)."""
    global _default
    sampler, until, count = _default
    now = time.monotonic()
    if sampler is busy_cores and now < until:
        return count
    count = busy_cores.free_threads(available_cores())
    _default = (busy_cores, now + busy_cores.interval, count)
    return count


def configured_num_threads(num_threads=None) -> int:
    """What ``resolve_num_threads`` answers, without marking OpenMP as used."""
    if num_threads is not None:
        n = _check_count(num_threads, "num_threads")
    elif raw := (_getenv(ENV_VAR) or "").strip():
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"{ENV_VAR} must be a positive integer; got {raw!r}") from None
        n = _check_count(n, ENV_VAR)
    else:  # the default: the cores this process may use, less those other processes keep busy
        n = _omp_num_threads() or default_num_threads()
    if not config.openmp_enabled() or _forked_after_openmp:
        return 1
    return n


# BLAS must run single-threaded inside the kernels: its own threads would
# fight OpenMP's (measured 8x slower) and change the bits with its thread
# count.  OpenBLAS's thread count is process-global, so concurrent kernel
# calls share one "pinned" section: the first in pins, the last out restores.
_lock = threading.Lock()
_depth = 0
_saved: list = []
_blas_libs = None


def _blas_controllers():
    """The BLAS libraries to pin: SciPy's, which the kernels call (``scipy.linalg.cython_blas``).

    Wheels of NumPy and SciPy each bundle their own OpenBLAS (in ``numpy.libs`` and ``scipy.libs``);
    the kernels never call NumPy's, and pinning it too took 6.0 instead of 4.5 us per call (hot).
    Where the libraries cannot be told apart, all are pinned."""
    global _blas_libs
    if _blas_libs is None:
        from threadpoolctl import ThreadpoolController

        libs = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        scipys = [c for c in libs if os.path.basename(os.path.dirname(c.filepath or "")).startswith("scipy")]
        _blas_libs = scipys or libs
    return _blas_libs


# OpenBLAS's cores with its small-matrix ("direct") sgemm kernels, which multiply small products without packing
# them (``kernel/x86_64/sgemm_direct_skylakex.c`` and the small-matrix kernels beside it build for these only).
SMALL_MATRIX_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


@functools.lru_cache(maxsize=None)
def blas_has_small_matrix_path() -> bool:
    """False where the kernels' BLAS is OpenBLAS running a core without small-matrix kernels (Haswell's on AVX2-only
    CPUs, Zen's): there every small step product goes through OpenBLAS's packing, and the plan moves the steps
    to the micro-kernel.  True elsewhere, the libraries the plan's BLAS rules were measured on included."""
    try:
        libs = _blas_controllers()
    except Exception:  # threadpoolctl failing must not break a kernel call
        return True
    openblas = [c for c in libs if c.internal_api == "openblas"]
    return not openblas or any(str(c.architecture or "").lower() in SMALL_MATRIX_CORES for c in openblas)


class _SingleThreadedBlas:
    """``with single_threaded_blas():`` -- the first section in pins the libraries at one thread, the last out
    gives them back their counts.  A class, not a generator: it is entered at every kernel call."""

    __slots__ = ()

    def __enter__(self):
        global _depth, _saved
        with _lock:
            if _depth == 0:
                _saved = [(c, n) for c in _blas_controllers() if (n := c.get_num_threads()) != 1]
                for c, _ in _saved:
                    c.set_num_threads(1)
            _depth += 1

    def __exit__(self, *exc) -> bool:
        global _depth, _saved
        with _lock:
            _depth -= 1
            if _depth == 0:
                for c, n in _saved:
                    c.set_num_threads(n)
                _saved = []
        return False


_single_threaded = _SingleThreadedBlas()


def single_threaded_blas() -> _SingleThreadedBlas:
    """BLAS at one thread for the duration of a ``with`` block (see above)."""
    return _single_threaded
