# cython: language_level=3, boundscheck=False, wraparound=False
"""The gate functions of the kernels (src/fastmath.h) applied to arrays,
so that tests can measure their error against NumPy."""
from cython cimport floating

from kernel_common cimport sigmoid, tanh_, exp_


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
