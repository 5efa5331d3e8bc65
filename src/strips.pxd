# cython: language_level=3
"""Streaming (the steppers): one step per call on weights packed once, per unit block, as column strips;
the one-row (or few-row) products on them, and the buffers a unit block of any cell reads and writes."""
from cython cimport floating

from blas cimport gemm

# A unit block's (k, n) weights are stored as column strips of STRIP_BYTES: strip s holds columns
# s*S .. s*S+w-1 (S = STRIP_BYTES / itemsize, w = S but for the last) as its own contiguous
# (k, w) block, so that one row's product keeps a strip's sums in registers (8 AVX registers)
# and reads the strip once, in order.  ``rnnfast.stepper`` lays them out.
cdef enum:
    STRIP_BYTES = 256
    STRIP_MAX = 64  # the most columns a strip has (float32)


cdef inline void _strip_sums(Py_ssize_t w, Py_ssize_t k, const floating* x, const floating* a,
                             floating* acc) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating xi
    cdef const floating* r
    for j in range(w):
        acc[j] = 0
    for i in range(k):
        xi = x[i]
        r = a + i * w
        for j in range(w):
            acc[j] = acc[j] + xi * r[j]


cdef inline void strip_matvec(Py_ssize_t w, Py_ssize_t k, const floating* x, const floating* a,
                              floating* y) noexcept nogil:
    """``y(1, w) += x(1, k) @ A(k, w)``, A contiguous, w at most a strip's width.

    Memory-bound: the sums stay in registers and A is read once, in order (a loop over y in memory,
    four rows of A a pass, ran 3x slower at H=1024; this runs at about OpenBLAS's GEMV speed)."""
    cdef floating acc[STRIP_MAX]
    cdef Py_ssize_t j, S = STRIP_BYTES // sizeof(floating)
    if w == S:  # a full strip: inlined with a constant width, so the sums stay in registers
        _strip_sums(S, k, x, a, acc)
    else:
        _strip_sums(w, k, x, a, acc)
    for j in range(w):
        y[j] = y[j] + acc[j]


cdef inline void row_product(Py_ssize_t N, Py_ssize_t n, Py_ssize_t k, const floating* x, const floating* a,
                             floating* y) noexcept nogil:
    """Row-major ``y(N, n) += x(N, k) @ A(k, n)`` for the steppers, A a unit block's column strips
    (above): ``strip_matvec`` for one row (which calls no BLAS, so nothing needs pinning at every
    token), BLAS's GEMM strip by strip for a batch."""
    cdef floating one = 1
    cdef Py_ssize_t s0 = 0, w, S = STRIP_BYTES // sizeof(floating)
    while s0 < n:
        w = min(S, n - s0)
        if N == 1:
            strip_matvec(w, k, x, a + s0 * k, y + s0)
        else:  # BLAS; strip_matvec row by row lost at N = 2-4 and at H <= 512 (won only N = 8-16, H = 1024)
            gemm(False, False, N, w, k, one, x, k, a + s0 * k, w, one, y + s0, n)
        s0 = s0 + w


cdef struct StreamBuffers:
    # What a unit block of a stepper's step reads and writes; arrays are float* or double*, NULL where
    # the cell has none.  K = D + H; a unit block has ``width`` units and ``groups`` column groups.
    int cell                 # kernels.pyx's CELL_LSTM, CELL_GRU, CELL_RNN
    bint reset_after         # GRU
    bint relu                # RNN
    Py_ssize_t N, K, D, H, width, groups
    const void* xh           # (N, K) [x_t | h_{t-1}]
    const void* strips       # (unit blocks, K, groups * width) the packed [Wx; Wh] columns, as strips
    const void* b_strips     # (unit blocks, groups * width) the packed biases
    const void* strips_n     # reset-before GRU: (unit blocks, H, width) Wh's n columns
    void* xh_next            # (N, K): h_t goes to its columns D:
    void* c                  # (N, H) LSTM's cell state, updated in place
    void* rh                 # (N, H) reset-before GRU: r * h_{t-1}
    void* gn                 # reset-before GRU: (unit blocks, N, width) (r * h) @ Wh_n
    const void* peep         # LSTM with peepholes: (3H,) [p_i | p_f | p_o]
    bint zoneout             # LSTM with zoneout, evaluation: c, h keep z_c, z_h of their previous value
    double z_c, z_h
