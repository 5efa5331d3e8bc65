# cython: language_level=3, boundscheck=False, wraparound=False
"""Time GEMMs through the same BLAS shim the kernels use (single-threaded
BLAS is the caller's business).  For benchmarks: the machine's GEMM peak, and
the replayed GEMM sequence of a kernel call."""
from cython cimport floating
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import numpy as np

from kernel_common cimport gemm
from kernel_common cimport output_tile as _output_tile


cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef double _run(floating[::1] a, floating[::1] b, floating[::1] c, const Py_ssize_t[:, ::1] calls,
                 int reps) noexcept nogil:
    cdef Py_ssize_t i, r
    cdef floating one = 1
    cdef double t0 = _now()
    for r in range(reps):
        for i in range(calls.shape[0]):
            # (trans_a, trans_b, m, n, k): operands packed at the start of each buffer
            gemm(calls[i, 0] != 0, calls[i, 1] != 0, calls[i, 2], calls[i, 3], calls[i, 4], one,
                 &a[0], calls[i, 4] if calls[i, 0] == 0 else calls[i, 2],
                 &b[0], calls[i, 3] if calls[i, 1] == 0 else calls[i, 4],
                 one, &c[0], calls[i, 3])
    return (_now() - t0) / reps


def sequence_seconds(calls, dtype=np.float32, int reps=3) -> float:
    """Seconds to run the GEMM sequence ``calls`` [(trans_a, trans_b, m, n, k), ...] once."""
    table = np.ascontiguousarray(np.asarray(calls, dtype=np.intp).reshape(-1, 5))
    if table.shape[0] == 0:
        return 0.0
    m, n, k = table[:, 2], table[:, 3], table[:, 4]
    rng = np.random.default_rng(0)
    a = rng.standard_normal(int((m * k).max())).astype(dtype)
    b = rng.standard_normal(int((k * n).max())).astype(dtype)
    c = np.zeros(int((m * n).max()), dtype=dtype)
    if dtype == np.float32:
        _run[float](a, b, c, table, 1)
        return _run[float](a, b, c, table, reps)
    _run[double](a, b, c, table, 1)
    return _run[double](a, b, c, table, reps)


def gemm_flops_per_second(Py_ssize_t size=1024, dtype=np.float32, int reps=5) -> float:
    """Single-call square GEMM throughput (flop/s): the yardstick for kernel efficiency."""
    return 2.0 * size ** 3 / sequence_seconds([(0, 0, size, size, size)], dtype, reps)


def output_tile(Py_ssize_t m, Py_ssize_t n) -> int:
    """The output tile the kernels' all-step GEMMs use for an (m, n) result."""
    return _output_tile(m, n)
