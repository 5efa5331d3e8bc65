# cython: language_level=3
"""Element-wise maths of the gates: the vectorizable sigmoid and tanh of ``fastmath.h`` (error bounds
stated there and tested), and the one-row passes the cells build on."""
from cython cimport floating


cdef extern from "fastmath.h" nogil:
    # Branch-free, vectorizable; error bounds stated in the header and tested.
    float rnnfast_expf(float x) noexcept
    double rnnfast_exp(double x) noexcept
    float rnnfast_sigmoidf(float x) noexcept
    double rnnfast_sigmoid(double x) noexcept
    float rnnfast_tanhf(float x) noexcept
    double rnnfast_tanh(double x) noexcept


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return rnnfast_expf(x)
    else:
        return rnnfast_exp(x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    if floating is float:
        return rnnfast_sigmoidf(x)
    else:
        return rnnfast_sigmoid(x)


cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return rnnfast_tanhf(x)
    else:
        return rnnfast_tanh(x)


# Gate passes over one row's units: each is a single simple loop, which gcc
# turns into SIMD code (a fused loop writing four gate blocks did not vectorize).
cdef inline void sigmoid_inplace(floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = sigmoid(a[j])


cdef inline void tanh_inplace(floating* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = tanh_(a[j])


cdef inline void fill(floating* a, Py_ssize_t n, floating value) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = value


cdef inline void copy(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j]

