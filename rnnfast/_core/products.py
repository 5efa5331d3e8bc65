"""Dense products of the layers around the cells (the output layer), on the kernels' all-step products
(``mathfuncs.product``: the micro-kernel or BLAS tiles, on the model's OpenMP threads).  ``rnnfast train``
pins NumPy's BLAS to one thread, so that its threads never spin beside the kernels' team: NumPy's ``@``
ran the output layer on one core.  Tiles of a fixed shape: the bits do not depend on the thread count."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .dispatch import kernel_module
from .threads import resolve_num_threads, single_threaded_blas
from .training_passes import compiled_dtype
from .workspace import pool

_mathfuncs = kernel_module("mathfuncs")  # the AVX-512 or AVX2 twin where the CPU runs it


def compiled(*arrays) -> bool:
    """True where the compiled products serve these arrays: ``training_passes.compiled_dtype`` (the Cython
    backend, float32 or float64), and every array an ndarray of the first one's dtype (any layout: the
    product reads a C-contiguous copy where needed)."""
    dtype = getattr(arrays[0], "dtype", None)
    return compiled_dtype(dtype) and all(isinstance(a, np.ndarray) and a.dtype == dtype for a in arrays)


def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False,
           bias: Optional[np.ndarray] = None, num_threads=None, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``op(a) @ op(b) (+ bias)`` of 2-D arrays, a new C-contiguous array (``pool.output``), or written into
    ``out`` (C-contiguous, of the result's shape and dtype, read by nothing); NumPy twin: ``a @ b + bias``."""
    if out is None and a.ndim == b.ndim == 2 and a.dtype in (np.float32, np.float64):
        # shapes and types the product refuses get its error
        out = pool.output((a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1]), a.dtype)
    with single_threaded_blas():  # the BLAS tiles run inside the kernels' parallel region
        return _mathfuncs.product(a, b, trans_a, trans_b, bias, resolve_num_threads(num_threads), out=out)
