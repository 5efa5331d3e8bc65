# cython: language_level=3
"""Whether values are NaN or Inf, tested on their bits: the checks of ``layout``, of the weights
(``kernels.prepare_forward``) and of the step weights' packing (``microkernel.pack_step_panels``) share it."""
from cython cimport floating
from cython.parallel cimport prange

from threads cimport team

cdef extern from *:
    """
    /* A float is NaN or Inf exactly when its exponent bits are all ones (IEEE 754). */
    #define RNNFAST_EXP32 0x7f800000u
    #define RNNFAST_EXP64 0x7ff0000000000000ull
    """
    unsigned int EXP32 "RNNFAST_EXP32"
    unsigned long long EXP64 "RNNFAST_EXP64"

cdef enum:
    CHECK_BLOCK = 1 << 14  # values a thread checks at a time: 64 KiB of float32
    # a team from this many blocks on (64K values, as the layout copies' ``buffers.PARALLEL_COPY_MIN``): below,
    # starting it costs about what it saves
    PARALLEL_CHECK_BLOCKS = 4


cdef inline Py_ssize_t any_nonfinite(const floating* s, Py_ssize_t n) noexcept nogil:
    """1 if one of the ``n`` values at ``s`` is NaN or Inf, else 0.  An integer OR reduces in any order, so the
    loop vectorizes, where a count of float compares ran at a third of a copy's speed."""
    cdef Py_ssize_t j
    cdef const unsigned int* s32 = <const unsigned int*>s
    cdef const unsigned long long* s64 = <const unsigned long long*>s
    cdef unsigned int bad32 = 0
    cdef unsigned long long bad64 = 0
    if floating is float:
        for j in range(n):
            bad32 |= (s32[j] & EXP32) == EXP32
    else:
        for j in range(n):
            bad64 |= (s64[j] & EXP64) == EXP64
    return bad32 + (bad64 != 0)


cdef inline Py_ssize_t nonfinite_blocks(const floating* s, Py_ssize_t n, int num_threads) noexcept nogil:
    """The blocks of ``CHECK_BLOCK`` of the ``n`` values at ``s`` that hold a NaN or Inf, on up to ``num_threads``
    threads (one below ``PARALLEL_CHECK_BLOCKS``): 0 means all finite."""
    cdef Py_ssize_t blocks = (n + CHECK_BLOCK - 1) // CHECK_BLOCK, i, bad = 0
    for i in prange(blocks, num_threads=team(blocks, num_threads) if blocks >= PARALLEL_CHECK_BLOCKS else 1,
                    schedule="static"):
        bad += any_nonfinite(s + i * CHECK_BLOCK, min(<Py_ssize_t>CHECK_BLOCK, n - i * CHECK_BLOCK))
    return bad
