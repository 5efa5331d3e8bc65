"""Which arrays the compiled training passes (``src/training.pyx``: dropout's masks and products, the
softmax cross-entropy, the embedding's gradient, Adam, the squared norm) take, and their thread count.  The callers
keep their NumPy twins for everything else: other dtypes and shapes, strided or read-only arrays, and the
NumPy backend (``rnnfast.backend``)."""
from __future__ import annotations

import numpy as np

from .. import backend
from .dispatch import kernel_module
from .threads import resolve_num_threads

_training = kernel_module("training")  # the AVX-512 or AVX2 twin where the CPU runs it


def compiled_dtype(dtype) -> bool:
    """True where the compiled passes serve arrays of ``dtype`` (which they read through a C-contiguous
    copy where needed): the Cython backend is on and the dtype is float32 or float64."""
    return backend.current() == "cython" and dtype in (np.float32, np.float64)


def compiled_inputs(*arrays) -> bool:
    """True where the compiled passes serve these arrays as inputs: ``compiled_dtype``, and every array is a
    C-contiguous ndarray of the first one's dtype and shape (NumPy's path broadcasts the rest)."""
    return _compiled(arrays, False)


def compiled(*arrays) -> bool:
    """True where the compiled passes serve these arrays in place: ``compiled_inputs``, and every array is
    writeable."""
    return _compiled(arrays, True)


def _compiled(arrays, writeable: bool) -> bool:
    # A plain loop: the training step asks this of every parameter, twice (generator expressions in all()
    # made it a dozen calls each).
    first = arrays[0]
    dtype = getattr(first, "dtype", None)
    if not compiled_dtype(dtype):
        return False
    shape = first.shape
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
            return False
        flags = a.flags
        if not flags.c_contiguous or (writeable and not flags.writeable):
            return False
    return True


def dropout_keep(key: int, threshold: int, scale: float, out: np.ndarray) -> None:
    _training.dropout_keep(key, threshold, scale, out.reshape(-1), resolve_num_threads())


def dropout_times(key: int, threshold: int, scale: float, x: np.ndarray, out: np.ndarray, num_threads=None) -> None:
    """``out = x * mask`` with ``dropout_keep``'s mask, drawn as it goes and not stored: C-contiguous arrays of one
    shape and dtype; ``num_threads`` as ``resolve_num_threads``'s."""
    _training.dropout_times(key, threshold, scale, x.reshape(-1), out.reshape(-1), resolve_num_threads(num_threads))


def times(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = a * b``: C-contiguous arrays of one shape and dtype."""
    _training.times(a.reshape(-1), b.reshape(-1), out.reshape(-1), resolve_num_threads())


def adam_update(params, grads, ms, vs, beta1: float, beta2: float, step: float, eps: float) -> None:
    """Adam's step of every parameter, each ``compiled`` with its gradient and moments, all of one dtype."""
    flat = [[a.reshape(-1) for a in arrays] for arrays in (params, grads, ms, vs)]
    _training.adam_update(*flat, beta1, beta2, step, eps, resolve_num_threads())


def sums_of_squares(grads) -> list:
    """Each array's sum of squares in float64: ``compiled_inputs`` arrays of one dtype."""
    return _training.sum_of_squares([g.reshape(-1) for g in grads], resolve_num_threads())


def softmax_cross_entropy(scores: np.ndarray, targets: np.ndarray, ignore: int, probs: np.ndarray) -> float:
    """``scores`` (rows, V) C-contiguous, ``targets`` (rows,) intp; fills ``probs``; the summed loss."""
    return _training.softmax_cross_entropy(scores, targets, ignore, probs, resolve_num_threads())


def softmax_cross_entropy_backward(probs, targets, ignore: int, scale: float, out: np.ndarray) -> None:
    _training.softmax_cross_entropy_backward(probs, targets, ignore, scale, out, resolve_num_threads())


def scatter_add_rows(out: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> None:
    """``out (V, D)`` C-contiguous, ``ids (n,)`` intp in 0..V-1, ``rows (n, D)`` C-contiguous of out's dtype."""
    _training.scatter_add_rows(out, ids, rows.reshape(-1, out.shape[1]), resolve_num_threads())
