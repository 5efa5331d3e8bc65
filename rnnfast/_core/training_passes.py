"""Which arrays the compiled training passes (``src/training.pyx``: dropout's masks, Adam, the squared norm)
take, and their thread count.  The callers keep their NumPy twins for everything else: other dtypes,
strided or read-only arrays, and the NumPy backend (``rnnfast.backend``)."""
from __future__ import annotations

import numpy as np

from .. import backend
from .dispatch import kernel_module
from .threads import resolve_num_threads

_training = kernel_module("training")  # the AVX2 twin when the CPU has it


def compiled(*arrays) -> bool:
    """True where the compiled passes serve these arrays: the Cython backend is on, and every array is a
    C-contiguous, writeable float32 or float64 ndarray of the first one's dtype."""
    if backend.current() != "cython":
        return False
    dtype = getattr(arrays[0], "dtype", None)
    if dtype not in (np.float32, np.float64):
        return False
    return all(isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
               for a in arrays)


def dropout_keep(key: int, threshold: int, scale: float, out: np.ndarray) -> None:
    _training.dropout_keep(key, threshold, scale, out.reshape(-1), resolve_num_threads())


def adam_update(p, g, m, v, beta1: float, beta2: float, step: float, eps: float) -> None:
    _training.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), beta1, beta2, step, eps,
                          resolve_num_threads())


def sum_of_squares(g: np.ndarray) -> float:
    return _training.sum_of_squares(g.reshape(-1), resolve_num_threads())
