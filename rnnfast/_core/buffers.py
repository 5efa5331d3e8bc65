"""The buffers of a kernel call: the arrays the compiled driver reads and writes (``SequenceBuffers``), and
the layout passes between the user's batch-major arrays and the kernels' time-major ones.  No arithmetic."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import layout as _layout  # one build: its passes copy, they do no arithmetic

# Below this many elements a copy is faster than starting a thread team.
PARALLEL_COPY_MIN = 1 << 16


@dataclass
class SequenceBuffers:
    """Every array a forward or backward kernel call touches (``kernels.forward``/``backward``), C-contiguous
    and of the call's dtype (``lengths``: intp); None where the cell or the path has none.  G = gates * H;
    time-major arrays are (T, N, ...), the user's are (N, T, ...)."""

    cell: int  # kernels.CELLS[spec.name]
    reset_after: bool
    relu: bool
    x_tm: np.ndarray  # (T, N, D), zero at padded steps
    Wx: np.ndarray  # (D, G)
    Wh: np.ndarray  # (H, G)
    lengths: np.ndarray  # (N,) valid steps
    hst: np.ndarray  # (T+1, N, H)
    act: np.ndarray  # (T, N, G)
    bias_x: Optional[np.ndarray] = None  # (G,) added to x @ Wx: b, or the GRU's bx
    bias_h: Optional[np.ndarray] = None  # (G,) the GRU's bh
    cst: Optional[np.ndarray] = None  # (T+1, N, H) LSTM
    hg: Optional[np.ndarray] = None  # (T, N, G) GRU
    rh: Optional[np.ndarray] = None  # (T, N, H) reset-before GRU
    hs: Optional[np.ndarray] = None  # (N, T, H) forward output
    panels: Optional[np.ndarray] = None  # micro-kernel panels of Wh (plan.step_weights == "microkernel")
    blocked: Optional[np.ndarray] = None  # the blocked copy of Wh (plan.step_weights == "blocked")
    WhT: Optional[np.ndarray] = None  # (G, H) backward, BLAS path
    dhs: Optional[np.ndarray] = None  # (N, T, H)
    dh: Optional[np.ndarray] = None  # (N, H) in: dL/dh_T, out: dL/dh_0
    dc: Optional[np.ndarray] = None
    drh: Optional[np.ndarray] = None  # (N, H) reset-before GRU
    dGx: Optional[np.ndarray] = None  # (T, N, G)
    dGh: Optional[np.ndarray] = None  # (T, N, G), dGx itself where the two coincide
    dx_tm: Optional[np.ndarray] = None  # (T, N, D)
    dWx: Optional[np.ndarray] = None
    dWh: Optional[np.ndarray] = None
    dbx: Optional[np.ndarray] = None  # (G,) gradient of bias_x
    dbh: Optional[np.ndarray] = None  # (G,) gradient of bias_h


def _threads_for(a: np.ndarray, num_threads: int) -> int:
    return num_threads if a.size >= PARALLEL_COPY_MIN else 1


def time_major(name: str, a: np.ndarray, steps: np.ndarray, mask: Optional[np.ndarray], num_threads: int,
               ws) -> np.ndarray:
    """(N, T, F) -> C-contiguous (T, N, F) copy in a workspace of ``ws`` (a step's batch rows become
    contiguous for BLAS), zero at padded steps.  The same pass checks that the valid steps are finite
    (ValueError naming ``name``): one read of ``a`` instead of three."""
    out = ws.take((a.shape[1], a.shape[0]) + a.shape[2:], a.dtype)
    if _layout.time_major_into(a, out, steps, _threads_for(a, num_threads)):
        raise ValueError(f"{name} contains NaN or Inf{' at a valid step' if mask is not None else ''}; "
                         "expected finite values")
    return out


def checked_in_place(name: str, a: np.ndarray, steps: np.ndarray, mask: Optional[np.ndarray],
                     num_threads: int) -> np.ndarray:
    """A batch-major (N, T, F) sequence that the kernels read in place (``dhs``: only at valid steps, a row
    at a time), C-contiguous (a copy only if it is not), after checking that its valid steps are finite
    (ValueError naming ``name``).  A time-major copy would cost a pass over the array."""
    a = np.ascontiguousarray(a)
    if _layout.count_nonfinite_steps(a, steps, _threads_for(a, num_threads)):
        raise ValueError(f"{name} contains NaN or Inf{' at a valid step' if mask is not None else ''}; "
                         "expected finite values")
    return a


def batch_major(a_tm: np.ndarray, num_threads: int) -> np.ndarray:
    """(T, N, F) -> a new C-contiguous (N, T, F) array (``dx``), copied by the threads: NumPy's one-thread
    copy took twice as long once the kernel had left ``a_tm`` out of cache.  Always a copy: for N = 1 the
    swap is already contiguous, and a view would let a user's in-place edit write into a workspace."""
    out = np.empty((a_tm.shape[1], a_tm.shape[0]) + a_tm.shape[2:], dtype=a_tm.dtype)
    _layout.batch_major_into(a_tm, out, _threads_for(a_tm, num_threads))
    return out


def transposed(W: np.ndarray, num_threads: int, ws) -> np.ndarray:
    """``W.T`` as a C-contiguous workspace of ``ws`` (a blocked copy; NumPy's strided one is ~10x slower)."""
    out = ws.take(W.shape[::-1], W.dtype)
    _layout.transpose_into(np.ascontiguousarray(W), out, num_threads)
    return out


def state_history(first: np.ndarray, T: int, ws) -> np.ndarray:
    """(T+1, N, H) state history (a workspace of ``ws``) with the given state at index 0."""
    st = ws.take((T + 1,) + first.shape, first.dtype)
    st[0] = first
    return st


def kernel_outputs(N: int, dtype, *shapes):
    """Arrays the kernel writes in full (BLAS with beta = 0 reads nothing), so they need no memset;
    zeros when N = 0, where the kernel does not run."""
    new = np.empty if N else np.zeros
    return [new(shape, dtype=dtype) for shape in shapes]


def kernel_lengths(lengths: Optional[np.ndarray], N: int, T: int) -> np.ndarray:
    return lengths if lengths is not None else np.full(N, T, dtype=np.intp)
