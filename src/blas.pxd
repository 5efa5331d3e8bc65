# cython: language_level=3
"""The one BLAS shim: row-major GEMM on SciPy's BLAS (``scipy.linalg.cython_blas``: no link flags,
callable without the GIL).  Sizes were checked against the 32-bit BLAS limit in Python."""
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv


cdef inline void gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      floating alpha, const floating* a, Py_ssize_t lda,
                      const floating* b, Py_ssize_t ldb,
                      floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``C(m, n) = alpha * op(A)(m, k) @ op(B)(k, n) + beta * C``.

    BLAS is column-major, and a row-major matrix is the column-major view of
    its transpose; so we ask BLAS for ``C^T = op(B)^T @ op(A)^T``, which is the
    same call with the operands swapped.  Sizes were checked against the
    32-bit BLAS limit in Python before any kernel runs.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef int lda_ = <int>ldb, ldb_ = <int>lda, ldc_ = <int>ldc
    cdef int one = 1
    cdef Py_ssize_t j
    if m == 0 or n == 0:
        return
    if m == 1 and not trans_a and k > 0:
        # One row: ``c^T = op(B)^T a^T``, BLAS's GEMV.  OpenBLAS's GEMM takes its small-matrix kernel here,
        # which walks B's rows column block by column block and ran at a third of GEMV's speed
        # (a batch-1 step of a 1024-unit layer).
        if trans_b:  # B (n, k) row-major is the column-major (k, n): GEMV "T" over its k rows
            m_, k_ = k_, m_
        if beta == 0:  # C may hold anything (NaN from an earlier call): zeros, not GEMV's 0 * C
            for j in range(n):
                c[j] = 0
            beta = 1
        if floating is float:
            sgemv(&ta, &m_, &k_, &alpha, <float*>b, &lda_, <float*>a, &one, &beta, c, &one)
        else:
            dgemv(&ta, &m_, &k_, &alpha, <double*>b, &lda_, <double*>a, &one, &beta, c, &one)
        return
    if floating is float:
        sgemm(&ta, &tb, &m_, &n_, &k_, &alpha, <float*>b, &lda_, <float*>a, &ldb_, &beta, c, &ldc_)
    else:
        dgemm(&ta, &tb, &m_, &n_, &k_, &alpha, <double*>b, &lda_, <double*>a, &ldb_, &beta, c, &ldc_)
