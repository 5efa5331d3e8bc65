# cython: language_level=3, boundscheck=False, wraparound=False
"""Inline helpers of the kernels applied to arrays, so that tests can check them alone:
the gate functions (src/fastmath.h) against NumPy, and the all-step products
(``all_steps.all_steps_gemm`` and its packed micro-kernel path).  ``product`` also serves
the layers' dense products (``rnnfast._core.products``)."""
from cython cimport floating

import numpy as np

from all_steps cimport all_steps_gemm, packed_tiled_gemm, take_over_probe, tiled_gemm
from gate_math cimport exp_, sigmoid, tanh_
from interrupt cimport interrupt_mark
from microkernel cimport RNNFAST_PACKED_GEMM, force_sliver_rows, select_sliver_rows, select_wide_kernel

# 1 where this build has the packed micro-kernel (float32 and float64, AVX2 + FMA)
PACKED_GEMM = RNNFAST_PACKED_GEMM


def use_wide_microkernel(bint on):
    """As ``kernels.use_wide_microkernel``, for this module's products: the switch is a static of
    ``packed_gemm.h``, one per compiled module, so each module that runs the micro-kernel sets its own
    (``rnnfast._core.dispatch`` does at import).  The bits do not change."""
    return bool(select_wide_kernel(on))


def use_sliver_rows(int rows, bint force=False):
    """As ``kernels.use_sliver_rows``, for this module's products (a static of ``packed_gemm.h`` too)."""
    return force_sliver_rows(rows) if force else select_sliver_rows(rows)


def apply(str name, floating[::1] x):
    """In place: ``name`` is "exp", "sigmoid" or "tanh"."""
    cdef Py_ssize_t i, n = x.shape[0]
    if name == "exp":
        for i in range(n):
            x[i] = exp_(x[i])
    elif name == "sigmoid":
        for i in range(n):
            x[i] = sigmoid(x[i])
    elif name == "tanh":
        for i in range(n):
            x[i] = tanh_(x[i])
    else:
        raise ValueError(f"name must be 'exp', 'sigmoid' or 'tanh'; got {name!r}")


def rows_taken_over(int late_thread=-1, double seconds=0):
    """Internal, for tests: ``all_steps.take_over_probe`` for this module's products."""
    return take_over_probe(late_thread, seconds)


def product(a, b, bint trans_a=False, bint trans_b=False, bias=None, int num_threads=1, str path="auto",
            out=None):
    """``op(a) @ op(b) (+ bias)`` as the kernels' all-step products compute it, a new C-contiguous
    array, or written into ``out`` (C-contiguous, (m, n), a's dtype; read by nothing).  ``path``: "auto"
    (``all_steps_gemm``'s choice), "packed" (the micro-kernel; builds with ``PACKED_GEMM`` only)
    or "blas" (``tiled_gemm``)."""
    if path not in ("auto", "packed", "blas"):
        raise ValueError(f"path must be 'auto', 'packed' or 'blas'; got {path!r}")
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b, dtype=a.dtype)
    if a.dtype not in (np.float32, np.float64) or a.ndim != 2 or b.ndim != 2:
        raise TypeError("a and b must be 2-D float32 or float64 arrays")
    m, ka = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if ka != kb:
        raise ValueError(f"inner sizes differ: {ka} and {kb}")
    if path == "packed" and not PACKED_GEMM:
        raise ValueError("path='packed' needs a build with the micro-kernel")
    if out is None:
        c = np.empty((m, n), dtype=a.dtype)
    elif not (isinstance(out, np.ndarray) and out.shape == (m, n) and out.dtype == a.dtype
              and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous {a.dtype} array of shape {(m, n)}; got "
                         f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    else:
        c = out
    bias_arr = None if bias is None else np.ascontiguousarray(bias, dtype=a.dtype).reshape(n)
    if a.dtype == np.float32:
        _product[float](a.reshape(-1), b.reshape(-1), c.reshape(-1), bias_arr, trans_a, trans_b, m, n, ka,
                        num_threads, path)
    else:
        _product[double](a.reshape(-1), b.reshape(-1), c.reshape(-1), bias_arr, trans_a, trans_b, m, n, ka,
                         num_threads, path)
    return c


cdef _product(const floating[::1] a, const floating[::1] b, floating[::1] c, const floating[::1] bias,
              bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int num_threads, str path):
    cdef const floating* a_p = &a[0] if a.shape[0] > 0 else NULL
    cdef const floating* b_p = &b[0] if b.shape[0] > 0 else NULL
    cdef floating* c_p = &c[0] if c.shape[0] > 0 else NULL
    cdef const floating* bias_p = &bias[0] if bias is not None and bias.shape[0] > 0 else NULL
    cdef Py_ssize_t lda = max(m if trans_a else k, 1), ldb = max(k if trans_b else n, 1), ldc = max(n, 1)
    cdef long mark = interrupt_mark()
    cdef int how = 0 if path == "auto" else (1 if path == "packed" else 2)
    with nogil:
        if how == 0:
            all_steps_gemm(trans_a, trans_b, m, n, k, a_p, lda, b_p, ldb, c_p, ldc, bias_p, num_threads, mark, True)
        elif how == 2:
            tiled_gemm(trans_a, trans_b, m, n, k, a_p, lda, b_p, ldb, 0, c_p, ldc, bias_p, num_threads, mark)
        else:
            if not packed_tiled_gemm(trans_a, trans_b, m, n, k, a_p, lda, b_p, ldb, c_p, ldc, bias_p, NULL,
                                     num_threads, mark):
                with gil:
                    raise MemoryError("packing buffer")
