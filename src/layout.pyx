# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Layout helpers the Python glue needs fast: a cache-blocked transpose, the
checked time-major copy of a sequence, the finiteness check of a sequence read
in place, and the batch-major copy back.

NumPy's ``np.ascontiguousarray(W.T)`` walks one side with a large stride (a
tenth of a small LSTM backward pass); tiles of BLOCK x BLOCK keep both sides in
cache, each moved in register blocks (``transpose.h``).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint64_t

from dropout_mask cimport kept_value
from finite cimport EXP32, EXP64, any_nonfinite, nonfinite_blocks

cdef extern from "transpose.h" nogil:
    void rnnfast_transpose_tile_f32(const float* s, float* d, Py_ssize_t m, Py_ssize_t n, Py_ssize_t i0,
                                    Py_ssize_t i1, Py_ssize_t j0, Py_ssize_t j1)
    void rnnfast_transpose_tile_f64(const double* s, double* d, Py_ssize_t m, Py_ssize_t n, Py_ssize_t i0,
                                    Py_ssize_t i1, Py_ssize_t j0, Py_ssize_t j1)

cdef enum:
    BLOCK = 16

def transpose_into(const floating[:, ::1] src, floating[:, ::1] dst, int num_threads):
    """``dst[:] = src.T``; ``dst`` has shape ``(src.shape[1], src.shape[0])`` (checked by the caller)."""
    cdef Py_ssize_t m = src.shape[0], n = src.shape[1]
    cdef Py_ssize_t bm = (m + BLOCK - 1) // BLOCK, bn = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t blk, i0, j0, i1, j1, i, j
    if m == 0 or n == 0:
        return
    cdef const floating* s = &src[0, 0]
    cdef floating* d = &dst[0, 0]
    for blk in prange(bm * bn, nogil=True, schedule="static", num_threads=num_threads):
        i0 = (blk // bn) * BLOCK
        j0 = (blk % bn) * BLOCK
        i1 = min(i0 + BLOCK, m)
        j1 = min(j0 + BLOCK, n)
        if floating is float:
            rnnfast_transpose_tile_f32(s, d, m, n, i0, i1, j0, j1)
        else:
            rnnfast_transpose_tile_f64(s, d, m, n, i0, i1, j0, j1)


cdef inline Py_ssize_t _copy_count_nonfinite(const floating* s, Py_ssize_t stride, floating* d,
                                              Py_ssize_t n) noexcept nogil:
    # The copy and the test run on the bits: an integer OR reduces in any order, so it vectorizes, where a
    # count of float compares ran at a third of the copy's speed.  Returns 0 or 1.
    cdef Py_ssize_t j
    cdef const unsigned int* s32 = <const unsigned int*>s
    cdef unsigned int* d32 = <unsigned int*>d
    cdef const unsigned long long* s64 = <const unsigned long long*>s
    cdef unsigned long long* d64 = <unsigned long long*>d
    cdef unsigned int bad32 = 0
    cdef unsigned long long bad64 = 0
    if floating is float:
        if stride == 1:
            for j in range(n):
                d32[j] = s32[j]
                bad32 |= (s32[j] & EXP32) == EXP32
        else:
            for j in range(n):
                d32[j] = s32[j * stride]
                bad32 |= (s32[j * stride] & EXP32) == EXP32
    else:
        if stride == 1:
            for j in range(n):
                d64[j] = s64[j]
                bad64 |= (s64[j] & EXP64) == EXP64
        else:
            for j in range(n):
                d64[j] = s64[j * stride]
                bad64 |= (s64[j * stride] & EXP64) == EXP64
    return bad32 + (bad64 != 0)


# Dropout on the way (a sequence function's ``input_dropout``): element i of the batch-major (N, T, F) array,
# C order, times its mask value (``dropout_mask.pxd``; the bits of ``training.dropout_times``).  Folded into the
# layout copies, dropout between two layers costs no pass of its own.

cdef inline Py_ssize_t _copy_dropped_count_nonfinite(const floating* s, Py_ssize_t stride, floating* d, Py_ssize_t n,
                                                     uint64_t key, uint64_t i0, uint64_t threshold,
                                                     floating kept) noexcept nogil:
    # d[j] = s[j] * the mask of element i0 + j; 1 if a value read is NaN or Inf (then so is its product), else 0
    cdef Py_ssize_t j
    cdef const unsigned int* s32 = <const unsigned int*>s
    cdef const unsigned long long* s64 = <const unsigned long long*>s
    cdef unsigned int bad32 = 0
    cdef unsigned long long bad64 = 0
    for j in range(n):
        d[j] = s[j * stride] * kept_value(key, i0 + <uint64_t>j, threshold, kept)
        if floating is float:
            bad32 |= (s32[j * stride] & EXP32) == EXP32
        else:
            bad64 |= (s64[j * stride] & EXP64) == EXP64
    return bad32 + (bad64 != 0)


def time_major_into(const floating[:, :, :] src, floating[:, :, ::1] dst, const Py_ssize_t[::1] lengths,
                    int num_threads, tuple dropout=None) -> int:
    """``dst[t, n] = src[n, t]`` at valid steps (``t < lengths[n]``) and 0 at padded ones, in one pass
    that also checks the values copied (returned: the number of rows with a NaN or Inf, 0 if all are finite).

    Replaces three passes of NumPy (zero the padding, ``isfinite(...).all()`` with its temporary,
    the transposing copy).  ``src`` may have any strides; ``dst`` is ``(T, N, D)``, checked by the caller.
    ``dropout`` ``(key, threshold, scale)``: the copy is of ``src`` times dropout's mask (below).
    """
    cdef Py_ssize_t N = src.shape[0], T = src.shape[1], D = src.shape[2], t, n, j
    cdef Py_ssize_t bad = 0
    cdef bint drop = dropout is not None
    cdef uint64_t key = dropout[0] if drop else 0, threshold = dropout[1] if drop else 0
    cdef floating kept = <floating>dropout[2] if drop else 1
    if N == 0 or T == 0 or D == 0:
        return 0
    cdef const char* base = <const char*>&src[0, 0, 0]
    cdef Py_ssize_t s0 = src.strides[0], s1 = src.strides[1], s2 = src.strides[2] // <Py_ssize_t>sizeof(floating)
    cdef floating* d = &dst[0, 0, 0]
    cdef const Py_ssize_t* length = &lengths[0]
    for t in prange(T, nogil=True, schedule="static", num_threads=num_threads):
        for n in range(N):
            if t >= length[n]:
                for j in range(D):
                    d[(t * N + n) * D + j] = 0
            elif drop:
                bad += _copy_dropped_count_nonfinite(<const floating*>(base + n * s0 + t * s1), s2,
                                                     d + (t * N + n) * D, D, key, <uint64_t>((n * T + t) * D),
                                                     threshold, kept)
            else:
                bad += _copy_count_nonfinite(<const floating*>(base + n * s0 + t * s1), s2, d + (t * N + n) * D, D)
    return bad


def count_nonfinite_steps(const floating[:, :, ::1] src, const Py_ssize_t[::1] lengths, int num_threads) -> int:
    """The sequences of a batch-major ``(N, T, F)`` array with a NaN or Inf at a valid step (``t < lengths[n]``),
    for a sequence the kernels read in place (``dhs``): sequence n's valid steps are one run of
    ``lengths[n] * F`` values.  0 means all finite."""
    cdef Py_ssize_t N = src.shape[0], T = src.shape[1], F = src.shape[2], n
    cdef Py_ssize_t bad = 0
    if N == 0 or T == 0 or F == 0:
        return 0
    cdef const floating* s = &src[0, 0, 0]
    cdef const Py_ssize_t* length = &lengths[0]
    for n in prange(N, nogil=True, schedule="static", num_threads=num_threads):
        bad += any_nonfinite(s + n * T * F, min(length[n], T) * F)
    return bad


def count_nonfinite(const floating[::1] a, int num_threads) -> int:
    """The blocks of ``CHECK_BLOCK`` values of ``a`` (an array's flat view) with a NaN or Inf: 0 means all
    finite.  The weights' check: NumPy's ``isfinite(a).all()`` is one thread and a temporary, 0.9 ms for the
    8 MiB of a 512-unit LSTM's weights on a 16-core Xeon."""
    cdef Py_ssize_t bad = 0
    if a.shape[0] == 0:
        return 0
    with nogil:
        bad = nonfinite_blocks(&a[0], a.shape[0], num_threads)
    return bad


def batch_major_into(const floating[:, :, ::1] src, floating[:, :, ::1] dst, int num_threads, tuple dropout=None):
    """``dst[n, t] = src[t, n]``: a kernel's time-major ``(T, N, F)`` result into the user's batch-major
    ``(N, T, F)`` array (``dx``); whole rows of F values, each thread writing its own rows.  ``dropout`` ``(key,
    threshold, scale)``: times dropout's mask (``dx`` of the x that ``time_major_into`` dropped)."""
    cdef Py_ssize_t T = src.shape[0], N = src.shape[1], F = src.shape[2], r, j
    cdef bint drop = dropout is not None
    cdef uint64_t key = dropout[0] if drop else 0, threshold = dropout[1] if drop else 0
    cdef floating kept = <floating>dropout[2] if drop else 1
    if N == 0 or T == 0 or F == 0:
        return
    cdef const floating* s = &src[0, 0, 0]
    cdef floating* d = &dst[0, 0, 0]
    for r in prange(N * T, nogil=True, schedule="static", num_threads=num_threads):  # r = n * T + t
        if drop:
            for j in range(F):
                d[r * F + j] = (s[((r % T) * N + r // T) * F + j]
                                * kept_value(key, <uint64_t>(r * F + j), threshold, kept))
        else:
            for j in range(F):
                d[r * F + j] = s[((r % T) * N + r // T) * F + j]


# --- Ragged batches: the staircase layout (rnnfast._core.buffers.Staircase) ---
#
# The sequences sorted longest first (``order[i]``: the user's row of sorted row i), step t's block of a
# time-major array starts at row ``offsets[t]`` and holds ``offsets[t+1] - offsets[t]`` rows, of which the
# first ``active[t]`` are the sequences still running; the rest of the block is zero.

def staircase_into(const floating[:, :, :] src, floating[:, ::1] dst, const Py_ssize_t[::1] order,
                   const Py_ssize_t[::1] offsets, const Py_ssize_t[::1] active, int num_threads) -> int:
    """``dst[offsets[t] + i] = src[order[i], t]`` for the active rows ``i < active[t]``, 0 for the rest of
    each block; returns the number of rows copied with a NaN or Inf (0: all finite).  ``src (N, T, D)`` may have
    any strides."""
    cdef Py_ssize_t N = src.shape[0], T = src.shape[1], D = src.shape[2], t, i, j, r
    cdef Py_ssize_t bad = 0
    if N == 0 or T == 0 or D == 0:
        return 0
    cdef const char* base = <const char*>&src[0, 0, 0]
    cdef Py_ssize_t s0 = src.strides[0], s1 = src.strides[1], s2 = src.strides[2] // <Py_ssize_t>sizeof(floating)
    cdef floating* d = &dst[0, 0]
    cdef const Py_ssize_t* o = &order[0]
    cdef const Py_ssize_t* off = &offsets[0]
    cdef const Py_ssize_t* a = &active[0]
    for t in prange(T, nogil=True, schedule="static", num_threads=num_threads):
        for i in range(off[t + 1] - off[t]):
            r = off[t] + i
            if i < a[t]:
                bad += _copy_count_nonfinite(<const floating*>(base + o[i] * s0 + t * s1), s2, d + r * D, D)
            else:
                for j in range(D):
                    d[r * D + j] = 0
    return bad


def staircase_to_batch(const floating[:, ::1] src, floating[:, :, ::1] dst, const Py_ssize_t[::1] order,
                       const Py_ssize_t[::1] offsets, const Py_ssize_t[::1] active, int num_threads):
    """The other way: ``dst[order[i], t] = src[offsets[t] + i]`` for the active rows, 0 at the padded steps
    (``dst (N, T, F)``, C-contiguous, every element written)."""
    cdef Py_ssize_t N = dst.shape[0], T = dst.shape[1], F = dst.shape[2], t, i, j
    if N == 0 or T == 0 or F == 0:
        return
    cdef const floating* s = &src[0, 0] if src.shape[0] > 0 else NULL
    cdef floating* d = &dst[0, 0, 0]
    cdef const Py_ssize_t* o = &order[0]
    cdef const Py_ssize_t* off = &offsets[0]
    cdef const Py_ssize_t* a = &active[0]
    for i in prange(N, nogil=True, schedule="static", num_threads=num_threads):
        for t in range(T):
            if i < a[t]:
                for j in range(F):
                    d[(o[i] * T + t) * F + j] = s[(off[t] + i) * F + j]
            else:
                for j in range(F):
                    d[(o[i] * T + t) * F + j] = 0
