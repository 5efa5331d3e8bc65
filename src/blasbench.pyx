# cython: language_level=3, boundscheck=False, wraparound=False
"""Time GEMMs through the same BLAS shim the kernels use (single-threaded
BLAS is the caller's business).  For benchmarks: the machine's GEMM peak, its
FMA ceiling, and the replayed GEMM sequence of a kernel call."""
from cython cimport floating
from cython.parallel cimport prange
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import numpy as np

from all_steps cimport TileGrid, output_grid as _output_grid
from blas cimport gemm


cdef extern from "fma_ceiling.h" nogil:
    double fma_loop "rnnfast_fma_loop"(long iters, int wide) noexcept  # flops done; 0: not measured here


cdef double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef double _run(floating[::1] a, floating[::1] b, floating[::1] c, const Py_ssize_t[:, ::1] calls,
                 int reps) noexcept nogil:
    cdef Py_ssize_t i, r, lda, ldb, ldc
    cdef floating one = 1
    cdef double t0 = _now()
    for r in range(reps):
        for i in range(calls.shape[0]):
            # (trans_a, trans_b, m, n, k[, lda, ldb, ldc]): operands at the start of each buffer,
            # packed unless leading dimensions are given
            lda = calls[i, 4] if calls[i, 0] == 0 else calls[i, 2]
            ldb = calls[i, 3] if calls[i, 1] == 0 else calls[i, 4]
            ldc = calls[i, 3]
            if calls.shape[1] == 8:
                lda, ldb, ldc = calls[i, 5], calls[i, 6], calls[i, 7]
            gemm(calls[i, 0] != 0, calls[i, 1] != 0, calls[i, 2], calls[i, 3], calls[i, 4], one,
                 &a[0], lda, &b[0], ldb, one, &c[0], ldc)
    return (_now() - t0) / reps


def sequence_seconds(calls, dtype=np.float32, int reps=3) -> float:
    """Seconds to run the GEMM sequence ``calls`` [(trans_a, trans_b, m, n, k), ...] once."""
    table = np.asarray(calls, dtype=np.intp)
    # 5 or 8 columns (no negative indices here: wraparound=False)
    table = np.ascontiguousarray(table.reshape(-1, table.shape[1] if table.ndim == 2 else 5))
    if table.shape[0] == 0:
        return 0.0
    m, n, k = table[:, 2], table[:, 3], table[:, 4]
    size = int(max((m * k).max(), (k * n).max(), (m * n).max()))
    if table.shape[1] == 8:  # explicit leading dimensions: room for the longest stride
        size = int(max(size, (np.maximum(m, k) * table[:, 5:8].max(axis=1)).max()))
    rng = np.random.default_rng(0)
    a = rng.standard_normal(size).astype(dtype)
    b = rng.standard_normal(size).astype(dtype)
    c = np.zeros(size, dtype=dtype)
    if dtype == np.float32:
        _run[float](a, b, c, table, 1)
        return _run[float](a, b, c, table, reps)
    _run[double](a, b, c, table, 1)
    return _run[double](a, b, c, table, reps)


def gemm_flops_per_second(Py_ssize_t size=1024, dtype=np.float32, int reps=5) -> float:
    """Single-call square GEMM throughput (flop/s): the yardstick for kernel efficiency."""
    return 2.0 * size ** 3 / sequence_seconds([(0, 0, size, size, size)], dtype, reps)


def output_grid(Py_ssize_t m, Py_ssize_t n):
    """``(tiles_m, tiles_n, tm, tn)``: how the kernels' all-step GEMMs cut an (m, n) result."""
    cdef TileGrid g = _output_grid(m, n)
    return g.tiles_m, g.tiles_n, g.tm, g.tn


def fma_ceiling_flops_per_second(dtype=np.float32, int num_threads=1, double seconds=0.05) -> float:
    """The arithmetic ceiling (flop/s): ``num_threads`` threads each running only independent vector FMAs
    on registers (``fma_ceiling.h``) for about ``seconds``.  No GEMM beats it.  0.0 where it is not
    measured (a CPU without AVX2 + FMA, a compiler other than GCC or Clang)."""
    kind = np.dtype(dtype)
    if kind not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {kind}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1; got {num_threads}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive; got {seconds}")
    cdef int wide = kind == np.float64
    cdef int nt = num_threads, t
    cdef long iters = 10000
    cdef double t0, dt, flops = 0
    if fma_loop(1, wide) == 0:
        return 0.0
    while True:  # grow the loop until one thread's run takes ``seconds``
        t0 = _now()
        with nogil:
            fma_loop(iters, wide)
        dt = _now() - t0
        if dt >= seconds or iters > (1L << 40):
            break
        iters = iters * 2 if dt <= 0 else <long>(iters * min(2 * seconds / dt, 64.0))
    t0 = _now()
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        flops += fma_loop(iters, wide)
    return flops / (_now() - t0)
